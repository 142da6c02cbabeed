"""Checklist 57: SMS is a restricted authenticator. Where SMS codes are offered, the page says they
are weaker and offers an authenticator app and passkeys; a resident using SMS can always add one
of those; a staff account cannot make SMS its only second factor, neither by turning SMS on nor by
removing the app or passkey it has besides SMS."""
from __future__ import annotations

from sqlalchemy import update

from idp.extensions import db
from idp.models import TotpCredential, User
from tests.integration.test_pages_account import signed_in_client
from tests.support.mfa import enrol_totp, post_form
from tests.support.passkeys_http import stepped_up, token

NUMBER = "+27821234567"


def _with_phone(app, *, staff=False, sms=False):
    client, user_id = signed_in_client(app)
    with app.app_context():
        db.session.execute(update(User).where(User.id == user_id).values(
            phone_number=NUMBER, phone_verified_at=db.func.now(), sms_second_factor=sms,
            roles=["support"] if staff else []))
        db.session.commit()
    return client, user_id


def _sms_on(app, user_id) -> bool:
    with app.app_context():
        return db.session.get(User, user_id).sms_second_factor


def test_item_57_the_risk_is_stated_and_stronger_methods_are_offered(app):
    client, _ = _with_phone(app)
    page = client.get("/account/security").get_data(as_text=True)
    assert "weaker than an app or a passkey" in page
    assert "/account/security/app/start" in page and "/account/security/passkeys/new" in page


def test_item_57_a_resident_with_sms_can_always_add_an_alternative(app):
    client, user_id = _with_phone(app, sms=True)
    stepped_up(app, user_id)
    secret, _ = enrol_totp(client)
    assert secret
    assert client.post("/account/security/passkeys/options",
                       headers={"X-CSRFToken": token(client)}).status_code == 200


def test_item_57_staff_cannot_turn_on_sms_as_their_only_factor(app):
    client, user_id = _with_phone(app, staff=True)
    refused = post_form(client, "/account/security/sms/on", token_from="/account/security")
    assert refused.status_code == 400 and "Staff accounts cannot use text message codes" in refused.get_data(True)
    assert _sms_on(app, user_id) is False


def test_item_57_staff_cannot_remove_the_factor_that_keeps_sms_from_being_the_only_one(app):
    client, user_id = _with_phone(app, staff=True)
    enrol_totp(client)
    stepped_up(app, user_id)
    assert post_form(client, "/account/security/sms/on", token_from="/account/security").status_code == 303
    assert _sms_on(app, user_id) is True
    refused = post_form(client, "/account/security/app/remove", token_from="/account/security")
    assert refused.status_code == 400
    with app.app_context():
        assert db.session.scalar(db.select(TotpCredential).where(TotpCredential.user_id == user_id)) is not None
    # Turning SMS off first is fine, and then the app may go.
    assert post_form(client, "/account/security/sms/off", token_from="/account/security").status_code == 303
    assert post_form(client, "/account/security/app/remove", token_from="/account/security").status_code == 303
