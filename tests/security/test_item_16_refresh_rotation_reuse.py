"""Checklist 16: Refresh-token rotation and reuse detection. An attacker replays an old refresh
token (the one just rotated, or one two or more rotations old), races the legitimate client with
parallel refreshes of one token, or keeps a family alive by refreshing: every replay is
``invalid_grant`` and revokes the whole family (the newest access and refresh tokens too), there is
no grace window, parallel refreshes never fork the family, and the family ends at its absolute
lifetime however often it rotated."""
from __future__ import annotations

import json
import re
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from urllib.parse import parse_qs, urlsplit

import pytest
import requests

from idp.extensions import db
from idp.models import AuditEvent, Token
from idp.models.types import utcnow
from tests.support.oidc import REDIRECT, issue_tokens, make_client, pkce_pair
from tests.support.server import IdpServer


def _refresh(client, rp, refresh_token):
    return client.post("/token", data={"grant_type": "refresh_token", "refresh_token": refresh_token}, auth=rp)


def _active(client, rp, token) -> bool:
    return client.post("/introspect", data={"token": token}, auth=rp).get_json()["active"]


def _rotate(client, rp, refresh_token) -> dict:
    response = _refresh(client, rp, refresh_token)
    assert response.status_code == 200, response.get_json()
    return response.get_json()


def test_item_16_replaying_an_older_token_revokes_the_newest_of_the_family(app, client, rp):
    first = issue_tokens(client, rp)
    second = _rotate(client, rp, first["refresh_token"])
    third = _rotate(client, rp, second["refresh_token"])
    assert len({first["refresh_token"], second["refresh_token"], third["refresh_token"]}) == 3

    replay = _refresh(client, rp, first["refresh_token"])  # RT(n-2)
    assert replay.status_code == 400 and replay.get_json()["error"] == "invalid_grant"
    assert "access_token" not in replay.get_json()
    assert not _active(client, rp, third["access_token"])
    assert not _active(client, rp, third["refresh_token"])
    assert client.get("/userinfo", headers={"Authorization": "Bearer " + third["access_token"]}).status_code == 401
    assert _refresh(client, rp, third["refresh_token"]).get_json()["error"] == "invalid_grant"
    with app.app_context():
        assert db.session.query(Token).filter(Token.revoked_at.is_(None)).count() == 0
        assert db.session.query(AuditEvent).filter_by(event="token.refresh_reuse_detected").count() == 1


def test_item_16_no_grace_window_even_for_the_immediately_preceding_token(app, client, rp):
    first = issue_tokens(client, rp)
    second = _rotate(client, rp, first["refresh_token"])
    replay = _refresh(client, rp, first["refresh_token"])  # within the same second: still a replay
    assert replay.status_code == 400 and replay.get_json()["error"] == "invalid_grant"
    assert not _active(client, rp, second["access_token"])
    assert _refresh(client, rp, second["refresh_token"]).get_json()["error"] == "invalid_grant"


def test_item_16_refused_refresh_attempts_do_not_fork_or_revive(app, client, rp):
    first = issue_tokens(client, rp)
    other = make_client(app, name="Permits")
    assert _refresh(client, other, first["refresh_token"]).get_json()["error"] == "invalid_grant"
    upscoped = client.post("/token", data={"grant_type": "refresh_token", "refresh_token": first["refresh_token"],
                                           "scope": "openid profile email offline_access phone"}, auth=rp)
    assert upscoped.status_code == 400 and upscoped.get_json()["error"] == "invalid_scope"
    with app.app_context():  # neither attempt issued anything
        assert db.session.query(Token).count() == 1
    # A narrower scope is allowed, and stays within the same family and its absolute end.
    narrower = client.post("/token", data={"grant_type": "refresh_token", "refresh_token": first["refresh_token"],
                                           "scope": "openid offline_access"}, auth=rp)
    assert narrower.status_code == 200 and narrower.get_json()["scope"] == "openid offline_access"
    with app.app_context():
        rows = db.session.query(Token).order_by(Token.id).all()
        assert len({row.grant_id for row in rows}) == 1


def test_item_16_absolute_lifetime_does_not_slide_with_rotation(app, client, rp):
    first = issue_tokens(client, rp)
    with app.app_context():
        start = db.session.query(Token).one()
        family_end = start.grant_expires_at
        days = app.config["IDP_SETTINGS"].refresh_token_lifetime_days
        assert days == 30
        assert abs((family_end - start.issued_at) - timedelta(days=days)) < timedelta(seconds=5)
    latest = first
    for _ in range(3):
        latest = _rotate(client, rp, latest["refresh_token"])
    with app.app_context():
        rows = db.session.query(Token).all()
        assert len(rows) == 4 and {row.grant_expires_at for row in rows} == {family_end}
        assert {row.refresh_expires_at for row in rows} == {family_end}
        # Move the whole family back in time so that its absolute end has passed, while the newest
        # token is only a minute old: sliding expiry would keep it alive, the absolute end must not.
        shift = (family_end - utcnow()) + timedelta(minutes=1)
        for row in rows:
            row.issued_at -= shift
            row.grant_expires_at -= shift
            row.refresh_expires_at -= shift
        db.session.commit()
    refused = _refresh(client, rp, latest["refresh_token"])
    assert refused.status_code == 400 and refused.get_json()["error"] == "invalid_grant"
    assert "access_token" not in refused.get_json()
    with app.app_context():
        assert db.session.query(Token).count() == 4


# --- real parallel refreshes against a running server -------------------------------------------

EMAIL, PASSWORD = "race.resident@example.org", "race resident passphrase long"
CSRF = re.compile(r'name="csrf_token"[^>]*value="([^"]+)"')


@pytest.fixture(scope="module")
def server(tmp_path_factory, smtp_server):
    idp = IdpServer(tmp_path_factory.mktemp("item16"), smtp_port=smtp_server.port).start()
    idp.cli("users", "create", "--email", EMAIL, "--password", PASSWORD, "--verified-email")
    registered = json.loads(idp.cli("clients", "create", "--name", "Billing", "--redirect-uri", REDIRECT, "--first-party",
                                    "--scope", "openid email offline_access", "--grant-type", "authorization_code",
                                    "--grant-type", "refresh_token", "--json").stdout)
    try:
        yield idp, (registered["client_id"], registered["client_secret"])
    finally:
        idp.stop()


def _server_tokens(idp, credentials) -> dict:
    verifier, challenge = pkce_pair()
    with requests.Session() as browser:  # closed, so that stopping the server waits for no idle connection
        return _sign_in_and_redeem(idp, credentials, browser, verifier, challenge)


def _sign_in_and_redeem(idp, credentials, browser, verifier, challenge) -> dict:
    query = {"response_type": "code", "client_id": credentials[0], "redirect_uri": REDIRECT, "state": "s",
             "scope": "openid email offline_access", "code_challenge": challenge, "code_challenge_method": "S256"}
    page = browser.get(idp.url + "/authorize", params=query, timeout=10)
    assert "/login" in page.url
    signed_in = browser.post(page.url, data={"email": EMAIL, "password": PASSWORD, "csrf_token": CSRF.search(page.text).group(1),
                                             "next": parse_qs(urlsplit(page.url).query)["next"][0]},
                             allow_redirects=False, timeout=10)
    assert signed_in.status_code == 303
    back = browser.get(idp.url + signed_in.headers["Location"], allow_redirects=False, timeout=10)
    code = parse_qs(urlsplit(back.headers["Location"]).query)["code"][0]
    response = requests.post(idp.url + "/token", data={"grant_type": "authorization_code", "code": code,
                                                       "redirect_uri": REDIRECT, "code_verifier": verifier},
                             auth=credentials, timeout=10)
    assert response.status_code == 200
    return response.json()


def test_item_16_parallel_refreshes_of_one_token_never_fork_the_family(server):
    idp, credentials = server
    tokens = _server_tokens(idp, credentials)

    def refresh(_):
        response = requests.post(idp.url + "/token", data={"grant_type": "refresh_token",
                                                           "refresh_token": tokens["refresh_token"]},
                                 auth=credentials, timeout=30)
        return response.status_code, response.json()

    with ThreadPoolExecutor(max_workers=10) as pool:
        results = list(pool.map(refresh, range(10)))
    statuses = [status for status, _ in results]
    assert statuses.count(200) == 1 and statuses.count(400) == 9
    assert all(body["error"] == "invalid_grant" for status, body in results if status == 400)
    # The reuse was detected: what the race handed out is revoked with the rest of the family
    # (checked first: replaying the original token again would revoke it anyway).
    issued = [body for status, body in results if status == 200]
    for body in [*issued, tokens]:
        again = requests.post(idp.url + "/token", data={"grant_type": "refresh_token", "refresh_token": body["refresh_token"]},
                              auth=credentials, timeout=10)
        assert again.status_code == 400 and again.json()["error"] == "invalid_grant"
        introspected = requests.post(idp.url + "/introspect", data={"token": body["access_token"]},
                                     auth=credentials, timeout=10).json()
        assert introspected == {"active": False}
