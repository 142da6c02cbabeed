"""Checklist 26: Logout and revocation are server-side. A session cookie is captured and replayed
after the resident signs out, after a second factor is added or removed elsewhere, after staff
lock the account and after "sign out everywhere else": every replay must be treated as anonymous
(account pages send to sign-in, prompt=none answers login_required) because the record is ended
in the database, not merely deleted from the browser; and every page showing account data is
sent with ``Cache-Control: no-store`` so the browser's Back button shows nothing afterwards."""
from __future__ import annotations

from urllib.parse import urlencode

from sqlalchemy import update

from idp.extensions import db
from idp.models import AuditEvent, User, UserSession
from idp.oidc.acr import ACR_MFA
from tests.conftest import csrf_token
from tests.integration.test_admin import act, staff_client
from tests.support.mfa import enrol_totp, form_token, post_form
from tests.support.oidc import REDIRECT, authorize_params, login, make_client, make_user, pkce_pair, query_of

COOKIE = "idp_session"


def _cookie(http) -> str:
    return http.get_cookie(COOKIE).value


def _replay(app, sid: str):
    """A fresh browser that presents only the captured cookie."""
    thief = app.test_client()
    thief.set_cookie(COOKIE, sid)
    return thief


def _anonymous(app, sid: str, client_id: str | None = None) -> bool:
    thief = _replay(app, sid)
    pages_refused = all(thief.get(path).status_code == 302 for path in ("/account/", "/account/security"))
    if client_id is None:
        return pages_refused
    _, challenge = pkce_pair()
    answer = thief.get("/authorize?" + urlencode(authorize_params(client_id, challenge, prompt="none")))
    return pages_refused and answer.status_code == 302 and answer.headers["Location"].startswith(REDIRECT) \
        and query_of(answer.headers["Location"]).get("error") == "login_required"


def _live_sessions(app) -> int:
    with app.app_context():
        return db.session.scalar(db.select(db.func.count()).select_from(UserSession)
                                 .where(UserSession.ended_at.is_(None)))


def test_item_26_replayed_cookie_after_logout_is_anonymous_for_pages_and_the_op(app):
    client_id, _ = make_client(app, first_party=True)
    make_user(app)
    http = app.test_client()
    login(http)
    captured = _cookie(http)
    assert not _anonymous(app, captured, client_id)  # the replay works while signed in
    page = http.get("/account/")
    assert http.post("/logout", data={"csrf_token": csrf_token(page.get_data(as_text=True))}).status_code == 303
    assert _anonymous(app, captured, client_id)
    assert _live_sessions(app) == 0  # ended in the database, not only forgotten by the browser


def test_item_26_adding_or_removing_a_second_factor_ends_every_other_session(app):
    make_user(app)
    mine, stolen = app.test_client(), app.test_client()
    login(mine)
    login(stolen)
    stolen_cookie = _cookie(stolen)
    enrol_totp(mine)
    assert _anonymous(app, stolen_cookie)
    assert mine.get("/account/security").status_code == 200
    # The thief signs in again somehow (say, on a trusted browser); the resident removes the app.
    login(stolen)
    second_stolen = _cookie(stolen)
    with app.app_context():  # the resident's own session is multi-factor (as after the challenge)
        db.session.execute(update(UserSession).where(UserSession.sid != second_stolen)
                           .values(acr=ACR_MFA, amr=["mfa", "otp", "pwd"]))
        db.session.commit()
    removed = post_form(mine, "/account/security/app/remove", token_from="/account/security")
    assert removed.status_code == 303 and removed.headers["Location"].endswith("/account/security")
    assert _anonymous(app, second_stolen)
    assert mine.get("/account/security").status_code == 200
    assert _live_sessions(app) == 1


def test_item_26_staff_lock_kills_the_residents_captured_cookie(app):
    client_id, _ = make_client(app, first_party=True)
    make_user(app)
    http = app.test_client()
    login(http)
    captured = _cookie(http)
    staff, _ = staff_client(app)
    with app.app_context():
        target = db.session.scalar(db.select(User.id).where(User.email == "resident@example.org"))
    assert act(staff, f"/admin/residents/{target}/lock").status_code == 303
    assert _anonymous(app, captured, client_id)
    with app.app_context():
        assert db.session.scalar(db.select(db.func.count()).select_from(UserSession)
                                 .where(UserSession.user_id == target, UserSession.ended_at.is_(None))) == 0


def test_item_26_sign_out_everywhere_else_kills_the_other_cookies_only(app):
    make_user(app)
    mine, other = app.test_client(), app.test_client()
    login(mine)
    login(other)
    other_cookie = _cookie(other)
    response = post_form(mine, "/account/sessions/end-others", token_from="/account/sessions")
    assert response.status_code == 303 and response.headers["Location"].endswith("/account/sessions")
    assert _anonymous(app, other_cookie)
    assert mine.get("/account/").status_code == 200
    with app.app_context():
        event = db.session.scalar(db.select(AuditEvent).where(AuditEvent.event == "session.others_ended"))
        assert event is not None and event.detail["sessions"] == 1


def test_item_26_every_signed_in_page_is_no_store(app):
    make_user(app)
    http = app.test_client()
    login(http)
    for path in ("/account/", "/account/name", "/account/email", "/account/password", "/account/services",
                 "/account/sessions", "/account/notifications", "/account/security", "/account/municipal/",
                 "/account/close", "/account/export", "/account/dashboard"):
        response = http.get(path)
        assert response.status_code == 200, path
        assert response.headers["Cache-Control"] == "no-store", path
        assert "public" not in response.headers.get("Cache-Control", "")
    # After sign-out the same addresses show nothing of the account.
    form_page = http.get("/account/")
    http.post("/logout", data={"csrf_token": form_token(http, "/account/")})
    for path in ("/account/", "/account/export", "/account/sessions"):
        after = http.get(path)
        assert after.status_code == 302 and "resident@example.org" not in after.get_data(as_text=True)
    assert "resident@example.org" in form_page.get_data(as_text=True)
