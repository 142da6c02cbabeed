"""Four eyes (checklist 50, 78): an audit export and a reset of a staff account's second factors
wait for a second administrator. The one who asks, and the person concerned, cannot approve. A
request not decided within APPROVAL_HOURS lapses; an approved export is downloaded once, by the one
who asked, within APPROVAL_HOURS of its approval. Every step is audited."""
from __future__ import annotations

from datetime import timedelta
from urllib.parse import urlsplit

from flask import current_app, render_template
from flask_babel import gettext as _
from sqlalchemy import String, cast, update

from idp.extensions import db
from idp.models import ApprovalRequest, User
from idp.models.types import utcnow
from idp.services import DomainError, audit, mail_queue, support

APPROVAL_HOURS = 24
AUDIT_EXPORT, MFA_RESET = "audit_export", "mfa_reset"


def needs_approval_for_mfa_reset(target: User) -> bool:
    """A staff account's second factors are reset only with a second administrator's approval."""
    return bool(target.roles)


def _ask(kind: str, actor: User, reason: str, *, target: User | None = None, detail: dict | None = None,
         ip: str = "") -> ApprovalRequest:
    why = support.reason_text(reason)
    request = ApprovalRequest(kind=kind, requested_by=actor.id, target_user_id=target.id if target else None,
                              reason=why, detail=detail or {}, expires_at=utcnow() + timedelta(hours=APPROVAL_HOURS))
    db.session.add(request)
    db.session.commit()
    audit.record("approval.requested", actor_id=actor.id, user_id=request.target_user_id, ip_address=ip,
                 kind=kind, request=request.id, reason=why, **request.detail)
    _tell_approvers(request, actor, target)
    return request


def _tell_approvers(request: ApprovalRequest, actor: User, target: User | None) -> None:
    """Mail every administrator who may decide ``request`` that it waits (in English, like the
    console; the reason stays in the console). Staff are few: the roles column is scanned as text."""
    approvers = db.session.scalars(db.select(User).where(
        cast(User.roles, String).like(f'%"{support.ADMINISTRATOR}"%'), User.status == "active",
        User.id != actor.id, User.id != (request.target_user_id or 0)))
    settings = current_app.config["IDP_SETTINGS"]
    console = (f"{urlsplit(settings.issuer).scheme}://{settings.admin_host}" if settings.admin_host
               else settings.issuer) + "/admin/approvals"
    what = (f"a reset of the second factors of {target.email}" if request.kind == MFA_RESET
            else "an export of the audit log")
    for approver in approvers:
        body = render_template("admin/approval_waiting.txt", approver=approver, requester=actor, what=what,
                               link=console, hours=APPROVAL_HOURS)
        mail_queue.enqueue(approver.email, "eCitizen Passport: a request waits for your approval", body)


def ask_mfa_reset(actor: User, target: User, reason: str, *, ip: str = "") -> ApprovalRequest:
    """Ask a second administrator to reset ``target``'s second factors."""
    support.guard(actor, target)
    return _ask(MFA_RESET, actor, reason, target=target, ip=ip)


def ask_audit_export(actor: User, filters: dict, reason: str, *, ip: str = "") -> ApprovalRequest:
    """Ask a second administrator to let ``actor`` download the audit events ``filters`` select."""
    return _ask(AUDIT_EXPORT, actor, reason, detail={"filters": filters}, ip=ip)


def waiting_for(user: User) -> list[ApprovalRequest]:
    """Undecided, unexpired requests ``user`` may decide (none unless an administrator)."""
    if support.ADMINISTRATOR not in (user.roles or []):
        return []
    return list(db.session.scalars(
        db.select(ApprovalRequest).where(ApprovalRequest.status == "pending", ApprovalRequest.expires_at > utcnow(),
                                         ApprovalRequest.requested_by != user.id,
                                         (ApprovalRequest.target_user_id.is_(None))
                                         | (ApprovalRequest.target_user_id != user.id))
        .order_by(ApprovalRequest.id).limit(50)))


def asked_by(user: User) -> list[ApprovalRequest]:
    """The latest requests ``user`` made, newest first."""
    return list(db.session.scalars(db.select(ApprovalRequest).where(ApprovalRequest.requested_by == user.id)
                                   .order_by(ApprovalRequest.id.desc()).limit(20)))


def _claim(request_id: int, from_status: str, **values) -> bool:
    """Move the request on from ``from_status`` if nobody else did first (two approvers at once)."""
    moved = db.session.execute(update(ApprovalRequest).where(
        ApprovalRequest.id == request_id, ApprovalRequest.status == from_status,
        ApprovalRequest.expires_at > utcnow()).values(**values)).rowcount
    db.session.commit()
    return moved == 1


def _decidable(request_id: int, approver: User) -> ApprovalRequest:
    request = db.session.get(ApprovalRequest, request_id)
    if request is None or request.status != "pending" or request.expires_at <= utcnow():
        raise DomainError("not_pending", _("This request is no longer waiting for a decision."))
    if support.ADMINISTRATOR not in (approver.roles or []):
        raise DomainError("not_administrator", _("Only an administrator can decide this request."))
    if approver.id in (request.requested_by, request.target_user_id):
        raise DomainError("same_person", _("A second administrator must decide: not the one who asked, nor the "
                                           "person it concerns."))
    return request


def approve(request_id: int, approver: User, *, ip: str = "") -> ApprovalRequest:
    """Approve: a staff MFA reset is carried out at once; an export becomes downloadable."""
    request = _decidable(request_id, approver)
    requester = db.session.get(User, request.requested_by)
    if requester is None or not requester.roles:
        raise DomainError("requester_gone", _("The one who asked is no longer staff; the request cannot go ahead."))
    now = utcnow()
    status = "done" if request.kind == MFA_RESET else "approved"
    if not _claim(request.id, "pending", status=status, decided_by=approver.id, decided_at=now,
                  expires_at=now + timedelta(hours=APPROVAL_HOURS)):
        raise DomainError("not_pending", _("This request is no longer waiting for a decision."))
    audit.record("approval.granted", actor_id=approver.id, user_id=request.target_user_id, ip_address=ip,
                 kind=request.kind, request=request.id, requested_by=request.requested_by)
    if request.kind == MFA_RESET:
        support.reset_mfa(requester, db.session.get(User, request.target_user_id), request.reason, ip=ip,
                          approved_by=approver)
    db.session.refresh(request)
    return request


def refuse(request_id: int, approver: User, *, ip: str = "") -> None:
    """Refuse: nothing is done, and the one who asked sees it refused."""
    request = _decidable(request_id, approver)
    if not _claim(request.id, "pending", status="refused", decided_by=approver.id, decided_at=utcnow()):
        raise DomainError("not_pending", _("This request is no longer waiting for a decision."))
    audit.record("approval.refused", actor_id=approver.id, user_id=request.target_user_id, ip_address=ip,
                 kind=request.kind, request=request.id, requested_by=request.requested_by)


def take_export(request_id: int, actor: User) -> ApprovalRequest:
    """The approved export request ``actor`` made, used up by this download."""
    request = db.session.get(ApprovalRequest, request_id)
    if (request is None or request.kind != AUDIT_EXPORT or request.requested_by != actor.id
            or request.status != "approved" or not _claim(request.id, "approved", status="done")):
        raise DomainError("no_export", _("There is no approved export of yours here (each one downloads once, "
                                         "within a day of its approval)."))
    db.session.refresh(request)
    return request
