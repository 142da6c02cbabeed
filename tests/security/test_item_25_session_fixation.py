"""Checklist 25: Session fixation / rotation. The session cookie is recorded at every step of a
sign-in (password, second factor, step-up, re-authentication, being given a staff role) and an
attacker plants a session id they know on the victim (a cookie set from a sibling subdomain, an id
in a crafted link): the id must change at each step, every earlier id must stop authenticating
(treated as anonymous), and the victim's sign-in must never authenticate the attacker's id."""
from __future__ import annotations

from sqlalchemy import update

from idp.extensions import db
from idp.models import TotpCredential, User, UserSession
from idp.models.types import utcnow
from idp.oidc.acr import ACR_MFA
from idp.services import totp
from tests.conftest import csrf_token
from tests.support.mfa import form_token, totp_now
from tests.support.oidc import PASSWORD, make_user

COOKIE = "idp_session"


def _sid(http) -> str | None:
    found = http.get_cookie(COOKIE)
    return found.value if found else None


def _with_app(app, email="resident@example.org") -> str:
    """An authenticator app for the resident (confirmed); returns its secret."""
    with app.app_context():
        user = db.session.scalar(db.select(User).where(User.email == email))
        secret = totp.begin_enrolment(user)
        db.session.scalar(db.select(TotpCredential).where(TotpCredential.user_id == user.id)).confirmed_at = utcnow()
        db.session.commit()
        return secret


def _password_step(http, email="resident@example.org", next_=""):
    token = csrf_token(http.get("/login").get_data(as_text=True))
    return http.post("/login", data={"csrf_token": token, "email": email, "password": PASSWORD, "next": next_})


def _authenticates(app, sid: str) -> bool:
    """Whether a browser presenting only ``sid`` is signed in."""
    probe = app.test_client()
    probe.set_cookie(COOKIE, sid)
    return probe.get("/account/").status_code == 200


def test_item_25_id_changes_at_password_and_at_second_factor_and_old_ids_are_dead(app):
    make_user(app)
    secret = _with_app(app)
    http = app.test_client()
    http.get("/login")
    before = _sid(http)
    assert before
    half = _password_step(http)
    assert half.status_code == 303 and half.headers["Location"].startswith("/login/second-factor")
    after_password = _sid(http)
    assert after_password not in (None, before)
    # The id from before the password no longer reaches the second-factor step.
    stale = app.test_client()
    stale.set_cookie(COOKIE, before)
    assert stale.get("/login/second-factor/app").status_code in (302, 303)
    done = http.post("/login/second-factor/app", data={"csrf_token": form_token(http, "/login/second-factor/app"),
                                                       "code": totp_now(secret)})
    assert done.status_code == 303
    after_mfa = _sid(http)
    assert after_mfa not in (before, after_password)
    assert http.get("/account/").status_code == 200
    assert not _authenticates(app, before) and not _authenticates(app, after_password)
    assert _authenticates(app, after_mfa)


def test_item_25_step_up_rotates_and_the_pre_step_up_id_is_anonymous(app):
    make_user(app)
    secret = _with_app(app)
    http = app.test_client()
    trusted_password_only = _password_step(http)
    assert trusted_password_only.status_code == 303
    http.post("/login/second-factor/app", data={"csrf_token": form_token(http, "/login/second-factor/app"),
                                                "code": totp_now(secret)})
    # Make the live session password-only (as on a trusted browser), then step up.
    with app.app_context():
        db.session.execute(update(UserSession).values(acr="urn:ecitizen:acr:password", amr=["pwd"]))
        db.session.commit()
    before = _sid(http)
    asked = http.get("/login/step-up", query_string={"acr": ACR_MFA, "next": "/account/"})
    assert asked.status_code == 303
    done = http.post("/login/second-factor/app", data={"csrf_token": form_token(http, "/login/second-factor/app"),
                                                       "code": totp_now(secret, 1)})
    assert done.status_code == 303, done.get_data(as_text=True)[:300]
    after = _sid(http)
    assert after != before
    assert not _authenticates(app, before) and _authenticates(app, after)
    with app.app_context():
        assert db.session.scalar(db.select(UserSession.acr).where(UserSession.ended_at.is_(None))) == ACR_MFA


def test_item_25_reauthentication_gives_a_new_id_and_ends_the_old_session(app):
    make_user(app)
    http = app.test_client()
    assert _password_step(http).status_code == 303
    first = _sid(http)
    assert _password_step(http).status_code == 303
    second = _sid(http)
    assert second != first
    assert not _authenticates(app, first) and _authenticates(app, second)
    with app.app_context():
        assert db.session.scalar(db.select(db.func.count()).select_from(UserSession)
                                 .where(UserSession.ended_at.is_(None))) == 1


def test_item_25_being_given_a_staff_role_needs_a_new_session(app):
    """A session that existed before the grant never carries the new rights."""
    from tests.integration.test_admin import staff_client

    admin, _ = staff_client(app, email="admin@capetown.gov.za", roles=("administrator",))
    make_user(app, email="new.clerk@example.org")
    with app.app_context():
        target = db.session.scalar(db.select(User.id).where(User.email == "new.clerk@example.org"))
    clerk = app.test_client()
    assert _password_step(clerk, email="new.clerk@example.org").status_code == 303
    old = _sid(clerk)
    with app.app_context():  # even a multi-factor session
        db.session.execute(update(UserSession).where(UserSession.user_id == target).values(acr=ACR_MFA))
        db.session.commit()
    page = admin.get(f"/admin/residents/{target}").get_data(as_text=True)
    granted = admin.post(f"/admin/residents/{target}/roles",
                         data={"csrf_token": csrf_token(page), "roles": ["support"], "reason": "Joined the help desk"})
    assert granted.status_code == 303
    with app.app_context():
        assert db.session.get(User, target).roles == ["support"]
    assert clerk.get("/admin/").status_code == 302  # to sign-in: the old session ended
    assert not _authenticates(app, old)


def test_item_25_a_planted_id_never_becomes_the_victims_session(app):
    make_user(app)
    secret = _with_app(app)
    attacker = app.test_client()
    attacker.get("/login")  # a real anonymous id the server issued to the attacker
    planted = _sid(attacker)
    victim = app.test_client()
    victim.set_cookie(COOKIE, planted)  # e.g. set from a sibling subdomain
    assert _password_step(victim).status_code == 303
    # Half-way (password right, second factor pending) the attacker's id sees nothing of the victim.
    assert _sid(victim) != planted
    assert attacker.get("/login/second-factor/app").status_code in (302, 303)
    victim.post("/login/second-factor/app", data={"csrf_token": form_token(victim, "/login/second-factor/app"),
                                                  "code": totp_now(secret)})
    assert victim.get("/account/").status_code == 200
    assert _sid(victim) != planted
    assert attacker.get("/account/").status_code == 302


def test_item_25_session_ids_in_links_are_ignored(app):
    """A crafted "restart login" link cannot carry a session id: only the cookie is read."""
    make_user(app)
    attacker = app.test_client()
    attacker.get("/login")
    planted = _sid(attacker)
    victim = app.test_client()
    page = victim.get(f"/login?{COOKIE}={planted}&session={planted}&sid={planted}&next=/account/")
    assert page.status_code == 200
    token = csrf_token(page.get_data(as_text=True))
    victim.post(f"/login?{COOKIE}={planted}&sid={planted}",
                data={"csrf_token": token, "email": "resident@example.org", "password": PASSWORD, "next": ""})
    assert victim.get("/account/").status_code == 200
    assert _sid(victim) != planted
    assert attacker.get("/account/").status_code == 302
