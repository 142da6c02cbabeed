"""Checklist 99: JWS algorithm confusion and key injection. Every JWT-consuming input
(id_token_hint at logout, private_key_jwt client assertions, request objects, bearer access tokens)
is attacked with alg none, HS256 keyed with our RSA public key, embedded jwk/jku/x5u headers naming
an attacker key, an unknown crit header on an otherwise validly signed token, and kid path/SQL
injection: all are refused, verification pins RS256/ES256 and our own (or the client's registered)
keys only, and nothing is issued or done."""
from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
import uuid
from urllib.parse import urlencode

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding
from cryptography.hazmat.primitives.serialization import load_pem_private_key
from joserfc.jwk import RSAKey

from idp.extensions import db
from idp.models import UserSession
from idp.services import keys
from tests.support.oidc import REDIRECT, authorize_params, exchange, get_code, login, make_client, make_user, pkce_pair

ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
BYE = "https://billing.example.gov.za/bye"


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _compact(header: dict, claims: dict, sign) -> str:
    """A JWS built by hand (libraries refuse to produce most of these)."""
    signing_input = _b64(json.dumps(header).encode()) + "." + _b64(json.dumps(claims).encode())
    return signing_input + "." + _b64(sign(signing_input.encode()))


def _rs256(private_key: RSAKey):
    pem = load_pem_private_key(private_key.as_pem(private=True), password=None)
    return lambda data: pem.sign(data, padding.PKCS1v15(), hashes.SHA256())


def _hs256(secret: bytes):
    return lambda data: hmac.new(secret, data, hashlib.sha256).digest()


def _attacks(genuine_kid: str, genuine_signer, public_jwk: dict, claims: dict) -> dict[str, str]:
    """Every forged variant of a token whose genuine form would be accepted."""
    attacker = RSAKey.generate_key(2048, parameters={"kid": genuine_kid}, private=True)
    attacker_jwk = attacker.as_dict(private=False)
    public_pem = RSAKey.import_key(public_jwk).as_pem(private=False)
    return {
        "alg_none": _compact({"alg": "none", "kid": genuine_kid}, claims, lambda _: b""),
        "alg_None_case": _compact({"alg": "None", "kid": genuine_kid}, claims, lambda _: b""),
        "hs256_public_pem": _compact({"alg": "HS256", "kid": genuine_kid}, claims, _hs256(public_pem)),
        "hs256_public_jwk_n": _compact({"alg": "HS256", "kid": genuine_kid}, claims,
                                       _hs256(public_jwk["n"].encode())),
        "embedded_jwk": _compact({"alg": "RS256", "kid": genuine_kid, "jwk": attacker_jwk}, claims,
                                 _rs256(attacker)),
        "jku": _compact({"alg": "RS256", "kid": genuine_kid, "jku": "https://evil.tld/jwks.json"}, claims,
                        _rs256(attacker)),
        "x5u": _compact({"alg": "RS256", "kid": genuine_kid, "x5u": "https://evil.tld/cert.pem"}, claims,
                        _rs256(attacker)),
        "unknown_crit": _compact({"alg": "RS256", "kid": genuine_kid, "crit": ["exp-v2"], "exp-v2": 1}, claims,
                                 genuine_signer),
        "kid_path": _compact({"alg": "RS256", "kid": "../../../../dev/null"}, claims, _rs256(attacker)),
        "kid_sql": _compact({"alg": "RS256", "kid": "x' UNION SELECT 'k' --"}, claims, _rs256(attacker)),
        "kid_sql_hs256_empty_key": _compact({"alg": "HS256", "kid": "' OR '1'='1"}, claims, _hs256(b"")),
    }


# --- id_token_hint at RP-initiated logout --------------------------------------------------------

@pytest.fixture
def hinted(app, client):
    client_id, secret = make_client(app, post_logout_redirect_uris=[BYE])
    make_user(app)
    login(client)
    verifier, challenge = pkce_pair()
    id_token = exchange(client, client_id, secret, get_code(client, client_id, challenge), verifier).get_json()["id_token"]
    claims = json.loads(base64.urlsafe_b64decode(id_token.split(".")[1] + "=="))
    with app.app_context():
        ring = keys.keyring()
        our = RSAKey.import_key(ring.signing.as_pem(private=True))
        public_jwk = json.loads(ring.jwks_json)["keys"][0]
    return client_id, id_token, claims, ring.signing_kid, our, public_jwk


def _live(app) -> int:
    with app.app_context():
        return db.session.query(UserSession).filter(UserSession.ended_at.is_(None)).count()


def test_item_99_forged_id_token_hints_never_sign_out_or_redirect(app, client, hinted):
    client_id, genuine, claims, kid, our_key, public_jwk = hinted
    # "unknown_crit" carries our genuine signature: only the crit check refuses it.
    for name, forged in _attacks(kid, _rs256(our_key), public_jwk, claims).items():
        response = client.get("/logout/end-session?" + urlencode(
            {"id_token_hint": forged, "post_logout_redirect_uri": BYE, "state": "s"}))
        assert response.status_code == 200, name
        assert "Location" not in response.headers and b"Sign out?" in response.data, name
        assert _live(app) == 1, name
    # The genuine hint still works (the test would notice a verifier that refuses everything).
    ok = client.get("/logout/end-session?" + urlencode({"id_token_hint": genuine, "post_logout_redirect_uri": BYE}))
    assert ok.status_code == 302 and ok.headers["Location"].startswith(BYE) and _live(app) == 0


# --- private_key_jwt client assertions -----------------------------------------------------------

def test_item_99_forged_client_assertions_are_invalid_client_and_issue_nothing(app, client):
    key = RSAKey.generate_key(2048, parameters={"kid": "dept-1"}, private=True)
    public_jwk = key.as_dict(private=False)
    client_id, _ = make_client(app, jwks={"keys": [public_jwk]}, grant_types=["client_credentials"],
                               redirect_uris=[])

    def claims():
        return {"iss": client_id, "sub": client_id, "aud": "http://localhost/token",
                "exp": int(time.time()) + 60, "iat": int(time.time()), "jti": uuid.uuid4().hex}

    form = {"grant_type": "client_credentials", "client_assertion_type": ASSERTION_TYPE}
    for name, forged in _attacks("dept-1", _rs256(key), public_jwk, claims()).items():
        response = client.post("/token", data={**form, "client_assertion": forged})
        assert response.status_code in (400, 401), name
        assert response.get_json()["error"] == "invalid_client", name
        assert "access_token" not in response.get_json(), name
    genuine = _compact({"alg": "RS256", "kid": "dept-1"}, claims(), _rs256(key))
    assert client.post("/token", data={**form, "client_assertion": genuine}).status_code == 200


def test_item_99_assertion_signed_with_the_idps_own_key_or_for_another_audience_is_refused(app, client):
    key = RSAKey.generate_key(2048, parameters={"kid": "dept-1"}, private=True)
    client_id, _ = make_client(app, jwks={"keys": [key.as_dict(private=False)]}, grant_types=["client_credentials"],
                               redirect_uris=[])
    with app.app_context():
        ring = keys.keyring()
        idp_key = RSAKey.import_key(ring.signing.as_pem(private=True))
    now = int(time.time())
    base = {"iss": client_id, "sub": client_id, "exp": now + 60, "iat": now}
    form = {"grant_type": "client_credentials", "client_assertion_type": ASSERTION_TYPE}
    cases = {
        "idp_key": _compact({"alg": "RS256", "kid": ring.signing_kid},
                            {**base, "aud": "http://localhost/token", "jti": "a"}, _rs256(idp_key)),
        "userinfo_aud": _compact({"alg": "RS256", "kid": "dept-1"},
                                 {**base, "aud": "http://localhost/userinfo", "jti": "b"}, _rs256(key)),
        "no_exp": _compact({"alg": "RS256", "kid": "dept-1"},
                           {"iss": client_id, "sub": client_id, "aud": "http://localhost/token", "jti": "c"},
                           _rs256(key)),
    }
    for name, assertion in cases.items():
        response = client.post("/token", data={**form, "client_assertion": assertion})
        assert response.status_code in (400, 401) and response.get_json()["error"] == "invalid_client", name


# --- request objects and bearer tokens -----------------------------------------------------------

def test_item_99_request_objects_are_refused_not_ignored(app, client):
    client_id, _ = make_client(app)
    make_user(app)
    login(client)
    _, challenge = pkce_pair()
    request_object = _compact({"alg": "none"}, {"client_id": client_id, "redirect_uri": REDIRECT,
                                                "scope": "openid", "prompt": "none"}, lambda _: b"")
    response = client.get("/authorize?" + urlencode(authorize_params(client_id, challenge, request=request_object)))
    assert response.status_code == 302
    location = response.headers["Location"]
    assert location.startswith(REDIRECT + "?") and "code=" not in location
    assert "error=request_not_supported" in location


def test_item_99_forged_jwt_access_tokens_get_401_invalid_token(app, client, hinted):
    client_id, genuine, claims, kid, our_key, public_jwk = hinted
    at_claims = {**claims, "scope": "openid profile email", "client_id": client_id, "jti": uuid.uuid4().hex}
    for name, forged in _attacks(kid, _rs256(our_key), public_jwk, at_claims).items():
        response = client.get("/userinfo", headers={"Authorization": "Bearer " + forged})
        assert response.status_code == 401, name
        assert 'error="invalid_token"' in response.headers.get("WWW-Authenticate", ""), name
    # Even a token genuinely signed by our key is only an access token if we issued it as one.
    assert client.get("/userinfo", headers={"Authorization": "Bearer " + genuine}).status_code == 401
