"""Checklist 24: Session cookie attributes. Every cookie the IdP sets during a whole sign-in (the
session, the half-way second-factor state, the browser cookie, the language choice) is attacked for
weak attributes on an https deployment: each must be Secure, HttpOnly, SameSite=Lax, Path=/, without
Domain, the session and browser cookies ``__Host-`` prefixed, the session value an opaque random id
without personal data that stays far below 4096 bytes however large the session grows, and no
cookie may ever be usable over plain HTTP (Flask's default signed ``session`` cookie never appears)."""
from __future__ import annotations

import re

import pytest

from idp.extensions import db
from idp.models import TotpCredential
from idp.models.types import utcnow
from idp.services import accounts, totp
from tests.conftest import csrf_token, migrated_app
from tests.support.mfa import totp_now

HOST = "id.example.gov.za"
HTTPS = f"https://{HOST}"
PASSWORD = "a long enough resident passphrase"
OPAQUE = re.compile(r"^[A-Za-z0-9_-]{43}$")  # secrets.token_urlsafe(32)


@pytest.fixture(scope="module")
def https_app(tmp_path_factory, smtp_server):
    with migrated_app(tmp_path_factory.mktemp("item24"), smtp_server.port, IDP_ISSUER=HTTPS) as application:
        yield application


def _cookies(response) -> dict[str, dict]:
    """Every Set-Cookie of a response: name -> {"value": ..., attribute (lower case): value or True}."""
    found = {}
    for header in response.headers.getlist("Set-Cookie"):
        pair, *attributes = [part.strip() for part in header.split(";")]
        name, value = pair.split("=", 1)
        attrs = {"value": value, "_raw": header}
        for attribute in attributes:
            key, _, val = attribute.partition("=")
            attrs[key.lower()] = val if val else True
        found[name] = attrs
    return found


def _assert_strict(name: str, attrs: dict) -> None:
    assert attrs.get("secure") is True, (name, attrs["_raw"])
    assert attrs.get("httponly") is True, (name, attrs["_raw"])
    assert str(attrs.get("samesite", "")).lower() in ("lax", "strict"), (name, attrs["_raw"])
    assert attrs.get("path") == "/", (name, attrs["_raw"])
    assert "domain" not in attrs, (name, attrs["_raw"])
    assert len(attrs["_raw"]) <= 4096


def _user(app, email: str, *, with_app: bool = False) -> str | None:
    """A verified resident; with ``with_app`` an authenticator app is set up and its secret returned."""
    with app.app_context():
        user = accounts.create_user(email, PASSWORD, name="Zanele Khumalo", email_verified=True)
        if not with_app:
            return None
        secret = totp.begin_enrolment(user)
        db.session.scalar(db.select(TotpCredential).where(TotpCredential.user_id == user.id)).confirmed_at = utcnow()
        db.session.commit()
        return secret


def _post(http, path, data, page_path):
    page = http.get(page_path, base_url=HTTPS)
    assert page.status_code == 200, (page_path, page.status_code)
    return http.post(path, base_url=HTTPS, headers={"Referer": HTTPS + page_path},
                     data={"csrf_token": csrf_token(page.get_data(as_text=True)), **data})


def test_item_24_every_cookie_of_a_whole_sign_in_is_strict(https_app):
    secret = _user(https_app, "cookies@example.org", with_app=True)
    http = https_app.test_client()
    seen: dict[str, dict] = {}

    def collect(response):
        for name, attrs in _cookies(response).items():
            seen.setdefault(name, attrs)
            if attrs["value"]:  # a deletion carries no value and no risk
                _assert_strict(name, attrs)
        return response

    collect(http.get("/login", base_url=HTTPS))
    half_way = collect(_post(http, "/login", {"email": "cookies@example.org", "password": PASSWORD, "next": ""},
                             "/login"))
    assert half_way.status_code == 303 and "/login/second-factor" in half_way.headers["Location"]
    done = collect(_post(http, "/login/second-factor/app", {"code": totp_now(secret)}, "/login/second-factor/app"))
    assert done.status_code == 303
    assert http.get("/account/", base_url=HTTPS).status_code == 200
    collect(_post(http, "/language", {"lang": "af", "next": "/account/"}, "/account/"))
    collect(_post(http, "/logout", {}, "/account/"))

    assert {"__Host-idp_session", "__Host-idp_device", "idp_lang"} <= set(seen), sorted(seen)
    assert "session" not in seen and "idp_session" not in seen and "idp_device" not in seen
    # The session and browser ids are prefixed, so no sibling subdomain can plant or overwrite them.
    assert OPAQUE.match(seen["__Host-idp_session"]["value"])


def test_item_24_session_value_is_opaque_small_and_free_of_personal_data(https_app):
    _user(https_app, "opaque.cookie@example.org")
    http = https_app.test_client()
    huge_next = "/account/?" + "x" * 8000  # the largest "next" the sign-in keeps in the session
    response = _post(http, "/login", {"email": "opaque.cookie@example.org", "password": PASSWORD, "next": huge_next},
                     "/login")
    assert response.status_code == 303
    cookie = _cookies(response)["__Host-idp_session"]
    assert OPAQUE.match(cookie["value"]), cookie["value"]
    for header in response.headers.getlist("Set-Cookie"):
        assert len(header) < 200
        assert "opaque.cookie" not in header and "Zanele" not in header and "xxxx" not in header
    # Nothing to decode: the value is not a signed payload (Flask's default is base64 JSON + signature).
    assert "." not in cookie["value"]
    # The session lifetime is the server's business: no Max-Age/Expires a browser could be made to keep.
    assert "max-age" not in cookie and "expires" not in cookie


def test_item_24_plain_http_never_receives_a_usable_cookie(https_app):
    _user(https_app, "plain.http@example.org")
    http = https_app.test_client()
    page = http.get("/login", base_url=f"http://{HOST}")  # TLS stripped somewhere on the way
    for name, attrs in _cookies(page).items():
        assert attrs.get("secure") is True, attrs["_raw"]  # a browser never stores it from plain HTTP
        assert name.startswith("__Host-") or name == "idp_lang", name
    assert page.headers["Strict-Transport-Security"].startswith("max-age=31536000")
    # And a session id that travels over plain HTTP without the prefix is not honoured on https.
    attacker = https_app.test_client()
    attacker.get("/login", base_url=HTTPS)
    planted = attacker.get_cookie("__Host-idp_session", domain=HOST)
    assert planted is not None
    victim = https_app.test_client()
    victim.set_cookie("idp_session", planted.value, domain=HOST)
    assert victim.get("/account/", base_url=HTTPS).status_code == 302
