"""Checklist 113: SMS gateway down or slow. A gateway that hangs or fails must not tie up workers
(each call bounded by a timeout of at most 5 s, a circuit breaker stops calling a failing gateway),
sign-in then offers the other second factor, a retry sends no duplicate text, and a failed send
never lets the resident past the second factor."""
from __future__ import annotations

import pytest

from idp.config import ConfigError, load_settings
from idp.delivery.sms import BREAKER_FAILURES, HttpSms, SmsError
from idp.extensions import db
from idp.models import TotpCredential, User
from idp.models.types import utcnow
from idp.services import totp
from tests.conftest import migrated_app
from tests.integration.test_signin_flows import login, make_user
from tests.support.mfa import post_form, totp_now
from tests.support.sms_fixtures import GATEWAY_AUTH

NUMBER = "+27831234567"


def test_item_113_gateway_timeout_defaults_to_5s_and_cannot_exceed_it(tmp_path):
    base = {"IDP_ENV": "test", "IDP_SECRET_KEY": "x" * 40, "IDP_INSTANCE_PATH": str(tmp_path)}
    assert load_settings(base).sms_timeout == 5
    with pytest.raises(ConfigError) as refused:
        load_settings({**base, "IDP_SMS_TIMEOUT": "10"})
    assert "IDP_SMS_TIMEOUT" in str(refused.value)


def test_item_113_a_hanging_gateway_is_cut_off_at_the_timeout(sms_gateway):
    sms_gateway.hang(3)
    sender = HttpSms(sms_gateway.url, GATEWAY_AUTH, timeout=1)
    with pytest.raises(SmsError):
        sender.send(NUMBER, "code 123456")
    assert sms_gateway.messages_to(NUMBER) == []


def test_item_113_circuit_breaker_stops_calling_a_failing_gateway(sms_gateway):
    sender = HttpSms(sms_gateway.url, GATEWAY_AUTH, timeout=1)
    sms_gateway.fail_with(503, {"error": "busy"})
    for _ in range(BREAKER_FAILURES):
        with pytest.raises(SmsError):
            sender.send(NUMBER, "code 123456")
    assert len(sms_gateway.requests) == BREAKER_FAILURES
    sms_gateway.recover()
    with pytest.raises(SmsError):  # open: refused without a call
        sender.send(NUMBER, "code 123456")
    assert len(sms_gateway.requests) == BREAKER_FAILURES and sender.circuit_open
    sender._open_until = 0.0  # the cool-down has passed: one send is tried again (half open)
    sender.send(NUMBER, "code 654321")
    assert sms_gateway.messages_to(NUMBER) == ["code 654321"] and not sender.circuit_open


def test_item_113_gateway_outage_at_sign_in_offers_the_app_and_never_bypasses(tmp_path, smtp_server, sms_gateway):
    with migrated_app(tmp_path, smtp_server.port, IDP_SMS_BACKEND="http", IDP_SMS_HTTP_URL=sms_gateway.url,
                      IDP_SMS_HTTP_AUTH_HEADER=GATEWAY_AUTH, IDP_SMS_TIMEOUT="1") as app:
        try:
            _outage(app, sms_gateway)
        finally:
            app.extensions["idp.store"].flush()


def _outage(app, sms_gateway):
    make_user(app)
    setup = app.test_client()
    login(setup)
    assert post_form(setup, "/account/security/phone", {"phone": "083 123 4567"}).status_code == 303
    code = sms_gateway.last_code_for(NUMBER)
    assert post_form(setup, "/account/security/phone/verify", {"code": code},
                     token_from="/account/security").status_code == 303
    assert post_form(setup, "/account/security/sms/on", token_from="/account/security").status_code == 303
    with app.app_context():  # an authenticator app too, confirmed as the pages would
        secret = totp.begin_enrolment(db.session.scalar(db.select(User)))
        db.session.scalar(db.select(TotpCredential)).confirmed_at = utcnow()
        db.session.commit()
    sent_before = len(sms_gateway.messages_to(NUMBER))

    resident = app.test_client()
    assert login(resident).headers["Location"] == "/login/second-factor"
    sms_gateway.hang(3)  # slower than IDP_SMS_TIMEOUT=1
    failed = post_form(resident, "/login/second-factor/sms/send", token_from="/login/second-factor")
    assert failed.status_code == 303 and failed.headers["Location"] == "/login/second-factor"
    choose = resident.get("/login/second-factor").get_data(as_text=True)
    assert "could not send" in choose and "/login/second-factor/app" in choose  # the other factor is offered
    # No code was delivered, so no code can be guessed into a sign-in, and nothing is signed in.
    guessed = post_form(resident, "/login/second-factor/sms", {"code": "000000"})
    assert guessed.status_code in (400, 404)
    assert resident.get("/account/").status_code == 302
    sms_gateway.recover()
    assert len(sms_gateway.messages_to(NUMBER)) == sent_before  # the timed-out call is not retried behind our back
    again = post_form(resident, "/login/second-factor/sms/send", token_from="/login/second-factor")
    assert again.headers["Location"] == "/login/second-factor/sms"
    assert len(sms_gateway.messages_to(NUMBER)) == sent_before + 1  # exactly one text for one request
    done = post_form(resident, "/login/second-factor/app", {"code": totp_now(secret)})
    assert done.status_code == 303 and resident.get("/account/").status_code == 200
