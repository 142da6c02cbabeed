"""A resident closing their own account: after their password, either deactivate it (sign-in
blocked, every department signed out by back-channel logout, history kept; reopened by a password
reset within IDP_REACTIVATION_DAYS) or erase it for good (the same erasure as staff's)."""
from __future__ import annotations

from datetime import timedelta

from flask import current_app
from flask_babel import gettext as _

from idp.extensions import db
from idp.models import User
from idp.models.types import utcnow
from idp.services import action_tokens as links
from idp.services import audit, grants, privacy, profile, sessions

SELF_CLOSED = "self_closed"


def reactivation_days() -> int:
    return current_app.config["IDP_SETTINGS"].reactivation_days


def close(user: User, password: str, *, erase: bool, ip: str = "") -> None:
    """Close the resident's own account (raises DomainError/Throttled for a wrong password)."""
    profile.check_current_password(user, password, ip, "account.close_requested")
    user_id, email, name = user.id, user.email, user.name
    if erase:
        privacy.erase_data(user)
        audit.record("account.erased", user_id=user_id, actor_id=user_id, ip_address=ip, via="self")
        links.notify(email, _("Your eCitizen Passport account was erased"), "account_closed", name=name,
                     erased=True, days=0, link=None)
        return
    user.status, user.lock_reason, user.deactivated_at = "deactivated", SELF_CLOSED, utcnow()
    db.session.commit()
    sessions.end_all_for_user(user_id)  # every department is told through back-channel logout
    grants.revoke_all_for_user(user_id)
    audit.record("account.deactivated", user_id=user_id, actor_id=user_id, ip_address=ip, via="self",
                 changes={"status": ["active", "deactivated"]})
    links.notify(email, _("Your eCitizen Passport account was closed"), "account_closed", name=name,
                 erased=False, days=reactivation_days(), link=links.absolute_link("/forgot-password"))


def may_reopen(user: User | None) -> bool:
    """A resident's own closure, still within the reactivation period."""
    days = reactivation_days()
    return (user is not None and user.status == "deactivated" and user.lock_reason == SELF_CLOSED and days > 0
            and user.deactivated_at is not None and utcnow() - user.deactivated_at <= timedelta(days=days))


def reopen(user: User) -> None:
    """Reactivate a self-closed account (its owner just proved control of the mailbox)."""
    user.status, user.lock_reason, user.deactivated_at = "active", None, None
    audit.record("account.reactivated", user_id=user.id, actor_id=user.id, via="password_reset", commit=False,
                 changes={"status": ["deactivated", "active"]})
