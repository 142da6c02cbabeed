"""Checklist 22: Consent. A client the resident has not approved, or one asking for more than was
approved, gets a consent page naming the client and every scope asked for; the approval cannot be
forged (no token, another session's token, or the token in the URL change nothing); the resident
sees the grant under Connected services, and revoking it ends that client's refresh tokens at once
and brings the consent page back."""
from __future__ import annotations

from urllib.parse import urlencode

import pytest

from idp.extensions import db
from idp.models import AuthorizationCode, Consent, Token
from tests.conftest import csrf_token
from tests.support.oidc import authorize, authorize_params, exchange, get_code, login, make_client, make_user, pkce_pair

SCOPE_TEXT = {
    "openid": "A number that identifies you to this service",
    "email": "Your email address",
    "profile": "Your name and language",
    "phone": "Your phone number",
    "offline_access": "Access to these details while you are not signed in",
}


@pytest.fixture
def rp(app, client):
    client_id, secret = make_client(app, name="Rates and Water", scope="openid profile email phone offline_access")
    make_user(app)
    login(client)
    return client_id, secret


def _consent(app):
    with app.app_context():
        return {c.client_id: set(c.scope.split()) for c in db.session.query(Consent).all()}


def test_item_22_new_scopes_bring_the_consent_page_back_naming_each_scope(app, client, rp):
    _, challenge = pkce_pair()
    get_code(client, rp[0], challenge, scope="openid email")
    assert _consent(app) == {rp[0]: {"openid", "email"}}
    assert authorize(client, authorize_params(rp[0], challenge, scope="openid email")).status_code == 302

    wider = authorize(client, authorize_params(rp[0], challenge, scope="openid email phone offline_access"))
    assert wider.status_code == 200 and "Location" not in wider.headers
    html = wider.get_data(as_text=True)
    assert "Rates and Water" in html
    for scope in ("openid", "email", "phone", "offline_access"):
        assert SCOPE_TEXT[scope] in html, scope
    assert SCOPE_TEXT["profile"] not in html  # only what is asked for
    with app.app_context():
        assert db.session.query(AuthorizationCode).count() == 2  # the approved and the remembered one, no third


def test_item_22_approval_cannot_be_forged(app, client, rp):
    _, challenge = pkce_pair()
    params = authorize_params(rp[0], challenge, scope="openid email")
    page = authorize(client, params)
    assert page.status_code == 200
    own_token = csrf_token(page.get_data(as_text=True))

    attacker = app.test_client()
    make_user(app, email="attacker@example.org")
    login(attacker, email="attacker@example.org")
    attackers_token = csrf_token(authorize(attacker, params).get_data(as_text=True))

    forged = [
        client.post("/authorize?" + urlencode(params), data={"decision": "allow"}),
        client.post("/authorize?" + urlencode(params), data={"decision": "allow", "csrf_token": attackers_token}),
        client.post("/authorize?" + urlencode({**params, "csrf_token": own_token, "decision": "allow"})),
        client.get("/authorize?" + urlencode({**params, "csrf_token": own_token, "decision": "allow"})),
        client.post("/authorize?" + urlencode(params), data={"decision": "allow", "csrf_token": own_token},
                    headers={"Content-Type": "text/plain"}),
    ]
    for response in forged:
        assert "code=" not in response.headers.get("Location", "")
    assert _consent(app) == {}
    with app.app_context():
        assert db.session.query(AuthorizationCode).count() == 0


def test_item_22_revoking_a_grant_ends_the_clients_refresh_tokens(app, client, rp):
    verifier, challenge = pkce_pair()
    tokens = exchange(client, rp[0], rp[1], get_code(client, rp[0], challenge), verifier).get_json()
    listing = client.get("/account/services")
    html = listing.get_data(as_text=True)
    assert listing.status_code == 200 and "Rates and Water" in html
    revoked = client.post("/account/services/revoke", data={"csrf_token": csrf_token(html), "client_id": rp[0]})
    assert revoked.status_code == 303
    refresh = client.post("/token", data={"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]},
                          auth=rp)
    assert refresh.status_code == 400 and refresh.get_json()["error"] == "invalid_grant"
    assert client.post("/introspect", data={"token": tokens["access_token"]}, auth=rp).get_json() == {"active": False}
    with app.app_context():
        assert db.session.query(Token).filter(Token.revoked_at.is_(None)).count() == 0
    assert _consent(app) == {}
    assert authorize(client, authorize_params(rp[0], challenge)).status_code == 200  # asked again
