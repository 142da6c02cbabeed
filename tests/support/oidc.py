"""Helpers for driving the OIDC endpoints with the Flask test client."""
from __future__ import annotations

import base64
import hashlib
import secrets
from urllib.parse import parse_qs, urlencode, urlsplit

from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet

from idp.services import accounts
from idp.services import clients as client_service

REDIRECT = "https://billing.example.gov.za/cb"
PASSWORD = "a long enough resident passphrase"


def pkce_pair() -> tuple[str, str]:
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    return verifier, challenge


def make_client(app, **options):
    """Register a client; returns (client_id, secret)."""
    options.setdefault("scope", "openid profile email offline_access")
    options.setdefault("grant_types", ["authorization_code", "refresh_token", "client_credentials"])
    with app.app_context():
        client, secret = client_service.create_client(options.pop("name", "Billing"),
                                                      options.pop("redirect_uris", [REDIRECT]), **options)
        return client.client_id, secret


def make_user(app, email="resident@example.org", password=PASSWORD, name="Lindiwe Dlamini"):
    with app.app_context():
        return accounts.create_user(email, password, name=name, email_verified=True).sub


def login(http, email="resident@example.org", password=PASSWORD):
    from tests.conftest import csrf_token
    from tests.support.bot_challenge import answered

    html = http.get("/login").get_data(as_text=True)
    response = http.post("/login", data={"email": email, "password": password, "next": "/account/",
                                         "csrf_token": csrf_token(html), **answered(html)})
    assert response.status_code in (302, 303), response.status_code


def authorize_params(client_id, challenge, **extra):
    params = {"response_type": "code", "client_id": client_id, "redirect_uri": REDIRECT,
              "scope": "openid profile email offline_access", "state": "st-123", "nonce": "n-456",
              "code_challenge": challenge, "code_challenge_method": "S256"}
    params.update(extra)
    return {k: v for k, v in params.items() if v is not None}


def authorize(http, params):
    return http.get("/authorize?" + urlencode(params))


def query_of(location: str) -> dict:
    return {k: v[0] for k, v in parse_qs(urlsplit(location).query).items()}


def get_code(http, client_id, challenge, **extra):
    """Authorize (approving consent when asked) and return the code."""
    from tests.conftest import csrf_token

    params = authorize_params(client_id, challenge, **extra)
    response = authorize(http, params)
    if response.status_code == 200:  # consent screen
        response = http.post("/authorize?" + urlencode(params),
                             data={"decision": "allow", "csrf_token": csrf_token(response.get_data(as_text=True))})
    assert response.status_code == 302, response.get_data(as_text=True)[:500]
    location = response.headers["Location"]
    assert location.startswith(REDIRECT + "?"), location
    return query_of(location)["code"]


def exchange(http, client_id, secret, code, verifier, **extra):
    data = {"grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT, "code_verifier": verifier}
    data.update(extra)
    return http.post("/token", data={k: v for k, v in data.items() if v is not None}, auth=(client_id, secret))


def issue_tokens(http, rp) -> dict:
    """Run the code flow for ``rp`` (client_id, secret) and return the token response, asserting a 200."""
    verifier, challenge = pkce_pair()
    response = exchange(http, rp[0], rp[1], get_code(http, rp[0], challenge), verifier)
    assert response.status_code == 200, response.get_json()
    return response.get_json()


def verifies(token: str, jwks: dict) -> bool:
    """Whether a signed JWT verifies with a key of ``jwks`` (RS256 or ES256)."""
    try:
        jwt.decode(token, KeySet.import_key_set(jwks), algorithms=["RS256", "ES256"])
    except (JoseError, ValueError):
        return False
    return True
