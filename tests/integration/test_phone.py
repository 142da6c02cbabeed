"""Mobile numbers: E.164, a 6-digit texted code (10 minutes, single use, 5 tries that a resend does
not reset), send limits per number and per address, sign-in with the number, and the phone claims."""
from __future__ import annotations

import time

from idp.extensions import db
from idp.models import User
from idp.oidc.claims import for_scope
from idp.services import sms_codes
from tests.integration.test_mfa_signin import signed_in
from tests.integration.test_signin_flows import login, make_user
from tests.support.mfa import clear_texts, last_texted_code, post_form, texted_codes

NUMBER = "+27821234567"


def add_number(client, raw="082 123 4567"):
    return post_form(client, "/account/security/phone", {"phone": raw})


def enter_code(client, code):
    return post_form(client, "/account/security/phone/verify", {"code": code}, token_from="/account/security")


def test_a_national_number_is_stored_in_e164_after_the_right_code(app, smtp_server):
    clear_texts(app)
    client, user_id = signed_in(app)
    sent = add_number(client)
    assert sent.status_code == 303 and sent.headers["Location"] == "/account/security/phone/verify"
    assert "+27 82 123 4567" in client.get("/account/security/phone/verify").get_data(as_text=True)
    with app.app_context():
        assert db.session.get(User, user_id).phone_number is None  # not before the code
    assert enter_code(client, last_texted_code(app, NUMBER)).status_code == 303
    with app.app_context():
        user = db.session.get(User, user_id)
        assert user.phone_number == NUMBER and user.phone_number_verified
        assert for_scope(user, "openid phone") == {"sub": user.sub, "phone_number": NUMBER,
                                                  "phone_number_verified": True}
        assert "phone_number" not in for_scope(user, "openid email")
    smtp_server.wait_for("amara@example.org", subject_contains="mobile number was changed")


def test_bad_numbers_are_refused_with_a_reason(app):
    clear_texts(app)
    client, _ = signed_in(app)
    for raw in ("12", "not a number", "+27 21 400 1111", "0" * 40):  # the third is a Cape Town landline
        response = add_number(client, raw)
        assert response.status_code == 400, raw
        assert "mobile number" in response.get_data(as_text=True)
    assert texted_codes(app, NUMBER) == []


def test_a_code_works_once(app):
    clear_texts(app)
    client, user_id = signed_in(app)
    add_number(client)
    code = last_texted_code(app, NUMBER)
    assert enter_code(client, code).status_code == 303
    with app.app_context():
        db.session.get(User, user_id).phone_number = None
        db.session.commit()
    assert enter_code(client, code).status_code == 400


def test_a_code_expires_after_ten_minutes(app, monkeypatch):
    clear_texts(app)
    client, user_id = signed_in(app)
    add_number(client)
    code = last_texted_code(app, NUMBER)
    real = time.time
    monkeypatch.setattr(sms_codes.time, "time", lambda: real() + 601)
    response = enter_code(client, code)
    assert response.status_code == 400 and "expired" in response.get_data(as_text=True)
    with app.app_context():
        assert db.session.get(User, user_id).phone_number is None


def test_five_wrong_codes_end_it_and_a_resend_does_not_reset_the_count(app):
    clear_texts(app)
    client, user_id = signed_in(app)
    add_number(client)
    for _ in range(4):
        assert enter_code(client, "000000").status_code == 400
    resent = post_form(client, "/account/security/phone/resend", token_from="/account/security/phone/verify")
    assert resent.status_code == 303
    fifth = enter_code(client, "000000")
    assert fifth.status_code == 429 and "Too many wrong codes" in fifth.get_data(as_text=True)
    right = enter_code(client, last_texted_code(app, NUMBER))
    assert right.status_code in (400, 429)
    with app.app_context():
        assert db.session.get(User, user_id).phone_number is None
    assert add_number(client).status_code == 429  # no new code for this number either


def test_sends_per_number_are_limited(app):
    clear_texts(app)
    client, _ = signed_in(app)
    limit = app.config["IDP_SETTINGS"].sms_max_per_number
    for _ in range(limit):
        assert add_number(client).status_code == 303
    refused = add_number(client)
    assert refused.status_code == 429 and "Too many codes" in refused.get_data(as_text=True)
    assert len(texted_codes(app, NUMBER)) == limit


def test_sends_per_client_address_are_limited(app, monkeypatch):
    clear_texts(app)
    client, _ = signed_in(app)
    monkeypatch.setattr(app.config["IDP_SETTINGS"], "sms_max_per_account", 100)  # the address's limit first
    limit = app.config["IDP_SETTINGS"].sms_max_per_ip
    statuses = [add_number(client, f"+27 82 555 {i:04d}").status_code for i in range(limit + 1)]
    assert statuses[:limit] == [303] * limit and statuses[limit] == 429


def test_sign_in_with_the_verified_number(app):
    clear_texts(app)
    client, user_id = signed_in(app)
    add_number(client)
    enter_code(client, last_texted_code(app, NUMBER))
    other = app.test_client()
    assert login(other, email="082 123 4567").status_code == 303
    assert other.get("/account/").status_code == 200
    assert login(app.test_client(), email="+27 82 123 4567", password="wrong password here").status_code == 401
    assert login(app.test_client(), email="083 999 9999").status_code == 401


def test_a_number_of_another_account_is_refused_at_confirmation(app):
    clear_texts(app)
    make_user(app, email="owner@example.org")
    with app.app_context():
        owner = db.session.scalar(db.select(User).where(User.email == "owner@example.org"))
        owner.phone_number = NUMBER
        db.session.commit()
    client = app.test_client()
    make_user(app)
    login(client)
    add_number(client)
    response = enter_code(client, last_texted_code(app, NUMBER))
    assert response.status_code == 400 and "another account" in response.get_data(as_text=True)



def test_the_number_and_the_address_share_one_failure_counter(app):
    client, user_id = signed_in(app)
    with app.app_context():
        user = db.session.get(User, user_id)
        user.phone_number, user.phone_verified_at = NUMBER, user.created_at
        db.session.commit()
    limit = app.config["IDP_SETTINGS"].login_max_failures
    for attempt in range(limit // 2):
        login(app.test_client(), email="082 123 4567", password=f"wrong guess {attempt}")
    statuses = [login(app.test_client(), password=f"other guess {attempt}").status_code
                for attempt in range(limit - limit // 2)]
    assert statuses[-1] == 429
    assert login(app.test_client(), email="082 123 4567").status_code == 429  # even the right password
