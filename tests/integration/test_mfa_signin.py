"""Authenticator apps, recovery codes, SMS codes as a second factor, trusted browsers and the
sign-in challenge after the password, through the hosted pages."""
from __future__ import annotations

import time
from types import SimpleNamespace

import pyotp
from sqlalchemy import update

from idp.extensions import db
from idp.models import AuditEvent, Device, RecoveryCode, TotpCredential, User, UserSession
from idp.oidc.acr import ACR_MFA, ACR_PASSWORD
from idp.services import totp
from idp.web import current as mfa_views  # the recent-sign-in gate (RECENT_SIGN_IN) lives there
from idp.web import signin_flow
from tests.integration.test_pages_account import signed_in_client as signed_in
from tests.integration.test_signin_flows import login, make_user
from tests.support.mfa import enrol_totp, form_token, post_form, totp_now
from tests.support.smtp import body_of


def forget_last_step(app, user_id):
    """Let a test use the current TOTP code again (as if 30 seconds had passed)."""
    with app.app_context():
        db.session.execute(update(TotpCredential).where(TotpCredential.user_id == user_id).values(last_used_step=0))
        db.session.commit()


def live_session(app, user_id) -> UserSession:
    with app.app_context():
        return db.session.scalars(db.select(UserSession).where(UserSession.user_id == user_id,
                                                               UserSession.ended_at.is_(None))
                                  .order_by(UserSession.created_at.desc())).first()


def test_totp_enrolment_activates_only_after_a_right_code(app, smtp_server):
    client, user_id = signed_in(app)
    post_form(client, "/account/security/app/start", token_from="/account/security")
    page = client.get("/account/security/app")
    html = page.get_data(as_text=True)
    assert "<svg" in html and 'class="secret"' in html  # QR drawn here, key as text
    assert "http" not in html.split("<svg", 1)[1].split("</svg>", 1)[0].replace("http://www.w3.org", "")
    wrong = client.post("/account/security/app", data={"csrf_token": form_token(client, "/account/security/app"),
                                                       "code": "000000"})
    assert wrong.status_code == 400
    with app.app_context():
        row = db.session.scalar(db.select(TotpCredential).where(TotpCredential.user_id == user_id))
        assert row.confirmed_at is None
        assert "JBSW" not in row.secret_encrypted and len(row.secret_encrypted) > 40  # sealed, not base32
    forget_last_step(app, user_id)


def test_enrolment_shows_ten_recovery_codes_once_and_mails_a_notice(app, smtp_server):
    client, user_id = signed_in(app)
    _, codes = enrol_totp(client)
    assert len(codes) == 10 and len(set(codes)) == 10
    again = client.get("/account/security/recovery-codes").get_data(as_text=True)
    assert not any(code in again for code in codes)
    notice = smtp_server.wait_for("amara@example.org", subject_contains="sign-in method was added")
    assert "authenticator app" in body_of(notice) and "/not-me/" in body_of(notice)
    with app.app_context():
        stored = db.session.scalars(db.select(RecoveryCode.code_digest)).all()
        assert len(stored) == 10 and not any(code.replace("-", "") in s for s in stored for code in codes)


def test_password_then_authenticator_code(app):
    client, user_id = signed_in(app)
    secret, _ = enrol_totp(client)
    other = app.test_client()
    first = login(other)
    assert first.status_code == 303 and first.headers["Location"] == "/login/second-factor"
    assert other.get("/account/").status_code == 302  # not signed in yet
    chooser = other.get("/login/second-factor").get_data(as_text=True)
    assert "authenticator app" in chooser and "recovery code" in chooser
    wrong = other.post("/login/second-factor/app", data={"csrf_token": form_token(other, "/login/second-factor/app"),
                                                         "code": "123456"})
    assert wrong.status_code == 400 and other.get("/account/").status_code == 302
    assert other.get("/login/second-factor").status_code == 200  # the back button still works
    right = other.post("/login/second-factor/app",
                       data={"csrf_token": form_token(other, "/login/second-factor/app"), "code": totp_now(secret, 1)})
    assert right.status_code == 303 and right.headers["Location"] == "/account/"
    assert other.get("/account/").status_code == 200
    record = live_session(app, user_id)
    assert record.acr == ACR_MFA and set(record.amr) == {"pwd", "otp", "mfa"}


def test_a_used_code_is_refused_and_drift_is_one_step(app, monkeypatch):
    client, user_id = signed_in(app)
    secret, _ = enrol_totp(client)
    forget_last_step(app, user_id)
    frozen = time.time()  # a 30-second boundary mid-test would turn "previous" into "two back"
    monkeypatch.setattr(totp, "time", SimpleNamespace(time=lambda: frozen))
    tries = {}
    for label, offset in (("previous", -1), ("two_back", -2), ("replay", -1)):
        other = app.test_client()
        login(other)
        tries[label] = other.post("/login/second-factor/app",
                                  data={"csrf_token": form_token(other, "/login/second-factor/app"),
                                        "code": pyotp.TOTP(secret).at(frozen + 30 * offset)}).status_code
    assert tries == {"previous": 303, "two_back": 400, "replay": 400}


def test_an_expired_challenge_sends_the_resident_back_to_sign_in(app, monkeypatch):
    client, _ = signed_in(app)
    secret, _ = enrol_totp(client)
    other = app.test_client()
    login(other)
    monkeypatch.setattr(signin_flow, "CHALLENGE_TTL", -1)
    response = other.get("/login/second-factor/app")
    assert response.status_code == 303 and response.headers["Location"] == "/login"
    assert other.get("/account/").status_code == 302


def test_recovery_code_works_once_and_warns_by_email(app, smtp_server):
    client, user_id = signed_in(app)
    _, codes = enrol_totp(client)
    smtp_server.clear()
    other = app.test_client()
    login(other)
    used = other.post("/login/second-factor/recovery",
                      data={"csrf_token": form_token(other, "/login/second-factor/recovery"), "code": codes[0].upper()})
    assert used.status_code == 303 and other.get("/account/").status_code == 200
    assert "9 recovery codes left" in body_of(smtp_server.wait_for("amara@example.org", subject_contains="recovery code"))
    third = app.test_client()
    login(third)
    again = third.post("/login/second-factor/recovery",
                       data={"csrf_token": form_token(third, "/login/second-factor/recovery"), "code": codes[0]})
    assert again.status_code == 400 and third.get("/account/").status_code == 302


def _stepped_up(app) -> None:
    """As after a step-up: a resident with a second factor changes factors only from an MFA session."""
    with app.app_context():
        db.session.execute(update(UserSession).values(acr=ACR_MFA, amr=["mfa", "otp", "pwd"]))
        db.session.commit()


def test_regenerating_recovery_codes_needs_a_recent_sign_in_and_voids_the_old_set(app, monkeypatch):
    client, user_id = signed_in(app)
    _, old_codes = enrol_totp(client)
    monkeypatch.setattr(mfa_views, "RECENT_SIGN_IN", -1)
    stale = post_form(client, "/account/security/recovery-codes", token_from="/account/security")
    assert stale.status_code == 303 and stale.headers["Location"].startswith("/login")
    monkeypatch.setattr(mfa_views, "RECENT_SIGN_IN", 600)
    _stepped_up(app)
    fresh = post_form(client, "/account/security/recovery-codes", token_from="/account/security")
    assert fresh.status_code == 303
    new_page = client.get(fresh.headers["Location"]).get_data(as_text=True)
    assert not any(code in new_page for code in old_codes)
    other = app.test_client()
    login(other)
    refused = other.post("/login/second-factor/recovery",
                         data={"csrf_token": form_token(other, "/login/second-factor/recovery"), "code": old_codes[1]})
    assert refused.status_code == 400


def test_removing_a_factor_needs_a_recent_sign_in(app, monkeypatch, smtp_server):
    client, user_id = signed_in(app)
    enrol_totp(client)
    monkeypatch.setattr(mfa_views, "RECENT_SIGN_IN", -1)
    refused = post_form(client, "/account/security/app/remove", token_from="/account/security")
    assert refused.status_code == 303 and refused.headers["Location"].startswith("/login")
    with app.app_context():
        assert db.session.scalar(db.select(TotpCredential).where(TotpCredential.user_id == user_id)) is not None
    monkeypatch.setattr(mfa_views, "RECENT_SIGN_IN", 600)
    _stepped_up(app)
    smtp_server.clear()
    removed = post_form(client, "/account/security/app/remove", token_from="/account/security")
    assert removed.status_code == 303
    with app.app_context():
        assert db.session.scalar(db.select(TotpCredential).where(TotpCredential.user_id == user_id)) is None
        assert db.session.scalar(db.select(RecoveryCode).where(RecoveryCode.user_id == user_id)) is None
    smtp_server.wait_for("amara@example.org", subject_contains="was removed")
    assert login(app.test_client()).headers["Location"] == "/account/"  # password alone again


def test_trusting_a_browser_skips_the_second_factor_honestly(app):
    client, user_id = signed_in(app)
    secret, _ = enrol_totp(client)
    browser = app.test_client()
    login(browser)
    browser.post("/login/second-factor/app", data={"csrf_token": form_token(browser, "/login/second-factor/app"),
                                                   "code": totp_now(secret, 1), "trust": "y"})
    post_form(browser, "/logout", token_from="/account/")
    again = login(browser)
    assert again.status_code == 303 and again.headers["Location"] == "/account/"
    record = live_session(app, user_id)
    assert record.acr == ACR_PASSWORD and record.amr == ["pwd"]  # the truth: no second factor this time
    stranger = app.test_client()
    assert login(stranger).headers["Location"] == "/login/second-factor"  # only that browser
    post_form(client, "/account/security/browsers/forget", token_from="/account/security")
    post_form(browser, "/logout", token_from="/account/")
    assert login(browser).headers["Location"] == "/login/second-factor"


def test_sms_codes_as_second_factor_and_the_city_can_switch_them_off(app, smtp_server):
    from tests.support.mfa import last_texted_code

    client, user_id = signed_in(app)
    with app.app_context():
        user = db.session.get(User, user_id)
        user.phone_number = "+27821234567"
        user.phone_verified_at = user.created_at
        db.session.commit()
    on = post_form(client, "/account/security/sms/on", token_from="/account/security")
    assert on.status_code == 303 and on.headers["Location"] == "/account/security/recovery-codes"
    other = app.test_client()
    login(other)
    chooser = other.get("/login/second-factor").get_data(as_text=True)
    assert "Text a code to +27 82 123 4567" in chooser and "weakest" in chooser
    sent = post_form(other, "/login/second-factor/sms/send", token_from="/login/second-factor")
    assert sent.status_code == 303
    code = last_texted_code(app, "+27821234567")
    done = other.post("/login/second-factor/sms", data={"csrf_token": form_token(other, "/login/second-factor/sms"),
                                                         "code": code})
    assert done.status_code == 303
    assert set(live_session(app, user_id).amr) == {"pwd", "sms", "mfa"}
    settings = app.config["IDP_SETTINGS"]
    settings.sms_second_factor = False
    try:
        third = app.test_client()
        assert login(third).headers["Location"] == "/account/"  # SMS was the only factor: now switched off
        assert "text message codes" not in third.get("/account/security").get_data(as_text=True).lower()
    finally:
        settings.sms_second_factor = True


def test_a_new_browser_is_reported_and_the_first_is_not(app, smtp_server):
    make_user(app)
    first = app.test_client()
    login(first)
    smtp_server.clear()
    second = app.test_client()
    login(second)
    message = smtp_server.wait_for("amara@example.org", subject_contains="New sign-in")
    assert "/not-me/" in body_of(message)
    login(second)
    with app.app_context():
        assert db.session.scalar(db.select(db.func.count()).select_from(Device)) == 2


def test_this_was_not_me_locks_the_account_and_offers_a_reset(app, smtp_server):
    from tests.conftest import csrf_token
    from tests.integration.test_signin_flows import path_of
    from tests.support.links import open_link
    from tests.support.smtp import first_link

    client, user_id = signed_in(app)
    enrol_totp(client)
    notice = smtp_server.wait_for("amara@example.org", subject_contains="sign-in method was added")
    link = path_of([line for line in body_of(notice).split() if "/not-me/" in line][0])
    smtp_server.clear()
    page = open_link(client, link)
    assert page.status_code == 200 and "Lock my account" in page.get_data(as_text=True)
    with app.app_context():
        assert db.session.get(User, user_id).status == "active"  # opening the link changes nothing
    done = client.post(page.request.path, data={"csrf_token": csrf_token(page.get_data(as_text=True))})
    assert done.status_code == 200 and "locked" in done.get_data(as_text=True)
    with app.app_context():
        user = db.session.get(User, user_id)
        assert user.status == "locked" and user.lock_reason == "self_reported"
        assert db.session.scalar(db.select(TotpCredential).where(TotpCredential.user_id == user_id)) is None
        assert not db.session.scalars(db.select(UserSession).where(UserSession.user_id == user_id,
                                                                   UserSession.ended_at.is_(None))).all()
        assert db.session.scalar(db.select(AuditEvent).where(AuditEvent.event == "account.reported_compromise"))
    assert login(app.test_client()).status_code == 401
    assert client.post(link, data={"csrf_token": form_token(client, "/login")}).status_code == 400  # used up
    assert client.post(page.request.path, data={"csrf_token": form_token(client, "/login")}).status_code == 400
    reset = open_link(client, first_link(smtp_server.wait_for("amara@example.org", subject_contains="Reset")))
    assert reset.status_code == 200
    new_password = "a brand new phrase for my account"
    answer = client.post(reset.request.path, data={"csrf_token": csrf_token(reset.get_data(as_text=True)),
                                                   "password": new_password, "confirm": new_password})
    assert answer.status_code == 303
    assert login(app.test_client(), password=new_password).status_code == 303
    with app.app_context():
        assert db.session.get(User, user_id).status == "active"
