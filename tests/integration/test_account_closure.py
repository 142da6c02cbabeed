"""A resident closes their own account: password first, sign-in blocked, every department signed
out by back-channel logout, a confirmation mail, reopening by a password reset within the period
(not after it, and never for a staff deactivation), or erasure for good."""
from __future__ import annotations

from datetime import timedelta

from idp.extensions import db
from idp.models import AuditEvent, LogoutNotice, User, UserSession
from idp.models.types import utcnow
from idp.services import privacy
from tests.conftest import csrf_token
from tests.integration.test_signin_flows import PASSWORD, login, make_user
from tests.support.links import open_link
from tests.support.mfa import form_token
from tests.support.oidc import exchange, get_code, make_client, pkce_pair
from tests.support.smtp import body_of, first_link

EMAIL = "amara@example.org"
NEW_PASSWORD = "a brand new phrase for my account"


def signed_in(app):
    client = app.test_client()
    user_id = make_user(app)
    assert login(client).status_code == 303
    return client, user_id


def close(client, password=PASSWORD, what="deactivate", confirm="y"):
    data = {"csrf_token": form_token(client, "/account/close"), "what": what, "current_password": password}
    if confirm:
        data["confirm"] = confirm
    return client.post("/account/close", data=data)


def status_of(app, user_id):
    with app.app_context():
        return db.session.get(User, user_id).status


def reset_password(client, smtp_server):
    client.post("/forgot-password", data={"csrf_token": form_token(client, "/forgot-password"), "email": EMAIL})
    mail = smtp_server.wait_for(EMAIL, subject_contains="Reset")
    page = open_link(client, first_link(mail))
    assert page.status_code == 200
    return client.post(page.request.path, data={"csrf_token": csrf_token(page.get_data(as_text=True)),
                                                 "password": NEW_PASSWORD, "confirm": NEW_PASSWORD})


def test_a_wrong_password_or_no_confirmation_closes_nothing(app):
    client, user_id = signed_in(app)
    assert close(client, password="not my password").status_code == 400
    assert close(client, confirm=None).status_code == 400
    assert status_of(app, user_id) == "active" and client.get("/account/").status_code == 200


def test_closing_signs_out_everywhere_and_a_reset_reopens_it(app, smtp_server):
    rp = make_client(app, backchannel_logout_uri="https://billing.example.gov.za/backchannel-logout")
    client, user_id = signed_in(app)
    verifier, challenge = pkce_pair()
    assert exchange(client, *rp, get_code(client, rp[0], challenge), verifier).status_code == 200
    done = close(client)
    assert done.status_code == 200 and "Your account is closed" in done.get_data(as_text=True)
    with app.app_context():
        user = db.session.get(User, user_id)
        assert (user.status, user.lock_reason) == ("deactivated", "self_closed")
        assert not db.session.scalars(db.select(UserSession).where(UserSession.user_id == user_id,
                                                                   UserSession.ended_at.is_(None))).all()
        assert db.session.scalar(db.select(LogoutNotice).where(LogoutNotice.client_id == rp[0])) is not None
        event = db.session.scalar(db.select(AuditEvent).where(AuditEvent.event == "account.deactivated"))
        assert event.actor_id == user_id and event.detail["via"] == "self"
    assert "/forgot-password" in body_of(smtp_server.wait_for(EMAIL, subject_contains="was closed"))
    assert client.get("/account/").status_code == 302
    assert login(app.test_client()).status_code == 401

    assert reset_password(app.test_client(), smtp_server).status_code == 303
    assert status_of(app, user_id) == "active"
    assert login(app.test_client(), password=NEW_PASSWORD).status_code == 303


def test_after_the_period_a_reset_no_longer_reopens(app, smtp_server):
    client, user_id = signed_in(app)
    close(client)
    smtp_server.clear()
    with app.app_context():
        db.session.get(User, user_id).deactivated_at = utcnow() - timedelta(days=31)
        db.session.commit()
    other = app.test_client()
    other.post("/forgot-password", data={"csrf_token": form_token(other, "/forgot-password"), "email": EMAIL})
    with app.app_context():
        assert db.session.scalar(db.select(AuditEvent).where(AuditEvent.event == "password.reset_requested")
                                 .order_by(AuditEvent.id.desc())).outcome == "failure"
    assert status_of(app, user_id) == "deactivated"


def test_a_staff_deactivation_is_not_reopened_by_a_reset(app, smtp_server):
    staff_id = make_user(app, email="clerk@example.org")
    user_id = make_user(app)
    with app.app_context():
        privacy.deactivate(db.session.get(User, staff_id), db.session.get(User, user_id), "fraud report 123")
    other = app.test_client()
    other.post("/forgot-password", data={"csrf_token": form_token(other, "/forgot-password"), "email": EMAIL})
    assert status_of(app, user_id) == "deactivated"
    with app.app_context():
        assert db.session.get(User, user_id).deactivated_at is not None


def test_erasing_removes_the_personal_details_for_good(app, smtp_server):
    client, user_id = signed_in(app)
    done = close(client, what="erase")
    assert done.status_code == 200 and "erased" in done.get_data(as_text=True)
    with app.app_context():
        user = db.session.get(User, user_id)
        assert user.email.endswith("@erased.invalid") and user.name == "" and user.password_hash is None
    assert "erased as you asked" in body_of(smtp_server.wait_for(EMAIL, subject_contains="erased"))
    other = app.test_client()
    other.post("/forgot-password", data={"csrf_token": form_token(other, "/forgot-password"), "email": EMAIL})
    with app.app_context():
        assert db.session.scalar(db.select(AuditEvent).where(AuditEvent.event == "password.reset_requested")
                                 ).detail["reason"] == "unknown_user"  # nothing left to reopen
