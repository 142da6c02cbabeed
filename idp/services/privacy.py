"""Residents' data rights (POPIA): an export of everything held about a resident, deactivation
(sign-in blocked, history kept, reversible) and erasure (personal data removed, the audit trail
kept under the account's pseudonymous number)."""
from __future__ import annotations

import uuid

from flask_babel import gettext as _
from sqlalchemy import delete, update

from idp.extensions import db
from idp.models import (
    AccountLink,
    ActionToken,
    AuditEvent,
    AuthorizationCode,
    Consent,
    Device,
    LinkRequest,
    RecoveryCode,
    Token,
    TotpCredential,
    User,
    UserSession,
    WebAuthnCredential,
)
from idp.models.types import utcnow
from idp.services import DomainError, audit, grants, municipal, notifications, sessions
from idp.services.support import guard, reason_text

ERASED = "erased"  # lock_reason of an erased account's empty shell


def _iso(value) -> str | None:
    return value.isoformat() if value is not None else None


def export(user: User) -> dict:
    """Everything held about the resident, as plain JSON-ready data (no secret, hash or digest)."""
    by_user = lambda model: db.session.scalars(db.select(model).where(model.user_id == user.id))  # noqa: E731
    return {
        "account": {"sub": user.sub, "email": user.email, "email_verified": user.email_verified, "name": user.name,
                    "given_name": user.given_name, "family_name": user.family_name, "locale": user.locale,
                    "phone_number": user.phone_number, "phone_verified_at": _iso(user.phone_verified_at),
                    "status": user.status, "roles": list(user.roles or []), "created_at": _iso(user.created_at),
                    "password_changed_at": _iso(user.password_changed_at),
                    "notification_preferences": notifications.preferences(user)},
        "sign_in_methods": {
            "authenticator_app": [{"added": _iso(t.created_at), "active": t.confirmed_at is not None}
                                  for t in by_user(TotpCredential)],
            "passkeys": [{"name": k.name, "added": _iso(k.created_at), "last_used": _iso(k.last_used_at)}
                         for k in by_user(WebAuthnCredential)],
            "text_message_codes": bool(user.sms_second_factor),
            "recovery_codes_unused": sum(1 for c in by_user(RecoveryCode) if c.used_at is None),
        },
        "browsers": [{"user_agent": d.user_agent, "first_seen": _iso(d.first_seen_at), "last_seen": _iso(d.last_seen_at),
                      "trusted_until": _iso(d.trusted_until)} for d in by_user(Device)],
        "sessions": [{"started": _iso(s.created_at), "ended": _iso(s.ended_at), "ip_address": s.ip_address,
                      "user_agent": s.user_agent, "methods": list(s.amr or [])} for s in by_user(UserSession)],
        "connected_services": [{"client_id": c.client_id, "scope": c.scope, "granted_at": _iso(c.granted_at)}
                               for c in by_user(Consent)],
        "municipal_accounts": [{"account_number": a.account_number, "service_address": a.service_address,
                                "role": a.role, "verification": a.verification, "verified_at": _iso(a.verified_at)}
                               for a in municipal.linked_accounts(user)],
        "account_link_requests": [{"account_number": r.account_number, "role": r.role, "status": r.status,
                                   "sent": _iso(r.created_at), "document_type": r.document_type}
                                  for r in by_user(LinkRequest)],
        "events": [{"at": _iso(e.at), "event": e.event, "outcome": e.outcome, "ip_address": e.ip_address}
                   for e in db.session.scalars(db.select(AuditEvent).where(AuditEvent.user_id == user.id)
                                               .order_by(AuditEvent.at))],
    }


def deactivate(actor: User, target: User, reason: str, *, ip: str = "") -> None:
    """Block sign-in and end every session and token; history is kept and it can be undone."""
    guard(actor, target)
    why = reason_text(reason)
    if target.status == "deactivated":
        raise DomainError("already_deactivated", _("The account is already deactivated."))
    before = target.status
    target.status, target.deactivated_at = "deactivated", utcnow()
    db.session.commit()
    sessions.end_all_for_user(target.id)
    grants.revoke_all_for_user(target.id)
    audit.record("account.deactivated", user_id=target.id, actor_id=actor.id, ip_address=ip, reason=why,
                 changes={"status": [before, "deactivated"]})


def reactivate(actor: User, target: User, reason: str, *, ip: str = "") -> None:
    guard(actor, target)
    why = reason_text(reason)
    if target.status != "deactivated" or target.email.endswith("@erased.invalid"):
        raise DomainError("not_deactivated", _("Only a deactivated (not erased) account can be reactivated."))
    target.status, target.lock_reason, target.deactivated_at = "active", None, None
    db.session.commit()
    audit.record("account.reactivated", user_id=target.id, actor_id=actor.id, ip_address=ip, reason=why,
                 changes={"status": ["deactivated", "active"]})


def erase(actor: User, target: User, reason: str, *, ip: str = "") -> None:
    """Remove the resident's personal data for good. The account row stays as an empty shell so the
    audit trail keeps its pseudonymous number; addresses in that trail are removed too."""
    guard(actor, target)
    why = reason_text(reason)
    user_id = target.id
    erase_data(target)
    audit.record("account.erased", user_id=user_id, actor_id=actor.id, ip_address=ip, reason=why)


def delete_records_of(user_id: int) -> None:
    """End the resident's sessions (departments are told by back-channel logout before the rows go),
    delete every record that belongs to them and take addresses out of their audit trail. Not committed."""
    sessions.end_all_for_user(user_id)
    for model in (TotpCredential, RecoveryCode, WebAuthnCredential, Device, Consent, AccountLink, LinkRequest,
                  ActionToken, AuthorizationCode, Token, UserSession):
        db.session.execute(delete(model).where(model.user_id == user_id))
    db.session.execute(update(AuditEvent).where(AuditEvent.user_id == user_id).values(ip_address=None))


def discard_unconfirmed_details(user: User) -> None:
    """Whoever registered an address they never confirmed may not be its owner: when the owner takes
    the account over (a password reset proves the mailbox), what was set before goes (checklist 35):
    sessions, second factors, links, consents and tokens, the name, the phone number and the
    preferences. Committed."""
    delete_records_of(user.id)
    user.name, user.given_name, user.family_name = "", None, None
    user.phone_number, user.phone_verified_at, user.sms_second_factor = None, None, False
    user.notification_preferences = None
    db.session.commit()


def erase_data(target: User) -> None:
    """The erasure itself (staff's erase, a resident's own request and the retention job share it)."""
    delete_records_of(target.id)
    target.email = f"{uuid.uuid4().hex}@erased.invalid"
    target.email_verified = False
    target.name, target.given_name, target.family_name, target.locale = "", None, None, None
    target.phone_number, target.phone_verified_at, target.sms_second_factor = None, None, False
    target.password_hash, target.roles = None, []
    target.status, target.lock_reason = "deactivated", ERASED
    db.session.commit()
