"""Checklist 7: PKCE with S256 is required of every client, confidential and public alike. At the
authorization endpoint: no code_challenge, method plain, method omitted, method in another case,
a malformed challenge or a repeated one: invalid_request and no code. At the token endpoint: a verifier
outside [A-Za-z0-9-._~]{43,128} is invalid_request, a wrong one invalid_grant, and either way the
code is consumed (the right verifier afterwards gets invalid_grant, nothing is issued)."""
import pytest

from idp.extensions import db
from idp.models import AuthorizationCode, Token
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

MALFORMED_VERIFIERS = ["x", "a" * 42, "a" * 129, "a" * 42 + "+", "a" * 42 + "/", "a" * 42 + "=", "a" * 42 + " ",
                       "a" * 42 + "\u00e9", "a" * 42 + "%41"]


@pytest.fixture(params=["confidential", "public"])
def rp(request, app, client):
    make_user(app)
    login(client)
    if request.param == "public":
        client_id, _ = make_client(app, public=True, grant_types=["authorization_code", "refresh_token"])
        return client_id, None
    return make_client(app)


def _redeem(client, rp, code, verifier):
    if rp[1] is None:  # a public client names itself in the body
        data = {"grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT, "client_id": rp[0]}
        if verifier is not None:
            data["code_verifier"] = verifier
        return client.post("/token", data=data)
    return exchange(client, rp[0], rp[1], code, verifier)


def _counts(app):
    with app.app_context():
        return db.session.query(AuthorizationCode).count(), db.session.query(Token).count()


BAD_CHALLENGES = [
    {"code_challenge": None, "code_challenge_method": None}, {"code_challenge": None},
    {"code_challenge_method": "plain"}, {"code_challenge_method": None}, {"code_challenge_method": "s256"},
    {"code_challenge_method": "S512"}, {"code_challenge_method": ""}, {"code_challenge": "short"},
    {"code_challenge": "a" * 129}, {"code_challenge": "a" * 42 + "+"},
]


def test_item_7_authorization_without_a_proper_s256_challenge_is_invalid_request(app, client, rp):
    _, challenge = pkce_pair()
    for extra in BAD_CHALLENGES:
        response = authorize(client, authorize_params(rp[0], challenge, **extra))
        assert response.status_code == 302, extra
        query = query_of(response.headers["Location"])
        assert query["error"] == "invalid_request" and "code" not in query and query["state"] == "st-123", extra
        assert _counts(app) == (0, 0), extra


def test_item_7_a_repeated_code_challenge_is_invalid_request(app, client, rp):
    _, challenge = pkce_pair()
    _, other = pkce_pair()
    query = "&".join(f"{k}={v}" for k, v in authorize_params(rp[0], challenge).items() if k != "scope")
    response = client.get(f"/authorize?{query}&scope=openid&code_challenge={other}")
    assert query_of(response.headers["Location"])["error"] == "invalid_request"
    assert _counts(app) == (0, 0)


def test_item_7_malformed_or_missing_verifier_is_invalid_request_and_consumes_the_code(app, client, rp):
    for verifier in MALFORMED_VERIFIERS + [None]:
        good, challenge = pkce_pair()
        code = get_code(client, rp[0], challenge)
        bad = _redeem(client, rp, code, verifier)
        assert bad.status_code == 400 and bad.get_json()["error"] == "invalid_request", verifier
        later = _redeem(client, rp, code, good)
        assert later.status_code == 400 and later.get_json()["error"] == "invalid_grant", verifier
        assert _counts(app)[1] == 0


def test_item_7_wrong_verifier_is_invalid_grant_and_consumes_the_code(app, client, rp):
    good, challenge = pkce_pair()
    code = get_code(client, rp[0], challenge)
    wrong = _redeem(client, rp, code, pkce_pair()[0])
    assert wrong.status_code == 400 and wrong.get_json()["error"] == "invalid_grant"
    assert _redeem(client, rp, code, good).get_json()["error"] == "invalid_grant"
    assert _counts(app)[1] == 0


def test_item_7_the_challenge_itself_is_not_a_verifier(app, client, rp):
    """Sending the S256 challenge as the verifier (a 'plain' downgrade at the token endpoint) fails."""
    _, challenge = pkce_pair()
    code = get_code(client, rp[0], challenge)
    assert _redeem(client, rp, code, challenge).get_json()["error"] == "invalid_grant"
    assert _counts(app)[1] == 0


def test_item_7_the_right_verifier_works(app, client, rp):
    """The control: with a proper challenge and verifier the same client gets its tokens."""
    good, challenge = pkce_pair()
    code = get_code(client, rp[0], challenge)
    response = _redeem(client, rp, code, good)
    assert response.status_code == 200 and response.get_json()["access_token"]
