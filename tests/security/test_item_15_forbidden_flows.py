"""Checklist 15: Forbidden and unneeded flows. An attacker asks for the implicit or hybrid flows
(``token``, ``id_token``, ``id_token token``, ``code id_token``, ``code token``), the password grant
(even for a client registered with it), or ``client_credentials`` for a client not allowed it or a
public client: exactly ``unsupported_response_type`` / ``unsupported_grant_type`` /
``unauthorized_client`` / ``invalid_client``, nothing issued or stored; the ``at_hash`` that is emitted
equals the left half of the access token's SHA-256."""
from __future__ import annotations

import base64
import hashlib
from urllib.parse import parse_qs, urlsplit

import pytest
from joserfc import jwt
from joserfc.jwk import KeySet

from idp.extensions import db
from idp.models import AuthorizationCode, Client, Token
from idp.services import DomainError
from tests.support.oidc import (
    REDIRECT,
    authorize,
    authorize_params,
    exchange,
    get_code,
    make_client,
    pkce_pair,
)


def _nothing_issued(app):
    with app.app_context():
        assert db.session.query(Token).count() == 0
        assert db.session.query(AuthorizationCode).count() == 0


@pytest.mark.parametrize("response_type", ["token", "id_token", "id_token token", "code id_token", "code token",
                                           "code id_token token", "none"])
def test_item_15_implicit_and_hybrid_response_types_are_unsupported(app, client, rp, response_type):
    _, challenge = pkce_pair()
    # Consent already given, so a supported flow would answer with tokens straight away.
    get_code(client, rp[0], challenge)
    with app.app_context():
        db.session.query(AuthorizationCode).delete()
        db.session.commit()
    response = authorize(client, authorize_params(rp[0], challenge, response_type=response_type))
    assert response.status_code == 302
    location = response.headers["Location"]
    parts = urlsplit(location)
    assert location.startswith(REDIRECT + "?") and not parts.fragment
    query = parse_qs(parts.query)
    assert query["error"] == ["unsupported_response_type"]
    assert not {"code", "access_token", "id_token", "token_type"} & set(query)
    _nothing_issued(app)


def test_item_15_password_grant_is_unsupported_even_for_a_client_registered_with_it(app, client, rp):
    with app.app_context():
        db.session.query(Client).filter_by(client_id=rp[0]).update({"grant_types": ["authorization_code", "password"]})
        db.session.commit()
    response = client.post("/token", data={"grant_type": "password", "username": "resident@example.org",
                                           "password": "a long enough resident passphrase", "scope": "openid"}, auth=rp)
    assert response.status_code == 400 and response.get_json()["error"] == "unsupported_grant_type"
    assert "access_token" not in response.get_json()
    _nothing_issued(app)


def test_item_15_client_credentials_needs_an_allowed_confidential_client(app, client):
    not_allowed = make_client(app, name="Complaints", grant_types=["authorization_code", "refresh_token"])
    denied = client.post("/token", data={"grant_type": "client_credentials"}, auth=not_allowed)
    assert denied.status_code == 400 and denied.get_json()["error"] == "unauthorized_client"
    with pytest.raises(DomainError):  # a public client cannot even be registered for it
        make_client(app, name="Kiosk", public=True, grant_types=["authorization_code", "client_credentials"])
    public_id, _ = make_client(app, name="Mobile", public=True, grant_types=["authorization_code"])
    with app.app_context():
        assert db.session.query(Client).count() == 2
    public = client.post("/token", data={"grant_type": "client_credentials", "client_id": public_id})
    assert public.status_code == 401 and public.get_json()["error"] == "invalid_client"
    _nothing_issued(app)


def test_item_15_at_hash_is_the_left_half_of_the_access_token_sha256(app, client, rp):
    verifier, challenge = pkce_pair()
    tokens = exchange(client, rp[0], rp[1], get_code(client, rp[0], challenge), verifier).get_json()
    jwks = KeySet.import_key_set(client.get("/jwks.json").get_json())
    claims = jwt.decode(tokens["id_token"], jwks, algorithms=["RS256", "ES256"]).claims
    digest = hashlib.sha256(tokens["access_token"].encode("ascii")).digest()
    expected = base64.urlsafe_b64encode(digest[:16]).rstrip(b"=").decode()
    assert claims["at_hash"] == expected
    # A refresh issues no ID token, so there is no second at_hash that could mismatch.
    refreshed = client.post("/token", data={"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]},
                            auth=rp).get_json()
    assert "access_token" in refreshed and "id_token" not in refreshed
