"""Checklist 50: admin-assisted recovery. Staff reset a resident's second factors only with a
reason (the help-desk ticket reference) recorded in the audit trail; they never choose or see a
password (no console action takes one, no page shows the hash); the MFA reset ends the resident's
live sessions and mails them (and texts a verified mobile number). A staff account's MFA reset only
asks: a second administrator, neither the one who asked nor the staff member concerned, approves it,
and only then is it carried out."""
from __future__ import annotations

import pytest

from idp.extensions import db
from idp.models import ApprovalRequest, AuditEvent, TotpCredential, User
from idp.models.types import utcnow
from idp.security import crypto
from idp.services import DomainError, approvals, support
from tests.integration.test_admin import act, resident, staff_client
from tests.integration.test_signin_flows import PASSWORD, login
from tests.support.mfa import texted_codes
from tests.support.smtp import body_of

TICKET = "Ticket HD-2026-0412: lost phone, ID checked at the walk-in centre"


def _with_totp(app, user_id):
    with app.app_context():
        db.session.add(TotpCredential(user_id=user_id, secret_encrypted=crypto.seal(b"X" * 32, "totp-secret"),
                                      confirmed_at=utcnow()))
        db.session.commit()


def test_item_50_mfa_reset_ends_sessions_is_audited_and_mails_the_resident(app, smtp_server):
    http, staff_id = staff_client(app)
    target = resident(app)
    _with_totp(app, target)
    victim = app.test_client()
    assert login(victim).headers["Location"] == "/login/second-factor"
    with app.app_context():  # a live, fully signed-in session of the resident
        from idp.services import sessions

        sessions.start(db.session.get(User, target), amr=["pwd", "otp"], acr="urn:ecitizen:acr:mfa",
                       lifetime_hours=1)
    assert act(http, f"/admin/residents/{target}/reset-mfa", reason=TICKET).status_code in (302, 303)
    with app.app_context():
        from idp.models import UserSession

        assert db.session.scalar(db.select(db.func.count()).select_from(UserSession)
                                 .where(UserSession.user_id == target, UserSession.ended_at.is_(None))) == 0
        event = db.session.scalar(db.select(AuditEvent).where(AuditEvent.event == "mfa.reset"))
        assert event.actor_id == staff_id and event.detail["reason"] == TICKET
    assert "help desk removed" in body_of(smtp_server.wait_for("amara@example.org", subject_contains="reset"))


@pytest.mark.parametrize("reason", ["", "  ", "x"])
def test_item_50_mfa_reset_without_a_ticket_reference_changes_nothing(app, reason):
    http, _ = staff_client(app)
    target = resident(app)
    _with_totp(app, target)
    act(http, f"/admin/residents/{target}/reset-mfa", reason=reason)
    with app.app_context():
        assert db.session.scalar(db.select(TotpCredential).where(TotpCredential.user_id == target)) is not None
        assert db.session.scalar(db.select(AuditEvent).where(AuditEvent.event == "mfa.reset",
                                                             AuditEvent.outcome == "success")) is None


def test_item_50_staff_can_neither_set_nor_see_a_password(app):
    http, _ = staff_client(app, roles=("support", "administrator"))
    target = resident(app)
    with app.app_context():
        stored = db.session.get(User, target).password_hash
    page = http.get(f"/admin/residents/{target}").get_data(as_text=True)
    assert stored not in page and "$argon2" not in page and 'type="password"' not in page
    assert not [r.rule for r in app.url_map.iter_rules() if r.rule.startswith("/admin") and "password" in r.rule]
    for action in ("lock", "unlock", "sign-out", "reset-mfa", "email", "roles"):
        http.post(f"/admin/residents/{target}/{action}", data={"reason": TICKET, "password": "chosen by staff 123",
                                                               "new_password": "chosen by staff 123"})
    assert login(app.test_client(), password="chosen by staff 123").status_code in (401, 429)
    with app.app_context():
        assert db.session.get(User, target).password_hash == stored
    assert PASSWORD


def _totp_of(app, user_id):
    with app.app_context():
        return db.session.scalar(db.select(TotpCredential).where(TotpCredential.user_id == user_id))


def test_item_50_staff_account_mfa_reset_needs_a_second_administrator(app, smtp_server):
    http, asker = staff_client(app, roles=("support", "administrator"))
    other_staff = resident(app, email="officer@capetown.gov.za")
    with app.app_context():
        db.session.get(User, other_staff).roles = ["administrator"]
        db.session.commit()
    _with_totp(app, other_staff)
    assert "Ask a second administrator" in http.get(f"/admin/residents/{other_staff}").get_data(as_text=True)
    act(http, f"/admin/residents/{other_staff}/reset-mfa", reason=TICKET)
    assert _totp_of(app, other_staff) is not None  # asked, not done
    with app.app_context():
        (request,) = db.session.scalars(db.select(ApprovalRequest))
        assert (request.kind, request.requested_by, request.target_user_id) == ("mfa_reset", asker, other_staff)
    approve = f"/admin/approvals/{request.id}/approve"
    act(http, approve, token_from="/admin/approvals")  # not by the one who asked
    assert _totp_of(app, other_staff) is not None
    second, second_id = staff_client(app, email="second@capetown.gov.za", roles=("administrator",))
    assert act(second, approve, token_from="/admin/approvals").status_code == 303
    assert _totp_of(app, other_staff) is None
    with app.app_context():
        event = db.session.scalar(db.select(AuditEvent).where(AuditEvent.event == "mfa.reset"))
        assert event.actor_id == asker and event.detail["approved_by"] == second_id and event.detail["reason"] == TICKET
        assert db.session.get(ApprovalRequest, request.id).status == "done"
    assert "help desk removed" in body_of(smtp_server.wait_for("officer@capetown.gov.za", subject_contains="reset"))
    act(second, approve, token_from="/admin/approvals")  # once only
    with app.app_context():
        assert db.session.scalar(db.select(db.func.count()).select_from(AuditEvent)
                                 .where(AuditEvent.event == "mfa.reset")) == 1


def test_item_50_the_staff_member_concerned_cannot_approve_their_own_reset(app):
    http, _ = staff_client(app, roles=("support",))
    officer, officer_id = staff_client(app, email="officer@capetown.gov.za", roles=("administrator",))
    _with_totp(app, officer_id)
    act(http, f"/admin/residents/{officer_id}/reset-mfa", reason=TICKET)
    with app.app_context():
        request_id = db.session.scalar(db.select(ApprovalRequest.id))
        assert approvals.waiting_for(db.session.get(User, officer_id)) == []
    act(officer, f"/admin/approvals/{request_id}/approve", token_from="/admin/approvals")
    assert _totp_of(app, officer_id) is not None
    assert "not the one who asked, nor the person it concerns" in officer.get("/admin/approvals").get_data(
        as_text=True)


def test_item_50_the_service_refuses_a_staff_reset_without_approval(app):
    target = resident(app, email="officer@capetown.gov.za")
    _, asker = staff_client(app, roles=("support",))
    _with_totp(app, target)
    with app.app_context():
        db.session.get(User, target).roles = ["support"]
        db.session.commit()
        with pytest.raises(DomainError):
            support.reset_mfa(db.session.get(User, asker), db.session.get(User, target), TICKET)
    assert _totp_of(app, target) is not None


def test_item_50_mfa_reset_notice_reaches_every_channel(app, smtp_server):
    http, _ = staff_client(app)
    target = resident(app)
    with app.app_context():
        user = db.session.get(User, target)
        user.phone_number, user.phone_verified_at = "+27821234567", utcnow()
        db.session.commit()
    _with_totp(app, target)
    act(http, f"/admin/residents/{target}/reset-mfa", reason=TICKET)
    from pathlib import Path

    outbox = Path(app.config["IDP_SETTINGS"].sms_outbox_dir)
    assert texted_codes(app, "+27821234567") == [] and outbox.exists() and any(outbox.iterdir())
