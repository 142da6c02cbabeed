"""Checklist 61: user presence and verification policy. An authenticator that reports no user
presence (UP=0) is refused at registration, at passwordless sign-in and as a second factor;
passwordless sign-in without user verification (UV=0) is refused; as a second factor after the
password, presence is enough (the documented policy: the password is the other factor)."""
from __future__ import annotations

from sqlalchemy import func

from idp.extensions import db
from idp.models import UserSession, WebAuthnCredential
from tests.integration.test_signin_flows import login
from tests.support.passkeys_http import (
    add_passkey,
    finish_sign_in,
    passwordless_options,
    post_json,
    registration_options,
    signed_in_with_passkey,
)
from tests.support.soft_authenticator import UP, SoftAuthenticator


class Absent(SoftAuthenticator):
    """An authenticator that signs without anyone touching it (UP=0)."""

    def _auth_data(self, rp_id, flags, extra=b""):
        return super()._auth_data(rp_id, flags & ~UP, extra)


def _live(app) -> int:
    with app.app_context():
        return db.session.scalar(db.select(func.count()).select_from(UserSession).where(UserSession.ended_at.is_(None)))


def _credentials(app) -> int:
    with app.app_context():
        return db.session.scalar(db.select(func.count()).select_from(WebAuthnCredential))


def _as_absent(key: SoftAuthenticator) -> Absent:
    absent = Absent(key.rp_id, key.origin)
    absent.key, absent.credential_id, absent.user_handle = key.key, key.credential_id, key.user_handle
    absent.sign_count = key.sign_count
    return absent


def test_item_61_no_user_presence_is_refused_at_registration(app):
    owner, _, _ = signed_in_with_passkey(app)
    before = _credentials(app)
    response = add_passkey(owner, Absent("localhost", "http://localhost").create(registration_options(owner)))
    assert response.status_code == 400 and _credentials(app) == before


def test_item_61_no_user_presence_is_refused_at_passwordless_sign_in(app):
    _, _, key = signed_in_with_passkey(app)
    browser = app.test_client()
    sessions = _live(app)
    response = finish_sign_in(browser, _as_absent(key).get(passwordless_options(browser)))
    assert response.status_code == 400 and _live(app) == sessions
    assert browser.get("/account/").status_code == 302


def test_item_61_passwordless_needs_user_verification(app):
    _, _, key = signed_in_with_passkey(app)
    browser = app.test_client()
    options = passwordless_options(browser)
    assert '"userVerification": "required"' in options
    sessions = _live(app)
    response = finish_sign_in(browser, key.get(options, user_verified=False))
    assert response.status_code == 400 and _live(app) == sessions
    assert browser.get("/account/").status_code == 302


def test_item_61_as_second_factor_presence_is_required_and_verification_is_not(app):
    _, _, key = signed_in_with_passkey(app)
    absent_browser = app.test_client()
    assert login(absent_browser).headers["Location"] == "/login/second-factor"
    options = post_json(absent_browser, "/login/passkey/options").get_data(as_text=True)
    sessions = _live(app)
    refused = post_json(absent_browser, "/login/passkey", {"credential": _as_absent(key).get(options)})
    assert refused.status_code == 400 and _live(app) == sessions
    browser = app.test_client()
    assert login(browser).headers["Location"] == "/login/second-factor"
    options = post_json(browser, "/login/passkey/options").get_data(as_text=True)
    assert '"userVerification": "preferred"' in options
    accepted = post_json(browser, "/login/passkey", {"credential": key.get(options, user_verified=False)})
    assert accepted.status_code == 200 and browser.get("/account/").status_code == 200
