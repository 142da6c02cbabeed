"""The public pages: form contracts (labels, autocomplete, errors tied to fields) and headers."""
from __future__ import annotations

import re

import pytest

from tests.conftest import csrf_token


@pytest.mark.parametrize("path, fields", [
    ("/login", {"email": "username webauthn", "password": "current-password"}),
    ("/register", {"name": "name", "email": "email", "password": "new-password"}),
    ("/forgot-password", {"email": "username"}),
    ("/verify-email/resend", {"email": "email"}),
])
def test_forms_have_labels_autocomplete_csrf_and_anti_framing(client, path, fields):
    response = client.get(path)
    assert response.status_code == 200
    assert "frame-ancestors 'none'" in response.headers["Content-Security-Policy"]
    assert response.headers["X-Frame-Options"] == "DENY"
    html = response.get_data(as_text=True)
    assert csrf_token(html)
    assert "style=" not in html
    # Scripts only from our own static files (the passkey helper), never inline.
    assert all(tag.startswith('<script src="/static/') for tag in re.findall(r"<script[^>]*>", html))
    for name, token in fields.items():
        tag = re.search(rf'<input[^>]*name="{name}"[^>]*>', html).group(0)
        assert f'autocomplete="{token}"' in tag, (name, tag)
        assert f'<label for="{name}"' in html


def test_errors_are_tied_to_fields_and_summarised(client):
    page = client.get("/register")
    response = client.post("/register", data={"csrf_token": csrf_token(page.get_data(as_text=True)),
                                              "name": "Amara", "email": "bad@", "password": "correct horse battery stapler"})
    html = response.get_data(as_text=True)
    assert response.status_code == 400
    assert 'id="email-error"' in html and 'aria-describedby="email-error"' in html and 'aria-invalid="true"' in html
    assert 'class="error-summary"' in html and 'href="#email"' in html
    assert "correct horse battery stapler" not in html  # the password is never echoed back


def test_forgot_password_and_register_keep_next(client):
    target = "/authorize?client_id=abc&state=xyz"
    html = client.get("/login", query_string={"next": target}).get_data(as_text=True)
    link = re.search(r'href="(/register\?next=[^"]+)"', html).group(1)
    register = client.get(link.replace("&amp;", "&")).get_data(as_text=True)
    assert 'name="next" type="hidden" value="/authorize?client_id=abc&amp;state=xyz"' in register


def test_reset_link_with_garbage_token_is_generic(client):
    for token in ("x", "a" * 43, "../../etc/passwd", "a" * 500):
        response = client.get("/reset-password/" + token)
        assert response.status_code in (400, 404)
        if response.status_code == 400:
            assert "not valid or has expired" in response.get_data(as_text=True)


def test_signed_out_page_and_logout_when_not_signed_in(app, client):
    page = client.get("/login")
    response = client.post("/logout", data={"csrf_token": csrf_token(page.get_data(as_text=True))})
    assert response.status_code == 303
    assert "signed out" in client.get("/signed-out").get_data(as_text=True)


def test_account_redirect_keeps_query(app, client):
    response = client.get("/account/services?x=1")
    assert response.status_code == 302
    assert response.headers["Location"] == "/login?next=/account/services?x%3D1"
