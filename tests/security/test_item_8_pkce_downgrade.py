"""Checklist 8: PKCE downgrade. No client, of any kind or configuration (confidential with basic or post
authentication, public, first-party, or one whose stored require_pkce flag was turned off), can obtain a
code without an S256 challenge. A code without a challenge (a legacy or injected row) cannot be redeemed,
with or without a code_verifier, and a code recorded with method "plain" cannot be redeemed by sending
the challenge back as the verifier: the server only ever verifies S256."""
import secrets

import pytest

from idp.extensions import db
from idp.models import Client, Token, User
from idp.models.types import utcnow
from idp.services import tokens
from tests.support.oidc import (
    REDIRECT,
    authorize,
    authorize_params,
    exchange,
    login,
    make_client,
    make_user,
    pkce_pair,
    query_of,
)

KINDS = {
    "basic": {},
    "post": {"token_endpoint_auth_method": "client_secret_post"},
    "public": {"public": True, "grant_types": ["authorization_code", "refresh_token"]},
    "first_party": {"first_party": True},
    "pkce_flag_off": {"first_party": True},
}


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_item_8_no_client_kind_gets_a_code_without_an_s256_challenge(app, client, kind):
    make_user(app)
    client_id, _ = make_client(app, **KINDS[kind])
    if kind == "pkce_flag_off":
        with app.app_context():
            db.session.query(Client).filter_by(client_id=client_id).update({"require_pkce": False})
            db.session.commit()
    login(client)
    _, challenge = pkce_pair()
    for extra in ({"code_challenge": None, "code_challenge_method": None}, {"code_challenge_method": "plain"}):
        response = authorize(client, authorize_params(client_id, challenge, **extra))
        assert response.status_code == 302, extra
        query = query_of(response.headers["Location"])
        assert query["error"] == "invalid_request" and "code" not in query, extra


def _injected_code(app, client_id, challenge, method) -> str:
    """A code row written without going through /authorize (legacy data, or a bug elsewhere)."""
    code = secrets.token_urlsafe(32)
    with app.app_context():
        user = db.session.query(User).one()
        tokens.save_code(code, client_id=client_id, user_id=user.id, redirect_uri=REDIRECT, scope="openid",
                         nonce=None, code_challenge=challenge, code_challenge_method=method, sid=None,
                         auth_time=utcnow(), acr="", amr=["pwd"])
    return code


@pytest.mark.parametrize("verifier", [None, "v" * 43, secrets.token_urlsafe(48)])
def test_item_8_a_code_without_a_challenge_cannot_be_redeemed(app, client, verifier):
    make_user(app)
    rp = make_client(app)
    code = _injected_code(app, rp[0], None, None)
    response = exchange(client, rp[0], rp[1], code, verifier)
    assert response.status_code == 400 and response.get_json()["error"] in ("invalid_request", "invalid_grant")
    assert "access_token" not in response.get_json()
    with app.app_context():
        assert db.session.query(Token).count() == 0


@pytest.mark.parametrize("method", ["plain", None, "S512"])
def test_item_8_a_code_recorded_as_plain_is_not_redeemed_with_the_challenge_as_verifier(app, client, method):
    make_user(app)
    rp = make_client(app)
    challenge = "c" * 43  # a valid verifier too: with "plain" it would match itself
    code = _injected_code(app, rp[0], challenge, method)
    response = exchange(client, rp[0], rp[1], code, challenge)
    assert response.status_code == 400 and response.get_json()["error"] == "invalid_grant"
    with app.app_context():
        assert db.session.query(Token).count() == 0
