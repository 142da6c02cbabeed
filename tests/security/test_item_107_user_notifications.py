"""Checklist 107: user notifications. Registering a new passkey and linking a municipal account each
mail the resident a notice (number masked) with a working "this wasn't me" link that, followed,
locks the account and ends every session; a verified phone number does not (yet) get an SMS copy."""
from __future__ import annotations

import re
from pathlib import Path

from idp.extensions import db
from idp.models import User, UserSession
from idp.models.types import utcnow
from tests.conftest import csrf_token
from tests.integration.test_pages_account import signed_in_client
from tests.support.links import open_link
from tests.support.mfa import post_form
from tests.support.passkeys_http import ORIGIN, RP_ID, add_passkey, registration_options
from tests.support.register import add_account, with_check_digit
from tests.support.smtp import body_of
from tests.support.soft_authenticator import SoftAuthenticator

EMAIL = "amara@example.org"


def _not_me_link(message) -> str:
    match = re.search(r"https?://[^\s\"<>]+/not-me/[A-Za-z0-9_-]+", body_of(message))
    assert match, "the notice has no 'this wasn't me' link"
    return match.group(0)


def _follow_not_me(app, link: str) -> None:
    visitor = app.test_client()
    page = open_link(visitor, link)
    assert page.status_code == 200
    done = visitor.post(page.request.path, data={"csrf_token": csrf_token(page.get_data(as_text=True))})
    assert done.status_code == 200
    with app.app_context():
        user = db.session.scalar(db.select(User).where(User.email == EMAIL))
        assert user.status == "locked"
        assert db.session.query(UserSession).filter(UserSession.ended_at.is_(None),
                                                    UserSession.user_id == user.id).count() == 0


def test_item_107_new_passkey_notice_has_a_working_not_me_path(app, smtp_server):
    browser, _ = signed_in_client(app, email=EMAIL)
    key = SoftAuthenticator(RP_ID, ORIGIN)
    assert add_passkey(browser, key.create(registration_options(browser))).status_code == 200
    notice = smtp_server.wait_for(EMAIL)
    assert "passkey" in (notice["Subject"] + body_of(notice)).lower()
    _follow_not_me(app, _not_me_link(notice))
    assert browser.get("/account/").status_code == 302  # the signed-in browser was signed out too


def test_item_107_account_link_notice_masks_the_number_and_has_a_not_me_path(app, smtp_server):
    number = add_account(app, with_check_digit("412345678"), pin="4821")
    browser, _ = signed_in_client(app, email=EMAIL)
    linked = post_form(browser, "/account/municipal/link", {"account_number": number, "proof_kind": "linking_pin",
                                                            "proof": "4821", "role": "owner"})
    assert linked.status_code == 303
    notice = smtp_server.wait_for(EMAIL)
    text = notice["Subject"] + body_of(notice)
    assert number not in text and number[-3:] in text  # masked
    _follow_not_me(app, _not_me_link(notice))


def test_item_107_notices_also_reach_the_verified_phone(app, smtp_server):
    browser, _ = signed_in_client(app, email=EMAIL)
    with app.app_context():
        user = db.session.scalar(db.select(User).where(User.email == EMAIL))
        user.phone_number, user.phone_verified_at = "+27831234567", utcnow()
        db.session.commit()
    key = SoftAuthenticator(RP_ID, ORIGIN)
    assert add_passkey(browser, key.create(registration_options(browser))).status_code == 200
    outbox = Path(app.config["IDP_SETTINGS"].sms_outbox_dir)
    assert outbox.exists() and any("passkey" in p.read_text().lower() for p in outbox.iterdir())
