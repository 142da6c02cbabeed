"""Checklist 74: admin authentication. Staff accounts must sign in to the console with
phishing-resistant MFA (a passkey or security key, IDP_STAFF_MFA=phishing-resistant by default):
password + authenticator app, password + SMS code or password + recovery code are refused (sent
to step up with a passkey, no console content); console sessions end after 15 idle minutes and
after IDP_STAFF_SESSION_HOURS (12) however active. With IDP_ADMIN_HOST the console has an origin of
its own: /admin is 404 on the residents' host, the admin host serves nothing of the residents'
site, its session cookie is its own, and staff passkeys work there."""
from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import update

from idp.extensions import db
from idp.models import User, UserSession
from idp.models.types import utcnow
from idp.oidc import acr as acr_rules
from tests.integration.test_admin import on_host, staff_client
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
        for path in ("/admin/", "/admin/audit", "/admin/clients", f"/admin/residents/{target}/export"):
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


ADMIN_HOST = "admin.localhost"


@pytest.fixture
def admin_host(app, monkeypatch):
    monkeypatch.setattr(app.config["IDP_SETTINGS"], "admin_host", ADMIN_HOST)
    return ADMIN_HOST


def test_item_74_the_console_is_not_served_on_the_resident_origin(app, admin_host):
    http, _ = staff_client(app)  # signed in on the residents' host, with a security key
    target = make_user(app, email="amara@example.org")
    assert http.get("/account/").status_code == 200
    assert http.get("/admin/").status_code == 404
    assert http.get(f"/admin/residents/{target}").status_code == 404
    token = form_token(http, "/account/")
    assert http.post(f"/admin/residents/{target}/lock", data={"csrf_token": token, "reason": "x" * 10}).status_code == 404
    with app.app_context():
        assert db.session.get(User, target).status == "active"
    console, _ = staff_client(app, email="admin@capetown.gov.za", roles=("administrator",), host=admin_host)
    assert console.get("/admin/").status_code == 200
    assert console.get(f"/admin/residents/{target}").status_code == 200


def test_item_74_the_admin_host_serves_nothing_of_the_residents_site(app, admin_host):
    console, _ = staff_client(app, host=admin_host)
    for path in ("/", "/account/", "/account/services", "/register", "/services", "/help"):
        response = console.get(path)
        assert response.status_code == 303 and response.headers["Location"] == "/admin/", path
    for method, path in (("GET", "/.well-known/openid-configuration"), ("GET", "/jwks.json"), ("GET", "/authorize"),
                         ("POST", "/token"), ("GET", "/userinfo"), ("POST", "/register"), ("POST", "/account/name")):
        assert console.open(path, method=method).status_code == 404, (method, path)
    fresh, _ = staff_client(app, email="new@capetown.gov.za", mfa=False, host=admin_host)  # password only, so far
    for path in (PHISHING_RESISTANT_STEP_UP + "next=/admin/", "/account/security", "/account/security/passkeys/new",
                 "/healthz", "/static/site.css"):
        assert fresh.get(path).status_code == 200, path  # stepping up, adding a passkey, assets
    assert app.test_client().get("/login", base_url=f"http://{admin_host}").status_code == 200
    assert app.test_client().get("/.well-known/openid-configuration").status_code == 200  # residents' host as before


def test_item_74_a_sign_in_on_the_admin_host_is_its_own_session(app, admin_host):
    staff = make_user(app, email="clerk@capetown.gov.za")
    with app.app_context():
        db.session.get(User, staff).roles = ["support"]
        db.session.commit()
    browser = on_host(app.test_client(), admin_host)
    assert login(browser, email="clerk@capetown.gov.za").status_code in (302, 303)
    assert browser.get("/admin/").headers["Location"].startswith(PHISHING_RESISTANT_STEP_UP)  # signed in there
    browser.host = "localhost"
    assert browser.get("/account/").headers["Location"].startswith("/login")  # the cookie stays on its host


def test_item_74_staff_passkeys_are_accepted_from_the_admin_origin(app, admin_host):
    from idp.services import passkeys

    with app.test_request_context():
        assert passkeys._origins() == ["http://localhost", "http://admin.localhost"]  # noqa: SLF001


@pytest.mark.parametrize(("value", "problem"), [
    ("localhost", "must differ from the issuer's host"),
    ("admin.elsewhere.example", "must be under the WebAuthn RP ID"),
    ("a.localhost,b.localhost", "must be one host name"),
    ("https://admin.localhost", "must be one host name"),
])
def test_item_74_the_admin_host_setting_is_validated(value, problem):
    from idp.config import ConfigError, load_settings

    with pytest.raises(ConfigError) as raised:
        load_settings({"IDP_ISSUER": "http://localhost", "IDP_ADMIN_HOST": value})
    assert any(line.startswith("IDP_ADMIN_HOST:") and problem in line for line in raised.value.problems)
    assert load_settings({"IDP_ISSUER": "http://localhost", "IDP_ADMIN_HOST": "admin.localhost"}).admin_host
