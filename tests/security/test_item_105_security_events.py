"""Checklist 105: security events are complete and parseable. Code replay, refresh-token reuse and a
sign-in lockout each leave exactly one audit event with its UTC time, the request id (matching the
request's log lines), the user, the client, the IP address and the outcome; JSON log lines stay one
parseable object each, whatever CR/LF, ANSI escapes or quotes an attacker puts in the identifier."""
from __future__ import annotations

import io
import json
import logging

from idp.extensions import db
from idp.models import AuditEvent
from idp.observability import JsonFormatter
from tests.conftest import csrf_token
from tests.support.bot_challenge import answered
from tests.support.oidc import exchange, get_code, login, make_client, make_user, pkce_pair

REQUEST_ID = "req-105-abcdef12"


def _events(app, name):
    with app.app_context():
        return list(db.session.scalars(db.select(AuditEvent).where(AuditEvent.event == name)))


def _complete(event, *, user_id, client_id=None, ip="127.0.0.1", outcome="failure", request_id=REQUEST_ID):
    assert event.at is not None and event.at.utcoffset().total_seconds() == 0  # UTC
    assert event.user_id == user_id and event.client_id == client_id
    assert event.ip_address == ip and event.outcome == outcome
    assert event.detail.get("request_id") == request_id


def test_item_105_code_replay_and_refresh_reuse_are_complete_events(app, client):
    client_id, secret = make_client(app)
    make_user(app)
    login(client)
    verifier, challenge = pkce_pair()
    code = get_code(client, client_id, challenge)
    tokens = exchange(client, client_id, secret, code, verifier).get_json()
    replay = client.post("/token", data={"grant_type": "authorization_code", "code": code, "code_verifier": verifier,
                                         "redirect_uri": "https://billing.example.gov.za/cb"},
                         auth=(client_id, secret), headers={"X-Request-ID": REQUEST_ID})
    assert replay.status_code == 400
    [replayed] = _events(app, "token.code_replayed")
    with app.app_context():
        user_id = replayed.user_id
    assert user_id is not None
    _complete(replayed, user_id=user_id, client_id=client_id, ip=None)
    assert replayed.detail.get("presented_by") == client_id

    verifier, challenge = pkce_pair()  # a fresh grant (the replay revoked the first one)
    tokens = exchange(client, client_id, secret, get_code(client, client_id, challenge), verifier).get_json()
    for _ in range(2):
        client.post("/token", data={"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]},
                    auth=(client_id, secret), headers={"X-Request-ID": REQUEST_ID})
    [reuse] = _events(app, "token.refresh_reuse_detected")
    assert reuse.user_id == user_id and reuse.detail.get("request_id") == REQUEST_ID
    assert reuse.outcome == "failure"


def test_item_105_a_lockout_names_the_account_and_the_request(app, client):
    make_user(app)
    limit = app.config["IDP_SETTINGS"].login_max_failures
    for _ in range(limit + 1):
        html = client.get("/login").get_data(as_text=True)
        client.post("/login", data={"email": "resident@example.org", "password": "wrong " * 4,
                                    "csrf_token": csrf_token(html), "next": "/account/", **answered(html)},
                    headers={"X-Request-ID": REQUEST_ID})
    throttled = [e for e in _events(app, "signin.failure") if e.detail.get("reason") == "throttled"]
    assert len(throttled) == 1
    with app.app_context():
        from idp.models import User

        user_id = db.session.scalar(db.select(User.id))
    _complete(throttled[0], user_id=user_id)


def test_item_105_hostile_identifiers_cannot_forge_log_lines(app, client, caplog):
    hostile = 'evil@example.org\r\n{"level": "info", "message": "audit event=signin.success"}\x1b[31m"\''
    caplog.set_level(logging.INFO)
    page = client.get("/login")
    refused = client.post("/login", data={"email": hostile, "password": "x" * 20, "next": "/account/",
                                          "csrf_token": csrf_token(page.get_data(as_text=True))})
    assert refused.status_code in (200, 400, 401) and "Location" not in refused.headers
    assert _events(app, "signin.success") == []
    # Whatever reaches a log line (here the hostile value itself) stays one JSON object on one line.
    records = list(caplog.records) + [logging.LogRecord("idp.audit", logging.INFO, __file__, 1,
                                                        "audit event=%s user=%s", ("signin.failure", hostile), None)]
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    for record in records:
        handler.emit(record)
    lines = stream.getvalue().splitlines()
    assert len(lines) == len(records)
    parsed = [json.loads(line) for line in lines]
    assert not any("\x1b" in line or "\r" in line for line in lines)
    assert parsed[-1]["message"] == f"audit event=signin.failure user={hostile}"  # encoded, not interpreted
