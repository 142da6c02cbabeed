"""Checklist 18: Token / userinfo transport. Token responses (code, refresh, client credentials, and
errors) must not be cached (``Cache-Control: no-store``); userinfo refuses an access token sent in the
URL query; an expired or revoked access token is 401 ``invalid_token`` with ``WWW-Authenticate``;
userinfo releases only the claims of the granted scopes, and its ``sub`` is the ID token's."""
from __future__ import annotations

from datetime import timedelta

import pytest
from joserfc import jwt
from joserfc.jwk import KeySet

from idp.extensions import db
from idp.models import Token
from idp.models.types import utcnow
from tests.support.oidc import exchange, get_code, pkce_pair


def _issue(client, rp, **extra):
    verifier, challenge = pkce_pair()
    return exchange(client, rp[0], rp[1], get_code(client, rp[0], challenge, **extra), verifier)


def _assert_not_cached(response):
    assert "no-store" in response.headers["Cache-Control"]
    assert response.headers.get("Pragma") == "no-cache"


def test_item_18_every_token_response_is_no_store(app, client, rp):
    issued = _issue(client, rp)
    assert issued.status_code == 200
    _assert_not_cached(issued)
    refreshed = client.post("/token", data={"grant_type": "refresh_token",
                                            "refresh_token": issued.get_json()["refresh_token"]}, auth=rp)
    assert refreshed.status_code == 200
    _assert_not_cached(refreshed)
    machine = client.post("/token", data={"grant_type": "client_credentials"}, auth=rp)
    assert machine.status_code == 200
    _assert_not_cached(machine)
    failed = client.post("/token", data={"grant_type": "authorization_code", "code": "nope"}, auth=rp)
    assert failed.status_code == 400
    _assert_not_cached(failed)


def test_item_18_userinfo_refuses_a_token_in_the_url_query(client, rp):
    access = _issue(client, rp).get_json()["access_token"]
    for method in (client.get, client.post):
        response = method("/userinfo?access_token=" + access)
        assert response.status_code == 401
        assert response.headers["WWW-Authenticate"].lower().startswith("bearer")
        assert "email" not in (response.get_json() or {})


def test_item_18_a_request_without_a_bearer_token_gets_a_bare_challenge(client):
    """RFC 6750 3.1: a request with no authentication information (or another scheme) gets a
    Bearer challenge without an error code."""
    for headers in ({}, {"Authorization": "Basic YWxhZGRpbjpvcGVuc2VzYW1l"}):
        response = client.get("/userinfo", headers=headers)
        assert response.status_code == 401
        assert response.headers["WWW-Authenticate"] == "Bearer"
        assert "error" not in (response.get_json() or {})


@pytest.mark.parametrize("how", ["expired", "revoked"])
def test_item_18_expired_or_revoked_access_token_is_invalid_token(app, client, rp, how):
    access = _issue(client, rp).get_json()["access_token"]
    headers = {"Authorization": "Bearer " + access}
    assert client.get("/userinfo", headers=headers).status_code == 200
    if how == "expired":
        with app.app_context():
            db.session.query(Token).update({"access_expires_at": utcnow() - timedelta(seconds=1)})
            db.session.commit()
    else:
        assert client.post("/revoke", data={"token": access}, auth=rp).status_code == 200
    response = client.get("/userinfo", headers=headers)
    assert response.status_code == 401 and response.get_json()["error"] == "invalid_token"
    assert 'error="invalid_token"' in response.headers["WWW-Authenticate"]
    assert "sub" not in response.get_json()


def test_item_18_userinfo_releases_granted_scopes_only_and_the_id_token_sub(app, client, rp):
    body = _issue(client, rp, scope="openid email").get_json()
    info = client.get("/userinfo", headers={"Authorization": "Bearer " + body["access_token"]}).get_json()
    assert set(info) == {"sub", "email", "email_verified"}
    jwks = KeySet.import_key_set(client.get("/jwks.json").get_json())
    assert info["sub"] == jwt.decode(body["id_token"], jwks, algorithms=["RS256", "ES256"]).claims["sub"]
    only_openid = _issue(client, rp, scope="openid").get_json()
    info = client.get("/userinfo", headers={"Authorization": "Bearer " + only_openid["access_token"]}).get_json()
    assert set(info) == {"sub"}
    # A client-credentials token (no resident, no openid) cannot read anyone's claims.
    machine = client.post("/token", data={"grant_type": "client_credentials"}, auth=rp).get_json()
    denied = client.get("/userinfo", headers={"Authorization": "Bearer " + machine["access_token"]})
    assert denied.status_code in (401, 403) and "email" not in (denied.get_json() or {})
