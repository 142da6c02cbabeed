"""Checklist 12: prompt=none. Without an OP session the answer is login_required; with a session but no
consent, consent_required; with an id_token_hint naming resident A while the session is resident B,
login_required and no code for B (without prompt=none, B is sent to sign in instead of being answered
for); a forged or foreign hint is invalid_request. Every prompt=none answer is a redirect to the
registered URI with state and iss, never an HTML page; only the matching hint gets a code."""
import time

import pytest
from joserfc import jwt
from joserfc.jwk import KeySet, RSAKey

from idp.extensions import db
from idp.models import AuthorizationCode, Token
from idp.services import tokens as token_service
from tests.support.oidc import (
    REDIRECT,
    authorize,
    authorize_params,
    exchange,
    get_code,
    login,
    make_client,
    make_user,
    pkce_pair,
    query_of,
)

ALICE, BOB = "alice@example.org", "bob@example.org"


@pytest.fixture
def rp(app):
    make_user(app, email=ALICE, name="Alice")
    make_user(app, email=BOB, name="Bob")
    return make_client(app)


def _id_token_of(app, rp, email) -> str:
    http = app.test_client()
    login(http, email=email)
    verifier, challenge = pkce_pair()
    response = exchange(http, *rp, get_code(http, rp[0], challenge), verifier)
    return response.get_json()["id_token"]


def _silent(client, rp, **extra):
    _, challenge = pkce_pair()
    response = authorize(client, authorize_params(rp[0], challenge, prompt="none", **extra))
    assert response.status_code == 302, response.status_code
    assert "text/html" not in response.headers.get("Content-Type", "") or b"<form" not in response.data
    location = response.headers["Location"]
    assert location.startswith(REDIRECT + "?")
    query = query_of(location)
    assert query["state"] == "st-123" and query["iss"] == "http://localhost"
    return query


def _codes_for(app, email) -> int:
    from idp.models import User

    with app.app_context():
        user = db.session.scalar(db.select(User).where(User.email == email))
        return db.session.query(AuthorizationCode).filter_by(user_id=user.id).count()


def test_item_12_hint_for_another_resident_is_login_required_and_nothing_for_the_session_owner(app, client, rp):
    hint = _id_token_of(app, rp, ALICE)
    login(client, email=BOB)
    get_code(client, rp[0], pkce_pair()[1])  # Bob has consented: a silent answer would be possible
    bob_codes = _codes_for(app, BOB)
    query = _silent(client, rp, id_token_hint=hint)
    assert query["error"] == "login_required" and "code" not in query
    assert _codes_for(app, BOB) == bob_codes
    with app.app_context():
        assert db.session.query(Token).count() == 1  # only Alice's, from getting the hint


def test_item_12_hint_for_another_resident_without_prompt_none_asks_to_sign_in(app, client, rp):
    hint = _id_token_of(app, rp, ALICE)
    login(client, email=BOB)
    get_code(client, rp[0], pkce_pair()[1])
    bob_codes = _codes_for(app, BOB)
    _, challenge = pkce_pair()
    response = authorize(client, authorize_params(rp[0], challenge, id_token_hint=hint))
    assert response.status_code == 302 and response.headers["Location"].startswith("/login?")
    assert _codes_for(app, BOB) == bob_codes


def test_item_12_matching_hint_gets_a_code_even_when_the_hint_has_expired(app, client, rp):
    hint = _id_token_of(app, rp, BOB)
    login(client, email=BOB)
    query = _silent(client, rp, id_token_hint=hint)
    assert query.get("code") and "error" not in query
    with app.app_context():  # an expired ID token still names the resident (OIDC Core 3.1.2.1)
        expired = token_service.sign(dict(jwt.decode(hint, _public_keys(client)).claims, exp=int(time.time()) - 3600))
    assert _silent(client, rp, id_token_hint=expired).get("code")


def _public_keys(client):
    return KeySet.import_key_set(client.get("/jwks.json").get_json())


def _forged_hints(app, client, genuine: str) -> list[str]:
    """The genuine hint's claims re-signed by an attacker's key, unsigned, signature stripped, or
    signed by us but for another issuer; and things that are no JWT at all."""
    claims = dict(jwt.decode(genuine, _public_keys(client)).claims)
    attacker = RSAKey.generate_key(2048, parameters={"kid": "attacker"})
    header, payload, _ = genuine.split(".")
    with app.app_context():
        other_issuer = token_service.sign(dict(claims, iss="https://evil.tld"))
    return [jwt.encode({"alg": "RS256", "kid": "attacker"}, claims, attacker),
            "eyJhbGciOiJub25lIn0." + payload + ".", header + "." + payload + ".", other_issuer,
            "not-a-jwt", "x" * 9000]


def test_item_12_forged_or_foreign_hint_is_invalid_request(app, client, rp):
    genuine = _id_token_of(app, rp, BOB)
    login(client, email=BOB)
    before = _codes_for(app, BOB)
    for forged in _forged_hints(app, client, genuine):
        query = _silent(client, rp, id_token_hint=forged)
        assert query["error"] == "invalid_request" and "code" not in query
    assert _codes_for(app, BOB) == before


def test_item_12_no_session_and_no_consent_are_redirects_never_pages(app, client, rp):
    assert _silent(client, rp)["error"] == "login_required"
    assert _silent(client, rp, id_token_hint=_id_token_of(app, rp, BOB))["error"] == "login_required"
    login(client, email=BOB)  # signed in, but never consented to this client
    other, _ = make_client(app, name="Permits")
    _, challenge = pkce_pair()
    response = authorize(client, authorize_params(other, challenge, prompt="none"))
    assert response.status_code == 302 and query_of(response.headers["Location"])["error"] == "consent_required"
    with app.app_context():
        assert db.session.query(AuthorizationCode).filter_by(client_id=other).count() == 0
