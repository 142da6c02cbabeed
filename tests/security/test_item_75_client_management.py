"""Checklist 75: client management. A client secret is shown once and kept only as a keyed digest;
rotating it (console or `idp clients rotate-secret`) is audited, and the previous secret keeps
working at the token endpoints only for the overlap window (IDP_CLIENT_SECRET_OVERLAP), never a
secret older than that; secrets never appear again in pages, CLI listings, the audit trail or logs;
changing a client's registration (its redirect URIs) needs a recent sign-in and is audited."""
from __future__ import annotations

import json
import logging
from datetime import timedelta

from sqlalchemy import update

from idp.cli.clients import clients as clients_cli
from idp.extensions import db
from idp.models import AuditEvent, Client, UserSession
from idp.models.types import utcnow
from idp.services import client_cache
from tests.conftest import csrf_token
from tests.integration.test_admin import staff_client
from tests.support.oidc import REDIRECT, make_client


def _authenticates(app, client_id: str, secret: str) -> bool:
    """Whether the token endpoints accept these credentials (RFC 7009 revocation: 200 or 401)."""
    response = app.test_client().post("/revoke", data={"token": "not-a-token"}, auth=(client_id, secret))
    assert response.status_code in (200, 401), response.status_code
    if response.status_code == 401:
        assert response.get_json()["error"] == "invalid_client"
    return response.status_code == 200


def _admin(app):
    return staff_client(app, email="admin@capetown.gov.za", roles=("administrator",))


def _rotate_in_console(app, http, client_id: str) -> tuple[str, str]:
    token = csrf_token(http.get("/admin/clients").get_data(as_text=True))
    page = http.post(f"/admin/clients/{client_id}/rotate-secret", data={"csrf_token": token, "reason": "yearly rotation"})
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    return html.split('id="client-secret">')[1].split("<")[0], html


def _expire_overlap(app, client_id: str) -> None:
    with app.app_context():
        db.session.execute(update(Client).where(Client.client_id == client_id)
                           .values(previous_secret_expires_at=utcnow() - timedelta(seconds=1)))
        db.session.commit()
        client_cache.forget()  # a change made without the ORM


def _row(app, client_id: str) -> Client:
    with app.app_context():
        row = db.session.scalar(db.select(Client).where(Client.client_id == client_id))
        db.session.expunge(row)
        return row


def test_item_75_console_rotation_keeps_the_old_secret_for_the_overlap_only(app, caplog):
    caplog.set_level(logging.DEBUG)
    client_id, old = make_client(app)
    http, admin_id = _admin(app)
    new, page = _rotate_in_console(app, http, client_id)
    assert new != old and 'id="previous-secret-until"' in page
    assert _authenticates(app, client_id, new) and _authenticates(app, client_id, old)
    row = _row(app, client_id)
    assert timedelta(hours=23, minutes=59) < row.previous_secret_expires_at - utcnow() <= timedelta(hours=24)
    for value in (row.client_secret_digest, row.previous_secret_digest):
        assert value and old not in value and new not in value  # digests, never the secrets
    _expire_overlap(app, client_id)
    assert not _authenticates(app, client_id, old)
    assert _authenticates(app, client_id, new)
    with app.app_context():
        event = db.session.scalar(db.select(AuditEvent).where(AuditEvent.event == "client.secret_rotated"))
        assert event.actor_id == admin_id and event.client_id == client_id and event.detail["reason"] == "yearly rotation"
        assert event.detail["previous_valid_until"]
        assert not any(s in json.dumps(event.detail) for s in (old, new))
    for listed in (http.get("/admin/clients"), http.get(f"/admin/clients/{client_id}")):
        assert new not in listed.get_data(as_text=True) and old not in listed.get_data(as_text=True)
    assert not any(s in r.getMessage() for r in caplog.records for s in (old, new))


def test_item_75_a_secret_two_rotations_old_stops_at_once(app):
    client_id, first = make_client(app)
    http, _ = _admin(app)
    second, _ = _rotate_in_console(app, http, client_id)
    third, _ = _rotate_in_console(app, http, client_id)
    assert not _authenticates(app, client_id, first)  # only the immediately previous secret overlaps
    assert _authenticates(app, client_id, second) and _authenticates(app, client_id, third)


def test_item_75_a_zero_overlap_ends_the_old_secret_at_once(app, monkeypatch):
    monkeypatch.setattr(app.config["IDP_SETTINGS"], "client_secret_overlap", 0)
    client_id, old = make_client(app)
    http, _ = _admin(app)
    new, page = _rotate_in_console(app, http, client_id)
    assert 'id="previous-secret-until"' not in page
    assert not _authenticates(app, client_id, old) and _authenticates(app, client_id, new)


def test_item_75_cli_rotation_prints_the_secret_once_and_audits_it(app, caplog):
    caplog.set_level(logging.DEBUG)
    client_id, old = make_client(app)
    runner = app.test_cli_runner()
    refused = runner.invoke(clients_cli, ["rotate-secret", client_id])
    assert refused.exit_code != 0  # a reason is required
    assert _authenticates(app, client_id, old) and _row(app, client_id).previous_secret_digest is None
    result = runner.invoke(clients_cli, ["rotate-secret", client_id, "--reason", "leaked in a ticket"])
    assert result.exit_code == 0, result.output
    printed = json.loads(result.output)
    new = printed["client_secret"]
    assert printed["client_id"] == client_id and printed["previous_secret_valid_until"]
    assert _authenticates(app, client_id, new) and _authenticates(app, client_id, old)
    listing = runner.invoke(clients_cli, ["list", "--json"])
    assert listing.exit_code == 0 and new not in listing.output and old not in listing.output
    with app.app_context():
        event = db.session.scalar(db.select(AuditEvent).where(AuditEvent.event == "client.secret_rotated"))
        assert event.detail["via"] == "cli" and event.detail["reason"] == "leaked in a ticket"
        assert new not in json.dumps(event.detail)
    assert not any(s in r.getMessage() for r in caplog.records for s in (old, new))
    public_id, _ = make_client(app, public=True, grant_types=["authorization_code"])
    public = runner.invoke(clients_cli, ["rotate-secret", public_id, "--reason", "no secret to rotate"])
    assert public.exit_code != 0 and "does not use a client secret" in public.output


def test_item_75_changing_redirect_uris_needs_a_recent_sign_in_and_is_audited(app):
    client_id, _ = make_client(app)
    http, admin_id = _admin(app)
    form = http.get(f"/admin/clients/{client_id}")
    assert form.status_code == 200
    token = csrf_token(form.get_data(as_text=True))
    with app.app_context():  # the sign-in is now 11 minutes old (the console itself is not idle)
        db.session.execute(update(UserSession).where(UserSession.user_id == admin_id)
                           .values(auth_time=utcnow() - timedelta(minutes=11)))
        db.session.commit()
    evil = {"csrf_token": token, "name": "Billing", "redirect_uris": "https://evil.example.net/cb",
            "scopes": ["openid", "email"]}
    refused = http.post(f"/admin/clients/{client_id}", data=evil)
    assert refused.status_code == 303 and refused.headers["Location"].startswith("/login?next=")
    assert _row(app, client_id).redirect_uris == [REDIRECT]
    assert http.get("/admin/clients/new").status_code == 303  # registering a client needs it too
    with app.app_context():
        db.session.execute(update(UserSession).where(UserSession.user_id == admin_id).values(auth_time=utcnow()))
        db.session.commit()
    changed = http.post(f"/admin/clients/{client_id}", data=evil | {"redirect_uris": "https://billing.example.gov.za/cb2"})
    assert changed.status_code == 303
    assert _row(app, client_id).redirect_uris == ["https://billing.example.gov.za/cb2"]
    with app.app_context():
        event = db.session.scalar(db.select(AuditEvent).where(AuditEvent.event == "client.updated"))
        assert event.actor_id == admin_id
        assert event.detail["changes"]["redirect_uris"] == [[REDIRECT], ["https://billing.example.gov.za/cb2"]]
