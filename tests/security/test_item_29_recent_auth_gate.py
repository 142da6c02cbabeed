"""Checklist 29: Recent-auth gate for sensitive changes. With a session whose last sign-in is older
than 10 minutes, changing the email address, password or mobile number, adding or removing a second
factor, new recovery codes, linking a municipal account and signing out other sessions must send
the resident to sign in again (coming back to the page) and change nothing, however the request is
made (GET of the form or a direct POST with a valid CSRF token); a resident who has a second factor
must also show it (a password-only session, e.g. on a trusted browser, is stepped up)."""
from __future__ import annotations

from datetime import timedelta
from urllib.parse import parse_qs, urlsplit

import pytest
from sqlalchemy import update

from idp.extensions import db
from idp.models import AccountLink, TotpCredential, User, UserSession
from idp.models.types import utcnow
from idp.oidc.acr import ACR_MFA, ACR_PASSWORD
from idp.services import totp
from tests.conftest import csrf_token
from tests.integration.test_signin_flows import PASSWORD, login, make_user
from tests.support.register import add_account, with_check_digit

ACCOUNT = with_check_digit("731942659")
NEW_PASSWORD = "purple elephants dance at dawn"
# (path of the form, path posted to, form data)
GATED = [
    ("/account/email", "/account/email", {"new_email": "new.address@example.org", "current_password": PASSWORD}),
    ("/account/password", "/account/password",
     {"current_password": PASSWORD, "password": NEW_PASSWORD, "confirm": NEW_PASSWORD}),
    ("/account/security/phone", "/account/security/phone", {"phone": "+27821234567"}),
    ("/account/security", "/account/security/app/start", {}),
    ("/account/security/passkeys/new", "/account/security/passkeys/options", {}),
    ("/account/municipal/link", "/account/municipal/link",
     {"account_number": ACCOUNT, "proof_kind": "linking_pin", "proof": "4821", "role": "owner"}),
    ("/account/sessions", "/account/sessions/end-others", {}),
]


def _snapshot(app, user_id: int) -> tuple:
    with app.app_context():
        db.session.remove()
        user = db.session.get(User, user_id)
        return (user.email, user.password_hash, user.phone_number,
                db.session.scalar(db.select(db.func.count()).select_from(TotpCredential)),
                db.session.scalar(db.select(db.func.count()).select_from(AccountLink)),
                db.session.scalar(db.select(db.func.count()).select_from(UserSession).where(UserSession.ended_at.is_(None))))


def _age_sign_in(app, minutes: int) -> None:
    with app.app_context():
        db.session.execute(update(UserSession).values(auth_time=utcnow() - timedelta(minutes=minutes)))
        db.session.commit()


def _signed_in(app):
    user_id = make_user(app)
    add_account(app, ACCOUNT)
    http = app.test_client()
    assert login(http).status_code == 303
    login(app.test_client())  # a second session, for "sign out everywhere else"
    return http, user_id


@pytest.mark.parametrize(("form_path", "post_path", "data"), GATED, ids=[g[1] for g in GATED])
def test_item_29_a_stale_session_must_sign_in_again_and_nothing_changes(app, form_path, post_path, data):
    http, user_id = _signed_in(app)
    token = csrf_token(http.get("/account/").get_data(as_text=True))
    _age_sign_in(app, 11)
    before = _snapshot(app, user_id)
    response = http.post(post_path, data={**data, "csrf_token": token})
    assert response.status_code == 303, response.status_code
    target = urlsplit(response.headers["Location"])
    assert target.path == "/login"
    back = parse_qs(target.query)["next"][0]
    assert http.get(back).status_code != 405  # the way back is a page, not a POST-only address
    assert _snapshot(app, user_id) == before
    if form_path not in ("/account/security", "/account/sessions"):  # overview pages stay readable
        page = http.get(form_path)
        assert page.status_code == 303 and urlsplit(page.headers["Location"]).path == "/login"


def test_item_29_after_signing_in_again_the_change_goes_through(app):
    http, user_id = _signed_in(app)
    _age_sign_in(app, 11)
    refused = http.get("/account/password")
    assert refused.status_code == 303
    next_ = parse_qs(urlsplit(refused.headers["Location"]).query)["next"][0]
    assert next_ == "/account/password"
    assert login(http, next_=next_).headers["Location"] == "/account/password"
    page = http.get("/account/password")
    assert page.status_code == 200
    done = http.post("/account/password", data={"csrf_token": csrf_token(page.get_data(as_text=True)),
                                                 "current_password": PASSWORD, "password": NEW_PASSWORD,
                                                 "confirm": NEW_PASSWORD})
    assert done.status_code == 303
    with app.app_context():
        assert app.extensions["idp.hasher"].verify(db.session.get(User, user_id).password_hash, NEW_PASSWORD)


def test_item_29_with_a_second_factor_a_password_only_session_is_stepped_up(app):
    http, user_id = _signed_in(app)
    with app.app_context():
        user = db.session.get(User, user_id)
        totp.begin_enrolment(user)
        db.session.scalar(db.select(TotpCredential)).confirmed_at = utcnow()
        db.session.commit()
        # A fresh sign-in, but with the password alone (a browser the resident chose to trust).
        db.session.execute(update(UserSession).values(acr=ACR_PASSWORD, amr=["pwd"]))
        db.session.commit()
    token = csrf_token(http.get("/account/").get_data(as_text=True))
    before = _snapshot(app, user_id)
    for path, data in (("/account/email", {"new_email": "new.address@example.org", "current_password": PASSWORD}),
                       ("/account/security/app/remove", {}), ("/account/security/recovery-codes", {})):
        response = http.post(path, data={**data, "csrf_token": token})
        assert response.status_code == 303, path
        target = urlsplit(response.headers["Location"])
        assert target.path == "/login/step-up" and parse_qs(target.query)["acr"] == [ACR_MFA], path
    assert _snapshot(app, user_id) == before
    with app.app_context():
        assert db.session.scalar(db.select(db.func.count()).select_from(TotpCredential)) == 1
