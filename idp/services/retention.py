"""Retention (POPIA s14, checklist 108): what is no longer needed is deleted on a schedule.

One pass of :func:`run` deletes
- registrations whose email address was never confirmed, ``IDP_UNVERIFIED_ACCOUNT_DAYS`` after sign-up
  (not staff, not a confirmed mobile number, not an account that is locked or closed);
- the data of accounts their owners closed, once they can no longer reopen them (``IDP_REACTIVATION_DAYS``):
  the same erasure staff make, leaving the pseudonymous shell the audit trail refers to;
- audit events older than ``IDP_AUDIT_RETENTION_DAYS``;
- one-time records ``IDP_ONE_TIME_RECORD_DAYS`` after they stopped being usable: authorization codes,
  emailed-link tokens, four-eyes requests, tokens whose refresh family ended, sent or abandoned mail and logout notices.

Every background worker runs it at most once an hour (shared through the store, so instances do
not repeat each other's work); ``idp retention run`` runs it at once.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import timedelta

from flask import current_app
from sqlalchemy import delete, insert, or_, text

from idp.extensions import db
from idp.models import (
    ActionToken,
    ApprovalRequest,
    AuditEvent,
    AuditPurgePermit,
    AuthorizationCode,
    LogoutNotice,
    OutboundMail,
    Token,
    User,
)
from idp.models.types import utcnow
from idp.services import audit, delivery_worker, privacy
from idp.services.closure import SELF_CLOSED

RUN_EVERY = 3600  # seconds between scheduled passes, across all instances
_LOCK = "retention-pass"
BATCH = 500  # accounts per pass and kind: a pass stays short; the next one continues


@dataclass
class Outcome:
    """How many of each were deleted (accounts: erased) in one pass."""
    unverified_accounts: int = 0
    closed_accounts: int = 0
    audit_events: int = 0
    one_time_records: int = 0


def _days(name: str) -> timedelta:
    return timedelta(days=getattr(current_app.config["IDP_SETTINGS"], name))


def _unconfirmed_registrations():
    """The condition on users of a registration never confirmed and past its time."""
    cutoff = utcnow() - _days("unverified_account_days")
    return (User.email_verified.is_(False), User.status == "active", User.lock_reason.is_(None),
            User.phone_verified_at.is_(None), User.created_at < cutoff)


def expired_registration(user: User) -> bool:
    """Whether ``user`` is a registration never confirmed and past its time (not staff): it is
    treated as gone, even before a pass deletes it."""
    return not user.roles and db.session.scalar(
        db.select(User.id).where(User.id == user.id, *_unconfirmed_registrations())) is not None


def delete_registration(user: User) -> None:
    """Delete an unconfirmed registration and everything it holds, committed."""
    privacy.delete_records_of(user.id)
    db.session.delete(user)
    db.session.commit()


def _unverified_accounts() -> int:
    candidates = db.session.scalars(db.select(User).where(*_unconfirmed_registrations()).limit(BATCH)).all()
    staff_free = [user for user in candidates if not user.roles]  # staff accounts are managed by hand
    for user in staff_free:
        delete_registration(user)
    return len(staff_free)


def _closed_accounts() -> int:
    cutoff = utcnow() - _days("reactivation_days")
    closed = db.session.scalars(db.select(User).where(
        User.status == "deactivated", User.lock_reason == SELF_CLOSED, User.deactivated_at < cutoff).limit(BATCH)).all()
    for user in closed:
        privacy.erase_data(user)
    return len(closed)


def _audit_events() -> int:
    """Old events go past the database's append-only guard with a permit that lives only inside
    this transaction."""
    cutoff = utcnow() - _days("audit_retention_days")
    permit = db.session.execute(insert(AuditPurgePermit).values(before=cutoff)
                                .returning(AuditPurgePermit.id)).scalar_one()
    deleted = db.session.execute(delete(AuditEvent).where(AuditEvent.at < cutoff)).rowcount
    db.session.execute(delete(AuditPurgePermit).where(AuditPurgePermit.id == permit))
    return deleted


def _one_time_records() -> int:
    cutoff = utcnow() - _days("one_time_record_days")
    statements = (
        delete(AuthorizationCode).where(AuthorizationCode.expires_at < cutoff),
        delete(ActionToken).where(ActionToken.expires_at < cutoff),
        delete(ApprovalRequest).where(ApprovalRequest.expires_at < cutoff),
        # A rotated refresh token is kept while its family lives: presenting it again revokes the family.
        delete(Token).where(Token.access_expires_at < cutoff,
                            or_(Token.grant_expires_at.is_(None), Token.grant_expires_at < cutoff)),
        delete(OutboundMail).where(or_(OutboundMail.sent_at < cutoff, OutboundMail.gave_up_at < cutoff)),
        delete(LogoutNotice).where(or_(LogoutNotice.delivered_at < cutoff, LogoutNotice.gave_up_at < cutoff)),
    )
    return sum(db.session.execute(statement).rowcount for statement in statements)


def run() -> Outcome:
    """One retention pass, committed; a pass that deleted anything is audited (counts only)."""
    outcome = Outcome(unverified_accounts=_unverified_accounts(), closed_accounts=_closed_accounts())
    if db.engine.dialect.name == "postgresql":  # the first bulk deletes over years of rows may take long
        db.session.execute(text("SET LOCAL statement_timeout = 0"))
    outcome.audit_events = _audit_events()
    outcome.one_time_records = _one_time_records()
    db.session.commit()
    if any(asdict(outcome).values()):
        audit.record("retention.pass", **asdict(outcome))
    return outcome


def run_if_due() -> Outcome | None:
    """Run a pass unless one ran (here or at another instance) within ``RUN_EVERY`` seconds."""
    if not current_app.extensions["idp.store"].add(_LOCK, "1", RUN_EVERY):
        return None
    return run()


delivery_worker.every_sweep(run_if_due)
