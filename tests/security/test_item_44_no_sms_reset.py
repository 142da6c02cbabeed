"""Checklist 44: reset code by SMS. eCitizen Passport deliberately offers no password reset by text
message (a SIM swap would then be enough to take over an account); recovery is the emailed link.
The attack: ask for a reset with the resident's verified mobile number, or call SMS-reset-looking
endpoints directly. Required: no text message and no mail is sent, no code or token is created,
and the endpoints do not exist (404)."""
from __future__ import annotations

import pytest

from idp.extensions import db
from idp.models import ActionToken, User
from idp.models.types import utcnow
from tests.conftest import csrf_token
from tests.integration.test_signin_flows import make_user
from tests.support.mfa import texted_codes

NUMBER = "+27821234567"


def _with_verified_phone(app):
    user_id = make_user(app)
    with app.app_context():
        user = db.session.get(User, user_id)
        user.phone_number, user.phone_verified_at = NUMBER, utcnow()
        db.session.commit()


@pytest.mark.parametrize("identifier", [NUMBER, "082 123 4567", "0821234567"])
def test_item_44_forgot_password_with_a_mobile_number_sends_nothing(app, client, smtp_server, identifier):
    _with_verified_phone(app)
    page = client.get("/forgot-password")
    response = client.post("/forgot-password", data={"csrf_token": csrf_token(page.get_data(as_text=True)),
                                                      "email": identifier})
    assert response.status_code in (200, 400)
    assert texted_codes(app, NUMBER) == []
    assert smtp_server.messages == []
    with app.app_context():
        assert db.session.scalar(db.select(db.func.count()).select_from(ActionToken)) == 0


@pytest.mark.parametrize("path", ["/forgot-password/sms", "/reset-password/sms", "/reset-password/sms/send",
                                  "/forgot-password/code", "/reset-password/code", "/recover/sms"])
def test_item_44_no_sms_reset_endpoint_exists(app, client, path):
    _with_verified_phone(app)
    # Not found, or the reset-link route taking "sms" as a (bad) link token: refused either way.
    assert client.get(path).status_code in (400, 404)
    assert client.post(path, data={"phone": NUMBER, "code": "123456"}).status_code in (400, 403, 404)
    assert texted_codes(app, NUMBER) == []


def test_item_44_text_messages_serve_only_second_factors_and_phone_checks(app):
    sms_rules = [rule.rule for rule in app.url_map.iter_rules() if "sms" in rule.rule or "phone" in rule.rule]
    assert sms_rules
    assert all(r.startswith(("/login/second-factor/", "/account/security/")) for r in sms_rules), sms_rules
