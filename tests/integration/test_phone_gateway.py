"""Texted codes through a real HTTP gateway (the generic JSON backend): verifying a number and
signing in with an SMS code; a gateway that is down or answers an error gives the resident a clear
message, loses nothing, and the code can be asked for again."""
from __future__ import annotations

from tests.conftest import migrated_app
from tests.integration.test_signin_flows import login, make_user
from tests.support.mfa import post_form
from tests.support.sms_fixtures import GATEWAY_AUTH

NUMBER = "+27831234567"


def test_verification_and_sign_in_codes_survive_a_gateway_outage(tmp_path, smtp_server, sms_gateway):
    with migrated_app(tmp_path, smtp_server.port, IDP_SMS_BACKEND="http", IDP_SMS_HTTP_URL=sms_gateway.url,
                      IDP_SMS_HTTP_AUTH_HEADER=GATEWAY_AUTH, IDP_SMS_TIMEOUT="2") as app:
        try:
            _outage_and_recovery(app, sms_gateway)
        finally:
            app.extensions["idp.store"].flush()  # it may share the Redis database of the other tests


def _outage_and_recovery(app, sms_gateway):
    make_user(app)
    client = app.test_client()
    login(client)

    sms_gateway.go_down()
    down = post_form(client, "/account/security/phone", {"phone": "083 123 4567"})
    assert down.status_code == 400 and "could not send the text message" in down.get_data(as_text=True)
    assert "083 123 4567" in down.get_data(as_text=True)  # what was typed is kept
    from idp.extensions import db
    from idp.models import AuditEvent

    with app.app_context():  # staff see the gateway failure in the audit log
        assert db.session.scalar(db.select(AuditEvent).where(AuditEvent.event == "sms.delivery_failed"))
    sms_gateway.come_up()
    sms_gateway.fail_with(503, {"error": "busy"})
    busy = post_form(client, "/account/security/phone", {"phone": "083 123 4567"})
    assert busy.status_code == 400 and "could not send" in busy.get_data(as_text=True)
    sms_gateway.recover()

    sent = post_form(client, "/account/security/phone", {"phone": "083 123 4567"})
    assert sent.status_code == 303
    request = sms_gateway.requests[-1]
    assert request["json"]["to"] == NUMBER and request["headers"]["Authorization"] == GATEWAY_AUTH
    code = sms_gateway.last_code_for(NUMBER)
    verified = post_form(client, "/account/security/phone/verify", {"code": code}, token_from="/account/security")
    assert verified.status_code == 303
    on = post_form(client, "/account/security/sms/on", token_from="/account/security")
    assert on.status_code == 303

    other = app.test_client()
    assert login(other).headers["Location"] == "/login/second-factor"
    sms_gateway.fail_with(500)
    failed = post_form(other, "/login/second-factor/sms/send", token_from="/login/second-factor")
    assert failed.headers["Location"] == "/login/second-factor"
    assert "could not send" in other.get("/login/second-factor").get_data(as_text=True)
    sms_gateway.recover()
    again = post_form(other, "/login/second-factor/sms/send", token_from="/login/second-factor")
    assert again.headers["Location"] == "/login/second-factor/sms"
    done = post_form(other, "/login/second-factor/sms", {"code": sms_gateway.last_code_for(NUMBER)})
    assert done.status_code == 303 and other.get("/account/").status_code == 200
