"""Forgotten passwords: a single-use emailed link that sets a new password and ends every
session and token of the account."""
from __future__ import annotations

from flask import current_app
from flask_babel import gettext as _

from idp.extensions import db
from idp.models import User
from idp.models.types import utcnow
from idp.services import accounts, audit, grants, privacy, security_mail, sessions, signin
from idp.services import action_tokens as links
from idp.services.registration import invalid_link

SELF_REPORTED = "self_reported"  # a lock from a "this wasn't me" link: a password reset lifts it


def may_reset(user: User | None) -> bool:
    """Active accounts, accounts the resident locked through a "this wasn't me" link, and accounts
    the resident closed, within the reactivation period."""
    from idp.services import closure

    return user is not None and (user.is_active or (user.status == "locked" and user.lock_reason == SELF_REPORTED)
                                 or closure.may_reopen(user))


def request_reset(email: str, *, ip: str = "") -> None:
    """Mail a reset link when the address belongs to an account that may reset; silent otherwise.
    A newer request makes older links stop working. Raises Throttled when the client address has
    asked for too many mails."""
    links.guard_mail_requests(ip)
    user = accounts.find_by_email(email)
    if not may_reset(user):
        audit.record("password.reset_requested", outcome="failure", ip_address=ip, reason="unknown_user")
        return
    if not links.requested_mail_allowed(user.email):
        audit.record("password.reset_requested", outcome="failure", user_id=user.id, ip_address=ip,
                     reason="mail_budget")
        return
    audit.record("password.reset_requested", user_id=user.id, ip_address=ip)
    send_reset_link(user)


def send_reset_link(user: User) -> None:
    """Mail the resident a fresh reset link (older ones stop working)."""
    raw = links.issue(user.id, links.RESET_PASSWORD, supersede=True)
    links.notify(user.email, _("Reset your eCitizen Passport password"), "reset_password",
                 link=links.absolute_link(f"/reset-password/{raw}"), expires_with=links.RESET_PASSWORD, name=user.name)


def reset_link_valid(raw: str) -> bool:
    return links.peek(raw, links.RESET_PASSWORD) is not None


def reset_password(raw: str, new_password: str, *, ip: str = "") -> User:
    """Set a new password through a reset link (used up in the same transaction), then end
    every session and token. Raises DomainError 'invalid_link' or 'weak_password'."""
    from idp.services import closure

    token = links.peek(raw, links.RESET_PASSWORD)
    user = db.session.get(User, token.user_id) if token else None
    if not may_reset(user):
        db.session.rollback()
        audit.record("password.reset", outcome="failure", ip_address=ip, reason="invalid_link")
        raise invalid_link()
    accounts.check_password_policy(new_password, email=user.email, name=user.name)
    new_hash = current_app.extensions["idp.hasher"].hash(new_password)
    user_id, email, name = user.id, user.email, user.name
    if links.consume(raw, links.RESET_PASSWORD) is None:
        audit.record("password.reset", outcome="failure", user_id=user_id, ip_address=ip, reason="invalid_link")
        raise invalid_link()
    user = db.session.get(User, user_id)
    if not user.email_verified:  # the mailbox's owner takes over a registration made with their address
        privacy.discard_unconfirmed_details(user)
        name = ""
    user.password_hash = new_hash
    user.password_changed_at = utcnow()
    user.email_verified = True  # the link proved control of the mailbox
    if user.status == "locked" and user.lock_reason == SELF_REPORTED:
        user.status, user.lock_reason = "active", None
    elif closure.may_reopen(user):
        closure.reopen(user)
    signin.clear_account_failures(user)
    db.session.commit()
    sessions.end_all_for_user(user_id)
    grants.revoke_all_for_user(user_id)
    audit.record("password.reset", user_id=user_id, ip_address=ip)
    links.notify(email, _("Your eCitizen Passport password was changed"), "password_changed",
                 link=links.absolute_link("/forgot-password"), name=name)
    security_mail.text(user, _("The password of your eCitizen Passport account was changed."))
    return user
