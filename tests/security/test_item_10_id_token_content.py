"""Checklist 10: ID token content and signature. iss is the discovery issuer byte for byte; aud is the
client and azp names it; exp-iat is the configured lifetime (5 minutes at most by default); sub is an
opaque identifier that stays the same across sessions and refreshes and is never given to a new account
with the same email; amr/acr say "pwd"/password for a password sign-in; the header alg is RS256 or
ES256 (discovery never offers none or HS*), and the signature verifies with exactly the JWKS key its
unique kid names, also after rotations and with ES256 keys."""
import base64
import json
import re

import pytest
from joserfc import jwt
from joserfc.jwk import KeySet

from idp.extensions import db
from idp.models import User
from idp.oidc.acr import ACR_PASSWORD
from idp.services import accounts, keys
from tests.support.oidc import issue_tokens, login, make_client, make_user


@pytest.fixture
def rp(app):
    return make_client(app, first_party=True)


def _segments(token: str) -> tuple[dict, dict]:
    header, payload, _ = token.split(".")
    pad = lambda s: s + "=" * (-len(s) % 4)  # noqa: E731
    return (json.loads(base64.urlsafe_b64decode(pad(header))), json.loads(base64.urlsafe_b64decode(pad(payload))))


def _verify_with_named_key_only(client, token: str) -> dict:
    jwks = client.get("/jwks.json").get_json()
    kids = [k["kid"] for k in jwks["keys"]]
    assert len(kids) == len(set(kids)), "kid values must be unique"
    header, _ = _segments(token)
    [named] = [k for k in jwks["keys"] if k["kid"] == header["kid"]]
    assert named["alg"] == header["alg"]
    claims = jwt.decode(token, KeySet.import_key_set({"keys": [named]}), algorithms=[header["alg"]]).claims
    for other in (k for k in jwks["keys"] if k["kid"] != header["kid"]):
        with pytest.raises(Exception):
            jwt.decode(token, KeySet.import_key_set({"keys": [dict(other, kid=header["kid"])]}),
                       algorithms=["RS256", "ES256"])
    return claims


def test_item_10_claims_issuer_audience_lifetime_and_factors(app, client, rp):
    make_user(app)
    login(client)
    discovery = client.get("/.well-known/openid-configuration").get_json()
    tokens = issue_tokens(client, rp)
    header, _ = _segments(tokens["id_token"])
    claims = _verify_with_named_key_only(client, tokens["id_token"])
    assert header["alg"] in discovery["id_token_signing_alg_values_supported"]
    assert claims["iss"] == discovery["issuer"] == "http://localhost"
    audiences = claims["aud"] if isinstance(claims["aud"], list) else [claims["aud"]]
    assert rp[0] in audiences and claims["azp"] == rp[0]
    assert len(audiences) == 1 or "azp" in claims
    assert claims["exp"] - claims["iat"] == app.config["IDP_SETTINGS"].id_token_lifetime <= 300
    assert claims["amr"] == ["pwd"] and claims["acr"] == ACR_PASSWORD


def test_item_10_lifetime_follows_the_setting(app, client, rp, monkeypatch):
    make_user(app)
    login(client)
    monkeypatch.setattr(app.config["IDP_SETTINGS"], "id_token_lifetime", 60)
    claims = _verify_with_named_key_only(client, issue_tokens(client, rp)["id_token"])
    assert claims["exp"] - claims["iat"] == 60


def test_item_10_discovery_never_offers_none_or_symmetric_algorithms(client):
    discovery = client.get("/.well-known/openid-configuration").get_json()
    for name in ("id_token_signing_alg_values_supported", "token_endpoint_auth_signing_alg_values_supported"):
        offered = discovery.get(name, [])
        assert offered and all(a in ("RS256", "ES256") for a in offered), name
    assert not [a for a in discovery.get("userinfo_signing_alg_values_supported", []) if a == "none" or a.startswith("HS")]


def test_item_10_sub_is_opaque_stable_and_never_reassigned(app, client, rp):
    user_sub = make_user(app)
    login(client)
    first = _verify_with_named_key_only(client, issue_tokens(client, rp)["id_token"])
    assert first["sub"] == user_sub
    assert "@" not in first["sub"] and not first["sub"].isdigit() and len(first["sub"]) >= 32
    other = app.test_client()  # a second session of the same resident
    login(other)
    tokens = issue_tokens(other, rp)
    assert _verify_with_named_key_only(other, tokens["id_token"])["sub"] == user_sub
    refreshed = other.post("/token", data={"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]},
                           auth=rp).get_json()
    if "id_token" in refreshed:
        assert _verify_with_named_key_only(other, refreshed["id_token"])["sub"] == user_sub
    with app.app_context():  # the account is erased; someone registers the same address again
        db.session.delete(db.session.scalar(db.select(User).where(User.sub == user_sub)))
        db.session.commit()
        newcomer = accounts.create_user("resident@example.org", "another long resident passphrase",
                                        name="Someone Else", email_verified=True)
        assert newcomer.sub != user_sub
        assert re.fullmatch(r"[0-9a-f-]{36}", newcomer.sub)


@pytest.mark.parametrize("alg", ["ES256", "RS256"])
def test_item_10_signature_verifies_with_the_unique_kid_after_rotations(app, client, rp, alg):
    make_user(app)
    login(client)
    with app.app_context():
        keys.create_key("RS256", immediate=True)
        keys.create_key(alg, immediate=True)
        keys.create_key("RS256")  # published ahead of use, not yet signing
    tokens = issue_tokens(client, rp)
    header, _ = _segments(tokens["id_token"])
    assert header["alg"] == alg and header["kid"]
    assert len(client.get("/jwks.json").get_json()["keys"]) >= 2
    claims = _verify_with_named_key_only(client, tokens["id_token"])
    assert claims["iss"] == "http://localhost"
