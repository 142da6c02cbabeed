"""Checklist 9: nonce. The ID token carries exactly the nonce sent (any characters, never altered),
and none when none was sent, also after a refresh; response types that would need a nonce (implicit,
hybrid) are not offered nor accepted; a nonce a client sends again, or a PKCE challenge sent again,
is detected and recorded as a security event (once per repeat, digests only, never the value)."""
import secrets

import pytest
from joserfc import jwt
from joserfc.jwk import KeySet

from idp.extensions import db
from idp.models import AuditEvent, AuthorizationCode
from tests.support.oidc import (
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


@pytest.fixture
def rp(app, client):
    make_user(app)
    login(client)
    return make_client(app, first_party=True)


def _id_token(client, tokens) -> dict:
    keys = KeySet.import_key_set(client.get("/jwks.json").get_json())
    return jwt.decode(tokens["id_token"], keys, algorithms=["RS256", "ES256"]).claims


def _events(app, name):
    with app.app_context():
        return list(db.session.scalars(db.select(AuditEvent).where(AuditEvent.event == name)))


@pytest.mark.parametrize("nonce", [secrets.token_urlsafe(24), "n1", "a b+c/=\u00e9&x=<y>", "0" * 255])
def test_item_9_id_token_carries_exactly_the_nonce_sent(app, client, rp, nonce):
    verifier, challenge = pkce_pair()
    code = get_code(client, rp[0], challenge, nonce=nonce)
    tokens = exchange(client, *rp, code, verifier).get_json()
    assert _id_token(client, tokens)["nonce"] == nonce


def test_item_9_no_nonce_sent_means_no_nonce_claim_and_refresh_adds_none(app, client, rp):
    verifier, challenge = pkce_pair()
    code = get_code(client, rp[0], challenge, nonce=None)
    tokens = exchange(client, *rp, code, verifier).get_json()
    assert "nonce" not in _id_token(client, tokens)
    refreshed = client.post("/token", data={"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]},
                            auth=rp).get_json()
    assert refreshed["access_token"]
    if "id_token" in refreshed:
        assert "nonce" not in _id_token(client, refreshed)


@pytest.mark.parametrize("response_type", ["id_token", "id_token token", "code id_token", "code token",
                                           "code id_token token", "token"])
def test_item_9_response_types_that_need_a_nonce_are_refused(app, client, rp, response_type):
    _, challenge = pkce_pair()
    response = authorize(client, authorize_params(rp[0], challenge, response_type=response_type))
    assert query_of(response.headers["Location"])["error"] == "unsupported_response_type"
    assert "#" not in response.headers["Location"]
    with app.app_context():
        assert db.session.query(AuthorizationCode).count() == 0
    assert client.get("/.well-known/openid-configuration").get_json()["response_types_supported"] == ["code"]


def test_item_9_a_nonce_sent_again_by_the_same_client_is_recorded(app, client, rp):
    nonce = "static-nonce-" + secrets.token_hex(4)
    for _ in range(3):
        get_code(client, rp[0], pkce_pair()[1], nonce=nonce)
    reused = _events(app, "authorize.nonce_reused")
    assert len(reused) == 2 and all(e.client_id == rp[0] and e.outcome == "failure" for e in reused)
    assert all(nonce not in str(e.detail) for e in reused)
    other, _ = make_client(app, name="Permits", first_party=True)
    get_code(client, other, pkce_pair()[1], nonce=nonce)  # another client's nonce space
    get_code(client, rp[0], pkce_pair()[1], nonce="fresh-" + secrets.token_hex(4))
    assert len(_events(app, "authorize.nonce_reused")) == 2


def test_item_9_a_pkce_challenge_sent_again_is_recorded(app, client, rp):
    _, challenge = pkce_pair()
    get_code(client, rp[0], challenge, nonce=secrets.token_hex(8))
    assert _events(app, "authorize.pkce_challenge_reused") == []
    get_code(client, rp[0], challenge, nonce=secrets.token_hex(8))
    [event] = _events(app, "authorize.pkce_challenge_reused")
    assert event.client_id == rp[0] and event.outcome == "failure" and challenge not in str(event.detail)
