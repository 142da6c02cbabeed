"""What the city's support desk does for a resident: find them, see their state (never a secret),
lock and unlock, sign them out everywhere, reset their second factors, resend a confirmation.
Every action names its staff actor and reason in the audit trail; staff never act on themselves."""
from __future__ import annotations

from dataclasses import dataclass, field

from flask_babel import gettext as _
from sqlalchemy import or_

from idp.extensions import db
from idp.i18n import in_language_of
from idp.models import AccountLink, AuditEvent, MunicipalAccount, TotpCredential, User, UserSession, WebAuthnCredential
from idp.services import (
    DomainError,
    audit,
    devices,
    grants,
    identifiers,
    phones,
    recovery_codes,
    registration,
    security_mail,
    sessions,
)
from idp.services import action_tokens as links

STAFF_LOCK = "staff"
ROLES = ("support", "administrator")
SUPPORT, ADMINISTRATOR = ROLES


def guard(actor: User, target: User) -> None:
    """Refuse a console action of a staff member on their own account."""
    if actor.id == target.id:
        raise DomainError("own_account", _("Staff cannot act on their own account from the console."))


def reason_text(reason: str) -> str:
    """The reason for the audit trail, whitespace collapsed; 3 to 500 characters or DomainError."""
    text = " ".join((reason or "").split())
    if not 3 <= len(text) <= 500:
        raise DomainError("reason_required", _("Give a reason (3 to 500 characters): it goes in the audit trail."))
    return text


def search(query: str, limit: int = 50) -> list[User]:
    """Residents whose email, name, mobile number or a linked municipal account number matches."""
    text = (query or "").strip()
    if len(text) < 2 or len(text) > 200:
        return []
    # The query is data: LIKE's own wildcards in it match only themselves.
    escaped = text.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    like = f"%{escaped}%"
    conditions = [db.func.lower(User.email).like(like, escape="\\"),
                  db.func.lower(User.name).like(like, escape="\\")]
    try:
        conditions.append(User.phone_number == phones.normalise(text))
    except DomainError:
        pass
    number = identifiers.clean_account_number(text)
    if number:
        linked = (db.select(AccountLink.user_id).join(MunicipalAccount, AccountLink.account_id == MunicipalAccount.id)
                  .where(MunicipalAccount.account_number == number))
        conditions.append(User.id.in_(linked))
    return list(db.session.scalars(db.select(User).where(or_(*conditions)).order_by(User.email).limit(limit)))


@dataclass
class ResidentView:
    """A resident as support sees them: state and metadata, no secret of any kind."""

    user: User
    factors: list[str] = field(default_factory=list)
    passkeys: list[tuple[str, object]] = field(default_factory=list)
    recovery_codes_left: int = 0
    trusted_browsers: int = 0
    sessions: list[UserSession] = field(default_factory=list)
    accounts: list = field(default_factory=list)
    events: list[AuditEvent] = field(default_factory=list)


def view(user: User) -> ResidentView:
    from idp.services import factors as factor_rules
    from idp.services import municipal

    keys = list(db.session.scalars(db.select(WebAuthnCredential).where(WebAuthnCredential.user_id == user.id)))
    events = list(db.session.scalars(db.select(AuditEvent).where(AuditEvent.user_id == user.id)
                                     .order_by(AuditEvent.at.desc(), AuditEvent.id.desc()).limit(25)))
    return ResidentView(user=user, factors=factor_rules.methods(user), passkeys=[(k.name, k.created_at) for k in keys],
                        recovery_codes_left=recovery_codes.remaining(user), trusted_browsers=devices.trusted_count(user),
                        sessions=sessions.active_for_user(user.id), accounts=municipal.linked_accounts(user),
                        events=events)


def lock(actor: User, target: User, reason: str, *, ip: str = "") -> None:
    """Lock the account (sign-in refused) and end its sessions and tokens."""
    guard(actor, target)
    why = reason_text(reason)
    if target.status != "active":
        raise DomainError("not_active", _("Only an active account can be locked."))
    target.status, target.lock_reason = "locked", STAFF_LOCK
    db.session.commit()
    ended, revoked = sessions.end_all_for_user(target.id), grants.revoke_all_for_user(target.id)
    audit.record("account.locked", user_id=target.id, actor_id=actor.id, ip_address=ip, reason=why,
                 changes={"status": ["active", "locked"]}, sessions=ended, tokens=revoked)


def unlock(actor: User, target: User, reason: str, *, ip: str = "") -> None:
    guard(actor, target)
    why = reason_text(reason)
    if target.status != "locked":
        raise DomainError("not_locked", _("The account is not locked."))
    target.status, target.lock_reason = "active", None
    db.session.commit()
    audit.record("account.unlocked", user_id=target.id, actor_id=actor.id, ip_address=ip, reason=why,
                 changes={"status": ["locked", "active"]})


def sign_out_everywhere(actor: User, target: User, reason: str, *, ip: str = "") -> tuple[int, int]:
    """End every session and refresh/access token of the resident; returns (sessions, tokens)."""
    guard(actor, target)
    why = reason_text(reason)
    ended, revoked = sessions.end_all_for_user(target.id), grants.revoke_all_for_user(target.id)
    audit.record("account.signed_out_everywhere", user_id=target.id, actor_id=actor.id, ip_address=ip, reason=why,
                 sessions=ended, tokens=revoked)
    return ended, revoked


def reset_mfa(actor: User, target: User, reason: str, *, ip: str = "", approved_by: User | None = None) -> list[str]:
    """Remove every second factor (lost phone): the resident signs in with the password alone and
    enrols again. The resident is emailed. Returns what was removed. A staff account's factors
    are reset only through an approved request (idp.services.approvals)."""
    guard(actor, target)
    why = reason_text(reason)
    if target.roles and approved_by is None:
        raise DomainError("needs_approval", _("A staff account's sign-in methods are reset only with a second "
                                              "administrator's approval."))
    removed = []
    totp_row = db.session.scalar(db.select(TotpCredential).where(TotpCredential.user_id == target.id))
    if totp_row is not None:
        db.session.delete(totp_row)
        removed.append("totp")
    keys = list(db.session.scalars(db.select(WebAuthnCredential).where(WebAuthnCredential.user_id == target.id)))
    for key in keys:
        db.session.delete(key)
    if keys:
        removed.append(f"passkeys:{len(keys)}")
    if target.sms_second_factor:
        target.sms_second_factor = False
        removed.append("sms")
    db.session.commit()
    recovery_codes.discard(target)
    devices.forget_trust(target)
    sessions.end_all_for_user(target.id)
    audit.record("mfa.reset", user_id=target.id, actor_id=actor.id, ip_address=ip, reason=why, removed=removed,
                 **({"approved_by": approved_by.id} if approved_by else {}))
    with in_language_of(target):
        links.notify(target.email, _("Your sign-in methods were reset"), "mfa_reset", name=target.name,
                     link=links.absolute_link("/account/security"))
        security_mail.text(target, _("The sign-in methods of your eCitizen Passport account were reset by the "
                                     "city's help desk."))
    return removed


def resend_verification(actor: User, target: User, *, ip: str = "") -> None:
    guard(actor, target)
    if target.email_verified:
        raise DomainError("already_verified", _("The address is already confirmed."))
    registration.send_verification(target)
    audit.record("email.verification_resent", user_id=target.id, actor_id=actor.id, ip_address=ip)


def change_email(actor: User, target: User, new_email: str, reason: str, *, ip: str = "") -> None:
    """Correct a resident's address (a typo at registration, a lost mailbox): the new address must be
    confirmed again, and the old one is told."""
    from idp.services import accounts

    guard(actor, target)
    why = reason_text(reason)
    address = accounts.canonical_email(new_email)
    if address == target.email:
        raise DomainError("same_email", _("That is already the resident's address."))
    if accounts.find_by_email(address) is not None:
        raise DomainError("email_taken", _("That email address belongs to another account."))
    old = target.email
    target.email, target.email_verified = address, False
    links.invalidate(target.id, links.RESET_PASSWORD, commit=False)  # reset links went to the old address
    db.session.commit()
    audit.record("email.changed_by_staff", user_id=target.id, actor_id=actor.id, ip_address=ip, reason=why)
    with in_language_of(target):
        registration.send_verification(target)
        links.notify(old, _("Your eCitizen Passport email address was changed"), "email_changed_by_staff",
                     name=target.name, new_email=address)


def set_roles(actor: User, target: User, roles: list[str], reason: str, *, ip: str = "") -> None:
    """Give or take staff roles (administrators only; enforced by the caller's view). A change ends
    the member's sessions: new rights only ever come with a fresh sign-in (and cookie id)."""
    guard(actor, target)
    why = reason_text(reason)
    wanted = [r for r in ROLES if r in roles]
    if len(wanted) != len(set(roles)):
        raise DomainError("invalid_role", _("Unknown role."))
    before = list(target.roles or [])
    target.roles = wanted
    db.session.commit()
    if sorted(before) != sorted(wanted):  # new rights only in a session started after the change
        sessions.end_all_for_user(target.id)
    audit.record("user.roles_changed", user_id=target.id, actor_id=actor.id, ip_address=ip, reason=why,
                 changes={"roles": [before, wanted]})
