"""Checklist 92: Unicode hygiene. Bytes that are not UTF-8 (invalid sequences, overlong encodings,
CESU-8 lone surrogates, NUL), JSON-escaped lone surrogates, and zero-width or bidirectional controls in
sign-in identifiers, addresses and names: refused with 400 (never a 500, never stored), so no two
accounts or names can look alike through invisible characters."""
from __future__ import annotations

import pytest

from idp.extensions import db
from idp.models import User
from tests.conftest import csrf_token
from tests.integration.test_signin_flows import PASSWORD, make_user

BAD_BYTES = {"invalid": b"\xff\xfe", "overlong-slash": b"\xc0\xaf", "overlong-nul": b"\xc0\x80",
             "cesu-surrogate": b"\xed\xa0\x80", "truncated": b"\xe2\x82", "nul": b"\x00"}
INVISIBLE = {"zero-width-space": "\u200b", "zwj": "\u200d", "rlo": "\u202e", "lri": "\u2066", "bom": "\ufeff",
             "lrm": "\u200e", "word-joiner": "\u2060"}
NEW_PASSWORD = "a completely fresh passphrase for me"


def _token(client, path: str) -> str:
    return csrf_token(client.get(path).get_data(as_text=True))


def _raw_post(client, path: str, fields: list[tuple[str, bytes]]):
    from urllib.parse import quote_from_bytes

    body = "&".join(f"{name}={quote_from_bytes(value)}" for name, value in fields)
    return client.post(path, data=body, content_type="application/x-www-form-urlencoded")


def _users(app) -> list[str]:
    with app.app_context():
        return list(db.session.scalars(db.select(User.email)))


@pytest.mark.parametrize("kind", BAD_BYTES)
def test_item_92_undecodable_bytes_in_forms_are_400(app, client, kind):
    make_user(app)
    bad = BAD_BYTES[kind]
    token = _token(client, "/login").encode()
    signin = _raw_post(client, "/login", [("csrf_token", token), ("email", b"amara" + bad + b"@example.org"),
                                          ("password", PASSWORD.encode())])
    assert signin.status_code == 400
    token = _token(client, "/register").encode()
    register = _raw_post(client, "/register", [("csrf_token", token), ("name", b"Eve" + bad),
                                               ("email", b"eve" + bad + b"@example.org"),
                                               ("password", NEW_PASSWORD.encode())])
    assert register.status_code == 400
    token = _token(client, "/forgot-password").encode()
    reset = _raw_post(client, "/forgot-password", [("csrf_token", token), ("email", b"amara@example.org" + bad)])
    assert reset.status_code == 400
    assert _users(app) == ["amara@example.org"]


@pytest.mark.parametrize("kind", INVISIBLE)
def test_item_92_invisible_characters_in_identifiers_and_names_are_refused(app, client, kind):
    make_user(app)
    char = INVISIBLE[kind]
    page = client.get("/register")
    look_alike = client.post("/register", data={"csrf_token": csrf_token(page.get_data(as_text=True)),
                                                "name": "Amara", "email": f"am{char}ara@example.org",
                                                "password": NEW_PASSWORD})
    assert look_alike.status_code == 400
    page = client.get("/register")
    disguised = client.post("/register", data={"csrf_token": csrf_token(page.get_data(as_text=True)),
                                               "name": f"Amara{char} Dlamini", "email": "other@example.org",
                                               "password": NEW_PASSWORD})
    assert disguised.status_code == 400
    page = client.get("/login")
    signin = client.post("/login", data={"csrf_token": csrf_token(page.get_data(as_text=True)),
                                         "email": f"amara@example.org{char}", "password": PASSWORD})
    assert signin.status_code == 400
    assert _users(app) == ["amara@example.org"]


@pytest.mark.parametrize("value", ["\ud800", "a\udfffb", "\ud83d", "a\u0000b"])
def test_item_92_lone_surrogates_in_json_are_refused_cleanly(app, client, value):
    token = _token(client, "/login")
    for body in ({"next": value, "credential": {"id": value}}, {"credential": value}):
        response = client.post("/login/passkey", json=body, headers={"X-CSRFToken": token})
        assert response.status_code == 400
    options = client.post("/login/passkey/options?mode=passwordless", json={"email": value},
                          headers={"X-CSRFToken": token})
    assert options.status_code in (200, 400)


@pytest.mark.parametrize("kind", BAD_BYTES)
def test_item_92_undecodable_query_strings_are_400(app, client, kind):
    from urllib.parse import quote_from_bytes

    escaped = quote_from_bytes(BAD_BYTES[kind])
    for path in (f"/login?next=/account/{escaped}", f"/authorize?client_id=x&state=s{escaped}",
                 f"/?lang={escaped}"):
        response = client.get(path)
        assert response.status_code == 400, path
        assert "Traceback" not in response.get_data(as_text=True)


def test_item_92_a_nul_in_a_json_body_is_bad_json(app):
    from flask import request
    from werkzeug.exceptions import BadRequest

    with app.test_request_context("/login/passkey", method="POST", json={"name": "a\u0000b"}):
        with pytest.raises(BadRequest):
            request.get_json()
        assert request.get_json(silent=True) is None
    with app.test_request_context("/login/passkey", method="POST", json={"name": "ab"}):
        assert request.get_json() == {"name": "ab"}
