"""Checklist 21: Browser-channel hygiene. A POST that carries credentials (password, second-factor
code) is answered with 303 so the browser never re-posts it to the next hop (never 307/308, and the
consent POST's redirect to the client is never 307/308 either); no cross-origin page can read the
authorization endpoint or the back-channel endpoints (no ``Access-Control-Allow-Origin`` for an
arbitrary ``Origin``, never a reflected origin, never with credentials); only the public discovery
document and JWKS are readable cross-origin, with ``*`` and without credentials."""
from __future__ import annotations

from urllib.parse import urlencode

import pytest

from tests.conftest import csrf_token
from tests.support.mfa import enrol_totp, form_token, totp_now
from tests.support.oidc import PASSWORD, authorize, authorize_params, login, make_client, make_user, pkce_pair

EVIL = "https://evil.example"


def _sign_in_post(http, next_url="/account/"):
    page = http.get("/login")
    return http.post("/login", data={"email": "resident@example.org", "password": PASSWORD, "next": next_url,
                                     "csrf_token": csrf_token(page.get_data(as_text=True))})


def test_item_21_credential_posts_are_answered_with_303(app, client):
    client_id, _ = make_client(app)
    make_user(app)
    _, challenge = pkce_pair()
    next_url = "/authorize?" + urlencode(authorize_params(client_id, challenge))
    signed_in = _sign_in_post(client, next_url)
    assert signed_in.status_code == 303 and signed_in.headers["Location"] == next_url

    consent = authorize(client, authorize_params(client_id, challenge))
    approved = client.post(next_url, data={"decision": "allow", "csrf_token": csrf_token(consent.get_data(as_text=True))})
    assert approved.status_code in (302, 303)  # the body held no credential, but never 307/308 anyway

    secret, _ = enrol_totp(client)
    other = app.test_client()
    password_step = _sign_in_post(other)
    assert password_step.status_code == 303
    code_step = other.post("/login/second-factor/app", data={"csrf_token": form_token(other, "/login/second-factor/app"),
                                                            "code": totp_now(secret, 1)})
    assert code_step.status_code == 303

    signed_out = other.post("/logout", data={"csrf_token": form_token(other, "/account/")})
    assert signed_out.status_code == 303


def test_item_21_a_failed_credential_post_is_not_redirected(app, client):
    make_user(app)
    page = client.get("/login")
    failed = client.post("/login", data={"email": "resident@example.org", "password": "wrong password here",
                                         "next": "/account/", "csrf_token": csrf_token(page.get_data(as_text=True))})
    assert failed.status_code == 401 and "Location" not in failed.headers


def _cors_headers(response) -> dict:
    return {k.lower(): v for k, v in response.headers.items() if k.lower().startswith("access-control-")}


@pytest.mark.parametrize("method, path", [
    ("GET", "/authorize"), ("POST", "/authorize"), ("POST", "/token"), ("POST", "/revoke"), ("POST", "/introspect"),
    ("GET", "/userinfo"), ("POST", "/userinfo"), ("GET", "/logout/end-session"), ("POST", "/login"), ("GET", "/account/"),
])
def test_item_21_no_cors_for_arbitrary_origins_on_private_endpoints(app, client, method, path):
    client_id, _ = make_client(app)
    make_user(app)
    login(client)
    _, challenge = pkce_pair()
    query = "?" + urlencode(authorize_params(client_id, challenge)) if path == "/authorize" else ""
    for origin in (EVIL, "null", "https://billing.example.gov.za"):
        preflight = client.options(path + query, headers={"Origin": origin, "Access-Control-Request-Method": method,
                                                          "Access-Control-Request-Headers": "authorization"})
        assert _cors_headers(preflight) == {}, (path, origin)
        actual = client.open(path + query, method=method, headers={"Origin": origin})
        assert _cors_headers(actual) == {}, (path, origin)


@pytest.mark.parametrize("path", ["/.well-known/openid-configuration", "/jwks.json"])
def test_item_21_public_metadata_is_readable_cross_origin_without_credentials(client, path):
    response = client.get(path, headers={"Origin": EVIL, "Cookie": "session=whatever"})
    headers = _cors_headers(response)
    assert headers.get("access-control-allow-origin") == "*"  # never the reflected origin
    assert "access-control-allow-credentials" not in headers
    assert "Set-Cookie" not in response.headers
