"""Checklist 65: binding and removal of passkeys. Adding a passkey from a session that has not
shown the resident's existing second factor is sent to step-up and stores nothing; a passkey
added from an MFA session is announced by email. The last way a resident can sign in (the only
passkey of an account without a password) cannot be removed; a resident who lost a passkey signs
in with a recovery code and removes it."""
from __future__ import annotations

import re

from sqlalchemy import func, update

from idp.extensions import db
from idp.models import User, WebAuthnCredential
from idp.services import delivery_worker
from tests.integration.test_pages_account import signed_in_client
from tests.integration.test_signin_flows import login
from tests.support.mfa import enrol_totp, form_token, post_form
from tests.support.passkeys_http import (
    add_passkey,
    post_json,
    registration_options,
    signed_in_with_passkey,
    stepped_up,
)
from tests.support.smtp import body_of
from tests.support.soft_authenticator import SoftAuthenticator

EMAIL = "amara@example.org"


def _rows(app, user_id) -> list[WebAuthnCredential]:
    with app.app_context():
        return db.session.scalars(db.select(WebAuthnCredential).where(WebAuthnCredential.user_id == user_id)
                                  .order_by(WebAuthnCredential.id)).all()


def test_item_65_adding_a_passkey_needs_the_existing_second_factor_and_is_announced(app, smtp_server):
    owner, user_id = signed_in_client(app)  # a password-only session
    enrol_totp(owner)
    options = post_json(owner, "/account/security/passkeys/options")
    assert options.status_code == 303 and options.headers["Location"].startswith("/login/step-up")
    forged = post_json(owner, "/account/security/passkeys",
                       {"credential": SoftAuthenticator("localhost", "http://localhost").create(
                           '{"challenge": "AAAA", "user": {"id": "AAAA"}}'), "name": "Mine"})
    assert forged.status_code == 303 and _rows(app, user_id) == []
    stepped_up(app, user_id)
    delivery_worker.wait_idle(app)  # the authenticator app's notice is out before the passkey's
    smtp_server.clear()
    key = SoftAuthenticator("localhost", "http://localhost")
    assert add_passkey(owner, key.create(registration_options(owner))).status_code == 200
    assert len(_rows(app, user_id)) == 1
    notice = smtp_server.wait_for(EMAIL, subject_contains="sign-in method was added")
    assert "passkey" in body_of(notice) and "/not-me/" in body_of(notice)


def test_item_65_the_last_way_to_sign_in_cannot_be_removed(app, smtp_server):
    owner, user_id, _ = signed_in_with_passkey(app)
    with app.app_context():  # an account that signs in with passkeys only
        db.session.execute(update(User).where(User.id == user_id).values(password_hash=None))
        db.session.commit()
    [only] = _rows(app, user_id)
    smtp_server.clear()
    refused = post_form(owner, f"/account/security/passkeys/{only.id}/remove", token_from="/account/security")
    assert refused.status_code == 400
    assert "only way you can sign in" in refused.get_data(as_text=True)
    assert len(_rows(app, user_id)) == 1
    second = SoftAuthenticator("localhost", "http://localhost")
    assert add_passkey(owner, second.create(registration_options(owner))).status_code == 200
    removed = post_form(owner, f"/account/security/passkeys/{only.id}/remove", token_from="/account/security")
    assert removed.status_code == 303
    assert [row.id for row in _rows(app, user_id)] != [only.id] and len(_rows(app, user_id)) == 1
    smtp_server.wait_for(EMAIL, subject_contains="was removed")


def test_item_65_with_a_password_left_the_only_passkey_may_go(app):
    owner, user_id, _ = signed_in_with_passkey(app)
    [only] = _rows(app, user_id)
    assert post_form(owner, f"/account/security/passkeys/{only.id}/remove",
                     token_from="/account/security").status_code == 303
    assert _rows(app, user_id) == []


def test_item_65_a_lost_passkey_is_removed_after_a_recovery_code_sign_in(app):
    owner, user_id, _ = signed_in_with_passkey(app)
    codes = owner.get("/account/security/recovery-codes").get_data(as_text=True)
    code = re.findall(r"<code>([a-z2-9]{5}(?:-[a-z2-9]{5})+)</code>", codes)[0]
    [lost] = _rows(app, user_id)
    browser = app.test_client()  # a new phone: the passkey is gone with the old one
    assert login(browser).headers["Location"] == "/login/second-factor"
    done = browser.post("/login/second-factor/recovery",
                        data={"csrf_token": form_token(browser, "/login/second-factor/recovery"), "code": code})
    assert done.status_code == 303
    removed = post_form(browser, f"/account/security/passkeys/{lost.id}/remove", token_from="/account/security")
    assert removed.status_code == 303 and _rows(app, user_id) == []
    with app.app_context():
        assert db.session.scalar(db.select(func.count()).select_from(WebAuthnCredential)) == 0
