"""Checklist 56: SMS OTP properties. Texted sign-in codes are six random digits; a code works only
in the sign-in it was sent for (a code texted to browser A is refused in browser B for the same
account), only for its purpose (a phone-verification code is no sign-in code), once, and a new
code voids the previous one."""
from __future__ import annotations

import pytest
from sqlalchemy import update

from idp.extensions import db
from idp.models import User
from tests.integration.test_pages_account import signed_in_client
from tests.integration.test_signin_flows import login
from tests.support.mfa import clear_texts, form_token, last_texted_code, post_form, texted_codes
from tests.support.passkeys_http import stepped_up

NUMBER, NEW_NUMBER = "+27821234567", "+27831234567"
SMS = "/login/second-factor/sms"


@pytest.fixture
def sms_user(app):
    clear_texts(app)
    client, user_id = signed_in_client(app)
    with app.app_context():
        db.session.execute(update(User).where(User.id == user_id)
                           .values(phone_number=NUMBER, phone_verified_at=db.func.now(), sms_second_factor=True))
        db.session.commit()
    return client, user_id


def _half(app):
    browser = app.test_client()
    assert login(browser).headers["Location"] == "/login/second-factor"
    return browser


def _send(browser) -> None:
    assert post_form(browser, SMS + "/send", token_from="/login/second-factor").status_code == 303


def _enter(browser, code: str) -> int:
    return browser.post(SMS, data={"csrf_token": form_token(browser, SMS), "code": code}).status_code


def test_item_56_codes_are_six_random_digits(app, sms_user):
    for _ in range(4):
        _send(_half(app))
    codes = texted_codes(app, NUMBER)
    assert len(codes) == 4 and all(len(c) == 6 and c.isdigit() for c in codes)
    assert len(set(codes)) > 1


def test_item_56_a_code_works_only_in_the_sign_in_it_was_sent_for(app, sms_user):
    victim, attacker = _half(app), _half(app)
    _send(victim)
    code = last_texted_code(app, NUMBER)
    assert _enter(attacker, code) == 400  # phished from the victim, tried in the attacker's sign-in
    assert attacker.get("/account/").status_code == 302
    assert _enter(victim, code) == 303 and victim.get("/account/").status_code == 200
    assert _enter(_half(app), code) == 400  # and only once


def test_item_56_a_new_code_voids_the_previous_one(app, sms_user):
    browser = _half(app)
    _send(browser)
    first = last_texted_code(app, NUMBER)
    _send(browser)
    second = last_texted_code(app, NUMBER)
    assert first != second or len(texted_codes(app, NUMBER)) == 2
    if first != second:
        assert _enter(browser, first) == 400
    assert _enter(browser, second) == 303


def test_item_56_a_phone_verification_code_is_no_sign_in_code(app, sms_user):
    client, _ = sms_user
    stepped_up(app, sms_user[1])
    assert post_form(client, "/account/security/phone", {"phone": NEW_NUMBER}).status_code == 303
    verification = last_texted_code(app, NEW_NUMBER)
    browser = _half(app)
    _send(browser)
    sign_in_code = last_texted_code(app, NUMBER)
    if verification != sign_in_code:
        assert _enter(browser, verification) == 400
    assert browser.get("/account/").status_code == 302
    assert _enter(browser, sign_in_code) == 303
