"""Token endpoint, refresh rotation, revocation, introspection, userinfo and client authentication."""
import json
import time
import uuid
from datetime import timedelta

import pytest
from joserfc import jwt
from joserfc.jwk import KeySet, RSAKey

from idp.extensions import db
from idp.models import AuthorizationCode, Token
from idp.models.types import utcnow
from tests.support.oidc import exchange, get_code, issue_tokens, make_client, pkce_pair


def userinfo_status(client, access_token):
    return client.get("/userinfo", headers={"Authorization": "Bearer " + access_token}).status_code


def introspect(client, rp, token):
    return client.post("/introspect", data={"token": token}, auth=rp).get_json()


def test_id_token_claims_and_signature(app, client, rp):
    tokens = issue_tokens(client, rp)
    discovery = client.get("/.well-known/openid-configuration").get_json()
    jwks = client.get("/jwks.json").get_json()
    decoded = jwt.decode(tokens["id_token"], KeySet.import_key_set(jwks), algorithms=["RS256"])
    claims, header = decoded.claims, decoded.header
    assert header["alg"] in discovery["id_token_signing_alg_values_supported"]
    assert header["kid"] in {k["kid"] for k in jwks["keys"]}
    assert claims["iss"] == discovery["issuer"]
    assert claims["aud"] == rp[0] and claims["azp"] == rp[0]
    assert claims["nonce"] == "n-456"
    assert 0 < claims["exp"] - claims["iat"] <= 300
    for name in ("auth_time", "at_hash", "sid", "acr", "amr", "sub"):
        assert claims[name], name
    assert claims["amr"] == ["pwd"]
    access = jwt.decode(tokens["access_token"], KeySet.import_key_set(jwks), algorithms=["RS256"])
    assert access.header["typ"] == "at+jwt" and access.claims["client_id"] == rp[0]


def test_a_code_works_once_and_a_replay_revokes_its_tokens(client, rp):
    verifier, challenge = pkce_pair()
    code = get_code(client, rp[0], challenge)
    first = exchange(client, rp[0], rp[1], code, verifier).get_json()
    replay = exchange(client, rp[0], rp[1], code, verifier)
    assert replay.status_code == 400 and replay.get_json()["error"] == "invalid_grant"
    assert userinfo_status(client, first["access_token"]) == 401
    assert introspect(client, rp, first["access_token"]) == {"active": False}
    refresh = client.post("/token", data={"grant_type": "refresh_token", "refresh_token": first["refresh_token"]}, auth=rp)
    assert refresh.get_json()["error"] == "invalid_grant"


def test_a_replayed_code_also_revokes_the_tokens_refreshed_from_it(client, rp):
    """Checklist 5: a replay ends everything the first redemption started, refreshed tokens too."""
    verifier, challenge = pkce_pair()
    code = get_code(client, rp[0], challenge)
    first = exchange(client, rp[0], rp[1], code, verifier).get_json()
    later = client.post("/token", data={"grant_type": "refresh_token", "refresh_token": first["refresh_token"]},
                        auth=rp).get_json()
    assert introspect(client, rp, later["access_token"])["active"] is True
    assert exchange(client, rp[0], rp[1], code, verifier).get_json()["error"] == "invalid_grant"
    assert introspect(client, rp, later["access_token"]) == {"active": False}
    assert introspect(client, rp, later["refresh_token"]) == {"active": False}


def test_wrong_pkce_verifier_fails_and_consumes_the_code(client, rp):
    verifier, challenge = pkce_pair()
    code = get_code(client, rp[0], challenge)
    wrong = exchange(client, rp[0], rp[1], code, pkce_pair()[0])
    assert wrong.get_json()["error"] == "invalid_grant"
    assert exchange(client, rp[0], rp[1], code, verifier).get_json()["error"] == "invalid_grant"


@pytest.mark.parametrize("verifier", [None, "x"])
def test_missing_or_malformed_verifier_is_invalid_request(client, rp, verifier):
    _, challenge = pkce_pair()
    code = get_code(client, rp[0], challenge)
    assert exchange(client, rp[0], rp[1], code, verifier).get_json()["error"] == "invalid_request"


def test_wrong_client_secret_is_401_with_www_authenticate(client, rp):
    verifier, challenge = pkce_pair()
    code = get_code(client, rp[0], challenge)
    response = exchange(client, rp[0], "wrong-secret", code, verifier)
    assert response.status_code == 401 and response.get_json()["error"] == "invalid_client"
    assert response.headers["WWW-Authenticate"].startswith("Basic")


def test_no_client_credentials_is_401(client, rp):
    response = client.post("/token", data={"grant_type": "client_credentials"})
    assert response.status_code == 401 and "WWW-Authenticate" in response.headers


def test_secret_in_query_string_is_rejected(client, rp):
    response = client.post(f"/token?client_id={rp[0]}&client_secret={rp[1]}", data={"grant_type": "client_credentials"})
    assert response.status_code == 400


def test_a_code_redeemed_by_another_client_is_invalid_grant(app, client, rp):
    other = make_client(app, name="Permits")
    verifier, challenge = pkce_pair()
    code = get_code(client, rp[0], challenge)
    assert exchange(client, other[0], other[1], code, verifier).get_json()["error"] == "invalid_grant"


def test_an_expired_code_is_invalid_grant(app, client, rp):
    verifier, challenge = pkce_pair()
    code = get_code(client, rp[0], challenge)
    with app.app_context():
        db.session.query(AuthorizationCode).update({"expires_at": utcnow() - timedelta(seconds=1)})
        db.session.commit()
    assert exchange(client, rp[0], rp[1], code, verifier).get_json()["error"] == "invalid_grant"


def test_redirect_uri_must_match_at_the_token_endpoint(client, rp):
    verifier, challenge = pkce_pair()
    code = get_code(client, rp[0], challenge)
    response = exchange(client, rp[0], rp[1], code, verifier, redirect_uri="https://billing.example.gov.za/other")
    assert response.get_json()["error"] == "invalid_grant"


@pytest.mark.parametrize("header", ["Bearer garbage", "Bearer ", "Bearer eyJhbGciOiJub25lIn0.e30."])
def test_garbage_bearer_tokens_get_401_with_www_authenticate(client, header):
    response = client.get("/userinfo", headers={"Authorization": header})
    assert response.status_code == 401
    assert response.headers.get("WWW-Authenticate", "").lower().startswith("bearer error=")


def test_userinfo_accepts_get_and_post(client, rp):
    tokens = issue_tokens(client, rp)
    auth = {"Authorization": "Bearer " + tokens["access_token"]}
    assert client.get("/userinfo", headers=auth).get_json()["email"] == "resident@example.org"
    assert client.post("/userinfo", headers=auth).get_json()["name"] == "Lindiwe Dlamini"


def test_refresh_rotates_and_reuse_revokes_the_family(client, rp):
    tokens = issue_tokens(client, rp)
    second = client.post("/token", data={"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]}, auth=rp).get_json()
    assert second["refresh_token"] != tokens["refresh_token"]
    reuse = client.post("/token", data={"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]}, auth=rp)
    assert reuse.status_code == 400 and reuse.get_json()["error"] == "invalid_grant"
    assert introspect(client, rp, second["access_token"]) == {"active": False}
    later = client.post("/token", data={"grant_type": "refresh_token", "refresh_token": second["refresh_token"]}, auth=rp)
    assert later.get_json()["error"] == "invalid_grant"


def test_refresh_token_of_another_client_and_upscoping_are_refused(app, client, rp):
    tokens = issue_tokens(client, rp)
    other = make_client(app, name="Permits")
    stolen = client.post("/token", data={"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]}, auth=other)
    assert stolen.get_json()["error"] == "invalid_grant"
    upscope = client.post("/token", data={"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"],
                                          "scope": "openid phone"}, auth=rp)
    assert upscope.get_json()["error"] == "invalid_scope"
    # Neither attempt used up the owner's refresh token.
    ok = client.post("/token", data={"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]}, auth=rp)
    assert ok.status_code == 200


def test_refresh_family_has_an_absolute_lifetime(app, client, rp):
    tokens = issue_tokens(client, rp)
    with app.app_context():
        db.session.query(Token).update({"grant_expires_at": utcnow() - timedelta(seconds=1)})
        db.session.commit()
    response = client.post("/token", data={"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]}, auth=rp)
    assert response.get_json()["error"] == "invalid_grant"


def test_no_refresh_token_without_offline_access(client, rp):
    verifier, challenge = pkce_pair()
    code = get_code(client, rp[0], challenge, scope="openid email")
    assert "refresh_token" not in exchange(client, rp[0], rp[1], code, verifier).get_json()


def test_revocation_of_a_refresh_token_ends_the_grant(client, rp):
    tokens = issue_tokens(client, rp)
    assert client.post("/revoke", data={"token": tokens["refresh_token"]}, auth=rp).status_code == 200
    assert userinfo_status(client, tokens["access_token"]) == 401
    assert introspect(client, rp, tokens["access_token"]) == {"active": False}


def test_revoking_another_clients_token_is_refused(app, client, rp):
    tokens = issue_tokens(client, rp)
    other = make_client(app, name="Permits")
    refused = client.post("/revoke", data={"token": tokens["access_token"]}, auth=other)
    assert refused.status_code == 400 and refused.get_json()["error"] == "invalid_grant"
    assert userinfo_status(client, tokens["access_token"]) == 200


def test_revocation_needs_client_authentication(client, rp):
    tokens = issue_tokens(client, rp)
    assert client.post("/revoke", data={"token": tokens["access_token"]}).status_code == 401
    assert userinfo_status(client, tokens["access_token"]) == 200


def test_introspection_rules(app, client, rp):
    tokens = issue_tokens(client, rp)
    active = introspect(client, rp, tokens["access_token"])
    assert active["active"] is True and active["client_id"] == rp[0] and active["sub"]
    assert client.post("/introspect", data={"token": tokens["access_token"]}).status_code == 401
    other = make_client(app, name="Permits")
    assert introspect(client, other, tokens["access_token"]) == {"active": False}
    assert introspect(client, rp, "unknown-token") == {"active": False}
    public_id, _ = make_client(app, name="Mobile", public=True, grant_types=["authorization_code"])
    response = client.post("/introspect", data={"token": tokens["access_token"], "client_id": public_id})
    assert response.status_code == 401


def test_client_credentials_for_confidential_clients(app, client, rp):
    response = client.post("/token", data={"grant_type": "client_credentials", "scope": "openid"}, auth=rp)
    body = response.get_json()
    assert response.status_code == 200 and "refresh_token" not in body and "id_token" not in body
    assert introspect(client, rp, body["access_token"])["active"] is True
    without_grant = make_client(app, name="No CC", grant_types=["authorization_code"])
    denied = client.post("/token", data={"grant_type": "client_credentials"}, auth=without_grant)
    assert denied.get_json()["error"] == "unauthorized_client"


@pytest.mark.parametrize("grant_type", ["password", "implicit", "urn:ietf:params:oauth:grant-type:device_code"])
def test_no_password_or_implicit_grant(client, rp, grant_type):
    response = client.post("/token", data={"grant_type": grant_type, "username": "a", "password": "b"}, auth=rp)
    assert response.get_json()["error"] == "unsupported_grant_type"


def _assertion(key, client_id, audience, jti=None, alg="RS256"):
    now = int(time.time())
    claims = {"iss": client_id, "sub": client_id, "aud": audience, "iat": now, "exp": now + 60,
              "jti": jti or uuid.uuid4().hex}
    return jwt.encode({"alg": alg, "kid": "k1"}, claims, key, algorithms=[alg])


def test_private_key_jwt_client_authentication(app, client):
    key = RSAKey.generate_key(2048, parameters={"kid": "k1"}, private=True)
    client_id, secret = make_client(app, jwks={"keys": [key.as_dict(private=False)]},
                                    grant_types=["client_credentials"], redirect_uris=[])
    assert secret is None
    audience = "http://localhost/token"
    form = {"grant_type": "client_credentials",
            "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"}
    jti = uuid.uuid4().hex
    good = client.post("/token", data={**form, "client_assertion": _assertion(key, client_id, audience, jti)})
    assert good.status_code == 200, good.get_json()
    def refused(assertion):
        response = client.post("/token", data={**form, "client_assertion": assertion})
        return response.status_code in (400, 401) and response.get_json()["error"] == "invalid_client"

    assert refused(_assertion(key, client_id, audience, jti))  # replayed jti
    assert refused(_assertion(key, client_id, "https://evil.tld"))
    other_key = RSAKey.generate_key(2048, parameters={"kid": "k1"}, private=True)
    assert refused(_assertion(other_key, client_id, audience))
    header = {"alg": "none"}
    import base64
    b64 = lambda d: base64.urlsafe_b64encode(json.dumps(d).encode()).rstrip(b"=").decode()
    unsigned = b64(header) + "." + b64({"iss": client_id, "sub": client_id, "aud": audience,
                                        "exp": int(time.time()) + 60, "jti": uuid.uuid4().hex}) + "."
    assert refused(unsigned)
