"""Checklist 32: No enumeration on login. Sign-in is attempted for an unknown address, a wrong
password, an account locked by staff (with its right password), a deactivated account (right
password) and an unverified account (wrong password): the answers must be identical in status, page
(CSRF token blanked), header names and values (request-unique ones aside) and cookie shape, and the
same work must be done in every case: exactly one argon2 verification with the deployment's
parameters (an unknown address is checked against a dummy hash), so timing cannot tell them apart."""
from __future__ import annotations

import re

import pytest

from idp.extensions import db
from idp.models import User
from tests.conftest import blank_tokens, csrf_token
from tests.integration.test_signin_flows import PASSWORD, make_user

VARYING = {"Date", "X-Request-ID", "Set-Cookie", "Content-Security-Policy", "Content-Length"}


def _attempt(app, email: str, password: str):
    http = app.test_client()
    page = http.get("/login")
    return http.post("/login", data={"csrf_token": csrf_token(page.get_data(as_text=True)), "email": email,
                                     "password": password, "next": ""})


def _shape(response, email: str) -> tuple:
    """What an observer can compare (the typed address, echoed back into the form, aside)."""
    headers = sorted((k, v) for k, v in response.headers.items() if k not in VARYING)
    csp = re.sub(r"'nonce-[^']+'", "'nonce-'", response.headers.get("Content-Security-Policy", ""))
    cookies = sorted(re.sub(r"Expires=[^;]*", "Expires=", re.sub(r"=[^;]*", "=", h, count=1))
                     for h in response.headers.getlist("Set-Cookie"))  # the value and the clock's second vary
    return response.status_code, headers, csp, cookies, blank_tokens(response.get_data(as_text=True)).replace(email, "@")


@pytest.fixture
def accounts_of_every_kind(app):
    make_user(app, email="wrong.password@example.org")
    make_user(app, email="unverified@example.org", verified=False)
    locked = make_user(app, email="locked@example.org")
    deactivated = make_user(app, email="deactivated@example.org")
    with app.app_context():
        db.session.get(User, locked).status = "locked"
        db.session.get(User, locked).lock_reason = "staff"
        db.session.get(User, deactivated).status = "deactivated"
        db.session.commit()
    return [("nobody.here@example.org", PASSWORD), ("wrong.password@example.org", "not the password at all"),
            ("locked@example.org", PASSWORD), ("deactivated@example.org", PASSWORD),
            ("unverified@example.org", "not the password at all")]


def test_item_32_every_failure_looks_the_same(app, accounts_of_every_kind):
    shapes = [_shape(_attempt(app, email, password), email) for email, password in accounts_of_every_kind]
    assert shapes[0][0] == 401
    for email_and_password, shape in zip(accounts_of_every_kind[1:], shapes[1:]):
        assert shape == shapes[0], email_and_password[0]
    assert "not right" in shapes[0][4]


def test_item_32_every_failure_does_the_same_argon2_work(app, accounts_of_every_kind, monkeypatch):
    hasher = app.extensions["idp.hasher"]
    checked: list[str] = []

    class Spy:
        """argon2's PasswordHasher, recording which hash each verification used."""

        def __init__(self, real):
            self.real = real

        def __getattr__(self, name):
            return getattr(self.real, name)

        def verify(self, stored_hash, password):
            checked.append(stored_hash)
            return self.real.verify(stored_hash, password)

    monkeypatch.setattr(hasher, "_ph", Spy(hasher._ph))
    with app.app_context():
        real_params = db.session.scalar(db.select(User.password_hash)).rsplit("$", 2)[0]
    for email, password in accounts_of_every_kind:
        before = len(checked)
        response = _attempt(app, email, password)
        assert response.status_code == 401
        assert len(checked) == before + 1, email  # one verification, never zero, never two
        assert checked[-1].rsplit("$", 2)[0] == real_params, email  # same algorithm and costs
    assert checked[0] == hasher._dummy  # the unknown address was checked against the dummy hash
    assert hasher._dummy not in checked[1:]


def test_item_32_the_locked_account_is_not_revealed_even_with_the_right_password(app, accounts_of_every_kind):
    locked = _attempt(app, "locked@example.org", PASSWORD)
    unknown = _attempt(app, "nobody.at.all@example.org", PASSWORD)
    assert _shape(locked, "locked@example.org") == _shape(unknown, "nobody.at.all@example.org")
    for word in ("locked", "deactivated", "closed", "not verified", "does not exist", "no such account"):
        assert word not in locked.get_data(as_text=True).replace("locked@example.org", "@").lower()
