"""Checklist 19: Audience/scope isolation between departments. A resident's access token minted for
the permits app is useless at the billing API (its ``aud`` is the permits client, and the billing
API's introspection reports it inactive), and a department asking for a scope it is not configured
for (complaints asking for ``municipal_accounts``), at the authorization or the token endpoint, gets
``invalid_scope``: the scope is refused, never silently dropped, and nothing is issued."""
from __future__ import annotations

from urllib.parse import parse_qs, urlencode, urlsplit

import pytest
from joserfc import jwt
from joserfc.jwk import KeySet

from idp.extensions import db
from idp.models import AuthorizationCode, Consent, Token
from tests.conftest import csrf_token
from tests.support.oidc import authorize, authorize_params, exchange, login, make_client, make_user, pkce_pair

BILLING_API = "https://billing.example.gov.za/api"
COMPLAINTS_CB = "https://complaints.example.gov.za/cb"
PERMITS_CB = "https://permits.example.gov.za/cb"


@pytest.fixture
def departments(app, client):
    make_user(app)
    login(client)
    return {
        "billing": make_client(app, name="Billing", api_resource=BILLING_API,
                               scope="openid profile email municipal_accounts offline_access"),
        "complaints": make_client(app, name="Complaints", redirect_uris=[COMPLAINTS_CB], scope="openid profile email"),
        "permits": make_client(app, name="Permits", redirect_uris=[PERMITS_CB], scope="openid profile email"),
    }


def _nothing_for(app, client_id):
    with app.app_context():
        assert db.session.query(AuthorizationCode).filter_by(client_id=client_id).count() == 0
        assert db.session.query(Token).filter_by(client_id=client_id).count() == 0
        assert db.session.query(Consent).filter_by(client_id=client_id).count() == 0


@pytest.mark.parametrize("scope", ["openid municipal_accounts", "openid email municipal_accounts",
                                   "openid offline_access", "openid unknown_scope"])
def test_item_19_unconfigured_scope_at_authorization_is_invalid_scope(app, client, departments, scope):
    complaints_id = departments["complaints"][0]
    _, challenge = pkce_pair()
    response = authorize(client, authorize_params(complaints_id, challenge, redirect_uri=COMPLAINTS_CB, scope=scope))
    assert response.status_code == 302, "no consent page for a scope the client may not have"
    location = response.headers["Location"]
    assert location.startswith(COMPLAINTS_CB + "?")
    query = parse_qs(urlsplit(location).query)
    assert query["error"] == ["invalid_scope"] and "code" not in query
    assert query["state"] == ["st-123"]
    assert "municipal_accounts" not in query.get("error_description", [""])[0]  # fixed text, no echo
    _nothing_for(app, complaints_id)


def test_item_19_unconfigured_scope_at_the_token_endpoint_is_invalid_scope(app, client, departments):
    complaints = departments["complaints"]
    response = client.post("/token", data={"grant_type": "client_credentials", "scope": "municipal_accounts"},
                           auth=complaints)
    assert response.status_code == 400 and response.get_json()["error"] == "invalid_scope"
    _nothing_for(app, complaints[0])


def test_item_19_a_permits_token_is_rejected_by_the_billing_api(app, client, departments):
    permits_id, permits_secret = departments["permits"]
    verifier, challenge = pkce_pair()
    params = authorize_params(permits_id, challenge, redirect_uri=PERMITS_CB, scope="openid email")
    page = authorize(client, params)
    allowed = client.post("/authorize?" + urlencode(params),
                          data={"decision": "allow", "csrf_token": csrf_token(page.get_data(as_text=True))})
    code = parse_qs(urlsplit(allowed.headers["Location"]).query)["code"][0]
    access = exchange(client, permits_id, permits_secret, code, verifier,
                      redirect_uri=PERMITS_CB).get_json()["access_token"]
    claims = jwt.decode(access, KeySet.import_key_set(client.get("/jwks.json").get_json()),
                        algorithms=["RS256", "ES256"]).claims
    assert claims["aud"] == permits_id and claims["aud"] != BILLING_API
    seen_by_billing = client.post("/introspect", data={"token": access}, auth=departments["billing"])
    assert seen_by_billing.status_code == 200 and seen_by_billing.get_json() == {"active": False}
    seen_by_permits = client.post("/introspect", data={"token": access}, auth=departments["permits"]).get_json()
    assert seen_by_permits["active"] is True and seen_by_permits["aud"] == permits_id
    assert seen_by_permits["scope"] == "openid email"
