"""Checklist 74: admin authentication. Staff accounts must sign in to the console with
phishing-resistant MFA (a passkey or security key, IDP_STAFF_MFA=phishing-resistant by default):
password + authenticator app, password + SMS code or password + recovery code are refused (sent
to step up with a passkey, no console content); console sessions end after 15 idle minutes and
after IDP_STAFF_SESSION_HOURS (12) however active. The console on its own origin is not built."""
from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import update

from idp.extensions import db
from idp.models import User, UserSession
from idp.models.types import utcnow
from idp.oidc import acr as acr_rules
from tests.integration.test_admin import staff_client
from tests.integration.test_signin_flows import login, make_user
from tests.support.mfa import enrol_totp, form_token, totp_now

PHISHING_RESISTANT_STEP_UP = "/login/step-up?acr=urn:ecitizen:acr:phishing-resistant&"


def _staff_with_session(app, amr: list[str], email="clerk@capetown.gov.za", roles=("support",)):
    """A staff member whose live session was made with ``amr`` (and the acr those methods earn)."""
    http, user_id = staff_client(app, email=email, roles=roles, mfa=False)
    with app.app_context():
        db.session.execute(update(UserSession).where(UserSession.user_id == user_id)
                           .values(amr=amr, acr=acr_rules.for_amr(amr)))
        db.session.commit()
    return http, user_id


def test_item_74_staff_signed_in_with_an_authenticator_app_are_sent_to_a_security_key(app):
    user_id = make_user(app, email="clerk@capetown.gov.za")
    with app.app_context():
        db.session.get(User, user_id).roles = ["support"]
        db.session.commit()
    first = app.test_client()
    login(first, email="clerk@capetown.gov.za")
    secret, _ = enrol_totp(first)
    http = app.test_client()  # a real password + authenticator-app sign-in
    assert login(http, email="clerk@capetown.gov.za").headers["Location"] == "/login/second-factor"
    done = http.post("/login/second-factor/app", data={
        "csrf_token": form_token(http, "/login/second-factor/app"), "code": totp_now(secret, 1)})
    assert done.status_code == 303 and http.get("/account/").status_code == 200
    for path in ("/admin/", "/admin/residents?q=amara", f"/admin/residents/{user_id}"):
        response = http.get(path)
        assert response.status_code == 302, path
        assert response.headers["Location"].startswith(PHISHING_RESISTANT_STEP_UP), response.headers["Location"]
    # The step-up offers only a passkey: the authenticator app cannot satisfy it.
    step_up = http.get(response.headers["Location"])
    assert step_up.status_code == 200
    page = step_up.get_data(as_text=True)
    assert "accepts only a passkey or a security key" in page and "/login/second-factor/app" not in page


def test_item_74_password_with_a_phishable_factor_never_opens_the_console(app):
    target = make_user(app, email="amara@example.org")
    # authenticator app, SMS code, recovery code, password alone
    for index, amr in enumerate([["pwd", "otp", "mfa"], ["pwd", "sms", "mfa"], ["pwd", "mfa"], ["pwd"]]):
        http, _ = _staff_with_session(app, amr, email=f"admin{index}@capetown.gov.za", roles=("administrator",))
        for path in ("/admin/", "/admin/audit.csv", "/admin/clients", f"/admin/residents/{target}/export"):
            response = http.get(path)
            assert response.status_code == 302 and response.headers["Location"].startswith("/login/step-up?"), \
                (amr, path)
            assert "amara@example.org" not in response.get_data(as_text=True)
        token = form_token(http, "/account/")
        locked = http.post(f"/admin/residents/{target}/lock", data={"csrf_token": token, "reason": "phished admin"})
        assert locked.status_code == 302
        with app.app_context():
            assert db.session.get(User, target).status == "active"


def test_item_74_a_passkey_or_security_key_session_opens_the_console(app):
    for index, amr in enumerate([["pwd", "hwk", "mfa"], ["pwd", "swk", "mfa"]]):
        http, _ = _staff_with_session(app, amr, email=f"clerk{index}@capetown.gov.za")
        assert http.get("/admin/").status_code == 200, amr


def test_item_74_the_city_may_accept_any_second_factor_by_setting(app, monkeypatch):
    http, _ = _staff_with_session(app, ["pwd", "otp", "mfa"])
    assert app.config["IDP_SETTINGS"].staff_mfa == "phishing-resistant"  # the default
    monkeypatch.setattr(app.config["IDP_SETTINGS"], "staff_mfa", "any")
    assert http.get("/admin/").status_code == 200
    monkeypatch.setattr(app.config["IDP_SETTINGS"], "staff_mfa", "phishing-resistant")
    assert http.get("/admin/").status_code == 302


def test_item_74_a_console_session_ends_after_the_absolute_limit_however_active(app):
    assert app.config["IDP_SETTINGS"].staff_session_hours == 12
    assert app.config["IDP_SETTINGS"].session_lifetime_hours <= 12
    http, user_id = staff_client(app)
    assert http.get("/admin/").status_code == 200  # active: the idle timer is fresh
    with app.app_context():
        db.session.execute(update(UserSession).where(UserSession.user_id == user_id).values(
            created_at=utcnow() - timedelta(hours=12, minutes=1), last_seen_at=utcnow()))
        db.session.commit()
    response = http.get("/admin/residents")
    assert response.status_code == 302 and response.headers["Location"].startswith("/login")
    assert http.get("/account/").status_code == 302  # signed out, not just bounced
    with app.app_context():
        assert db.session.scalars(db.select(UserSession.ended_at).where(UserSession.user_id == user_id)).all() != [None]


@pytest.mark.xfail(strict=True, reason="gap: the console is served on the resident-facing origin; no separate "
                                       "admin host/origin setting exists")
def test_item_74_the_console_is_not_served_on_the_resident_origin(app):
    http, _ = staff_client(app)
    assert http.get("/admin/").status_code == 404
