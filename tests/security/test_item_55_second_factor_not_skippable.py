"""Checklist 55: the second factor cannot be skipped. After a right password for an account with
an authenticator app (an administrator, here), the half-signed-in browser calls every URL of the
application directly (account, security, municipal, admin pages and actions, /authorize with and
without prompt=none, /token, /userinfo), with valid CSRF tokens, spoofed X-Forwarded-* headers, a
forged device cookie and a "trust this browser" field: nothing is shown or changed, no session,
code or token exists until the second factor is shown, and amr/acr then tell the truth."""
from __future__ import annotations

import re
from urllib.parse import urlencode

import pytest
from sqlalchemy import func, update

from idp.extensions import db
from idp.models import (
    AccountLink,
    AuditEvent,
    AuthorizationCode,
    Consent,
    RecoveryCode,
    Token,
    TotpCredential,
    User,
    UserSession,
    WebAuthnCredential,
)
from idp.oidc.acr import ACR_MFA
from tests.conftest import csrf_token
from tests.integration.test_pages_account import signed_in_client
from tests.integration.test_signin_flows import PASSWORD, login
from tests.support.mfa import enrol_totp, form_token, post_form, totp_now
from tests.support.oidc import REDIRECT, authorize_params, exchange, make_client, pkce_pair, query_of

EMAIL, NAME = "amara@example.org", "Amara Dlamini"
# Pages of the challenge itself, which the half-signed-in browser must be able to use.
CHALLENGE = {"mfa.second_factor", "mfa.with_app", "mfa.with_sms", "mfa.with_recovery_code", "mfa.send_sms",
             "mfa.passkey_options", "mfa.passkey_finish", "static"}


@pytest.fixture
def half(app):
    """(browser that has given only the password, user id, TOTP secret, client_id, client secret)."""
    owner, user_id = signed_in_client(app)
    secret, _ = enrol_totp(owner)
    post_form(owner, "/logout", token_from="/account/")
    with app.app_context():
        db.session.execute(update(User).where(User.id == user_id).values(roles=["administrator"]))
        db.session.execute(update(TotpCredential).values(last_used_step=0))
        db.session.commit()
    client_id, client_secret = make_client(app)
    browser = app.test_client()
    assert login(browser).headers["Location"] == "/login/second-factor"
    return browser, user_id, secret, client_id, client_secret


def _snapshot(app, user_id) -> dict:
    """Everything a skipped second factor could create or change."""
    with app.app_context():
        user = db.session.get(User, user_id)
        counts = {model.__name__: db.session.scalar(db.select(func.count()).select_from(model))
                  for model in (UserSession, Token, AuthorizationCode, Consent, TotpCredential, WebAuthnCredential,
                                   AccountLink)}
        counts["unused_codes"] = db.session.scalar(db.select(func.count()).select_from(RecoveryCode)
                                                   .where(RecoveryCode.used_at.is_(None)))
        counts["live_sessions"] = db.session.scalar(db.select(func.count()).select_from(UserSession)
                                                    .where(UserSession.ended_at.is_(None)))
        counts["user"] = (user.email, user.name, user.password_hash, user.phone_number, user.status,
                          tuple(user.roles or []), user.sms_second_factor)
        return counts


def _concrete(rule) -> str:
    return re.sub(r"<(?:(\w+)(?:\([^)]*\))?:)?(\w+)>",
                  lambda m: "1" if m.group(1) == "int" else ("enable" if m.group(1) == "any" else "x"), rule.rule)


def _routes(app, method):
    for rule in app.url_map.iter_rules():
        if method in rule.methods and rule.endpoint not in CHALLENGE:
            yield rule


def test_item_55_no_page_shows_the_account_before_the_second_factor(app, half):
    browser, user_id, *_ = half
    before = _snapshot(app, user_id)
    for rule in _routes(app, "GET"):
        response = browser.get(_concrete(rule))
        body = response.get_data(as_text=True)
        where = (rule.rule, response.status_code)
        assert EMAIL not in body and NAME not in body, where
        if rule.rule.startswith(("/account", "/admin", "/login/step-up")):
            assert response.status_code in (302, 303, 404), where
            if response.status_code != 404:
                assert response.headers["Location"].startswith("/login"), where
        assert response.status_code != 500, where
    assert browser.get("/userinfo").status_code == 401
    assert _snapshot(app, user_id) == before
    # The challenge is still there to be finished: it was neither skipped nor lost.
    assert browser.get("/login/second-factor").status_code == 200


def test_item_55_no_action_works_before_the_second_factor(app, half):
    browser, user_id, *_ = half
    token = csrf_token(browser.get("/login").get_data(as_text=True))  # a valid token of this session
    fields = {"csrf_token": token, "code": "123456", "name": "Mallory", "email": "mallory@example.org",
              "password": "x" * 20, "current_password": PASSWORD,
              "new_password": "another long enough passphrase", "phone": "+27821234567",
              "account_number": "4001234568", "pin": "2468", "decision": "allow", "roles": "administrator",
              "confirm": "y"}
    before = _snapshot(app, user_id)
    for rule in _routes(app, "POST"):
        if rule.rule in ("/login", "/register", "/forgot-password", "/verify-email/resend", "/language",
                         "/token", "/revoke", "/introspect", "/logout/end-session", "/logout"):
            continue  # public forms, and back-channel endpoints tested below
        response = browser.post(_concrete(rule), data=fields)
        where = (rule.rule, response.status_code)
        assert response.status_code in (302, 303, 400, 401, 403, 404, 405), where
        if response.status_code in (302, 303):
            assert response.headers["Location"].startswith(("/login", "http://localhost/login")), where
        assert EMAIL not in response.get_data(as_text=True), where
    for json_route in ("/account/security/passkeys/options", "/account/security/passkeys"):
        response = browser.post(json_route, json={"credential": {}}, headers={"X-CSRFToken": token})
        assert response.status_code in (302, 303, 400, 403), json_route
    assert _snapshot(app, user_id) == before


def test_item_55_no_code_or_token_before_the_second_factor(app, half):
    browser, user_id, secret, client_id, client_secret = half
    verifier, challenge = pkce_pair()
    params = authorize_params(client_id, challenge)
    response = browser.get("/authorize?" + urlencode(params))
    assert response.status_code in (302, 303)
    assert not response.headers["Location"].startswith(REDIRECT) and "code=" not in response.headers["Location"]
    silent = browser.get("/authorize?" + urlencode({**params, "prompt": "none"}))
    assert silent.status_code == 302 and silent.headers["Location"].startswith(REDIRECT)
    answer = query_of(silent.headers["Location"])
    assert answer["error"] == "login_required" and "code" not in answer
    consent = browser.post("/authorize?" + urlencode(params),
                           data={"decision": "allow", "csrf_token": csrf_token(browser.get("/login").get_data(True))})
    assert "code=" not in consent.headers.get("Location", "")
    assert exchange(browser, client_id, client_secret, "forged-code", verifier).status_code == 400
    with app.app_context():
        assert db.session.scalar(db.select(func.count()).select_from(Token)) == 0
        assert db.session.scalar(db.select(func.count()).select_from(AuthorizationCode)) == 0
    # With the second factor shown, the same request completes, and the ID token says so.
    done = browser.post("/login/second-factor/app",
                        data={"csrf_token": form_token(browser, "/login/second-factor/app"), "code": totp_now(secret)})
    assert done.status_code == 303
    with app.app_context():
        record = db.session.scalar(db.select(UserSession).where(UserSession.ended_at.is_(None),
                                                                UserSession.user_id == user_id))
        assert record.acr == ACR_MFA and set(record.amr) == {"pwd", "otp", "mfa"}


SPOOFED = [
    {"X-Forwarded-For": "127.0.0.1"},
    {"X-Forwarded-For": "not-an-address, ::ffff:zz, \x7f"},
    {"X-Forwarded-For": "10.0.0.1", "X-Forwarded-Proto": "https", "X-Real-IP": "127.0.0.1",
     "X-Forwarded-Host": "localhost"},
]


def test_item_55_policy_inputs_do_not_skip_the_second_factor(app, half):
    for headers in SPOOFED:
        _policy_inputs_do_not_skip(app, headers)


def _policy_inputs_do_not_skip(app, headers):
    browser = app.test_client()
    browser.set_cookie("idp_device", "f" * 43)  # a made-up browser id: not a trusted browser
    token = form_token(browser, "/login")
    response = browser.post("/login", headers=headers,
                            data={"csrf_token": token, "email": EMAIL, "password": PASSWORD,
                                  "next": "/account/", "trust": "y", "amr": "otp", "acr": ACR_MFA})
    assert response.status_code == 303 and response.headers["Location"] == "/login/second-factor"
    assert browser.get("/account/", headers=headers).status_code == 302
    # Jumping to the passwordless passkey flow with junk does not finish the sign-in either.
    browser.post("/login/passkey/options?mode=passwordless", headers={"X-CSRFToken": token})
    junk = browser.post("/login/passkey", json={"credential": {"id": "AAAA", "rawId": "AAAA"}},
                        headers={"X-CSRFToken": token})
    assert junk.status_code in (400, 403)
    assert browser.get("/account/").status_code == 302
    with app.app_context():
        assert db.session.scalar(db.select(func.count()).select_from(UserSession)
                                 .where(UserSession.ended_at.is_(None))) == 0
        assert not db.session.scalars(db.select(AuditEvent).where(AuditEvent.event == "mfa.success")).all()
