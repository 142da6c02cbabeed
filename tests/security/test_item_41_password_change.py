"""Checklist 41: password change. The signed-in resident's new password goes through the same
blocklist as sign-up (common, site-derived, own email, too short) and is refused with the reason,
the stored hash unchanged and no notice sent; a wrong current password counts on the sign-in
limiter; a successful change mails the resident's address and ends every other session."""
from __future__ import annotations

import pytest

from idp.extensions import db
from idp.models import User
from idp.services import throttle
from tests.conftest import csrf_token
from tests.integration.test_signin_flows import PASSWORD, login, make_user
from tests.support.smtp import body_of

NEW = "purple elephants dance at dawn"


def _change(client, current, new, confirm=None):
    token = csrf_token(client.get("/account/password").get_data(as_text=True))
    return client.post("/account/password", data={"csrf_token": token, "current_password": current,
                                                   "password": new, "confirm": confirm or new})


def _hash(app):
    with app.app_context():
        return db.session.scalar(db.select(User.password_hash))


@pytest.mark.parametrize("new, reason", [
    ("Password12345678", "too easy to guess"),
    ("1qaz2wsx3edc4rfv", "too common"),
    ("ecitizen-passport-2026", "too easy to guess for this site"),
    ("amara@example.org-secret", "email address"),
    ("short but 14ch", "at least 15 characters"),
])
def test_item_41_new_password_is_blocklist_checked(app, smtp_server, new, reason):
    make_user(app)
    client = app.test_client()
    assert login(client).status_code == 303
    before = _hash(app)
    response = _change(client, PASSWORD, new)
    assert response.status_code == 400 and reason in response.get_data(as_text=True)
    assert _hash(app) == before
    assert login(app.test_client(), password=PASSWORD).status_code == 303
    assert smtp_server.messages == []


def test_item_41_wrong_current_password_uses_the_sign_in_limiter(app):
    make_user(app)
    client = app.test_client()
    assert login(client).status_code == 303
    before = _hash(app)
    response = _change(client, "not my current password", NEW)
    assert response.status_code == 400 and "current password is not right" in response.get_data(as_text=True)
    with app.app_context():
        assert throttle.failures("login-account", "amara@example.org") == 1
    assert _hash(app) == before


def test_item_41_success_notifies_and_ends_other_sessions(app, smtp_server):
    make_user(app)
    client, other = app.test_client(), app.test_client()
    assert login(client).status_code == 303 and login(other).status_code == 303
    assert _change(client, PASSWORD, NEW).status_code == 303
    notice = smtp_server.wait_for("amara@example.org", subject_contains="was changed")
    assert "If this was not you" in body_of(notice) and NEW not in body_of(notice)
    assert other.get("/account/").status_code == 302
    assert client.get("/account/").status_code == 200
