""""This wasn't me": a resident reports a security notice they did not cause. The account is locked
(until a password reset through the emailed link), every session and token ends, a factor the
notice was about is removed, and a reset link is sent."""
from __future__ import annotations

from flask_babel import gettext as _

from idp.extensions import db
from idp.models import User
from idp.services import DomainError, audit, grants, recovery, sessions
from idp.services import action_tokens as links
from idp.services.recovery import SELF_REPORTED


def link_valid(raw: str) -> bool:
    return links.peek(raw, links.NOT_ME) is not None


def report(raw: str, *, ip: str = "") -> None:
    """Act on a "this wasn't me" link (single use). Raises DomainError 'invalid_link'."""
    token = links.consume(raw, links.NOT_ME)
    user = db.session.get(User, token.user_id) if token else None
    if token is None or user is None or user.status == "deactivated":
        db.session.rollback()
        raise DomainError("invalid_link", _("This link is not valid or has expired."))
    if user.status == "active":
        user.status = "locked"
        user.lock_reason = SELF_REPORTED
    kept = _keep_email(user, token.data.get("keep_email"))
    db.session.commit()
    _remove_reported_factor(user, token.data.get("factor") or {})
    ended = sessions.end_all_for_user(user.id)
    revoked = grants.revoke_all_for_user(user.id)
    audit.record("account.reported_compromise", user_id=user.id, ip_address=ip,
                 event_reported=token.data.get("event", ""), sessions=ended, tokens=revoked, email_kept=kept)
    recovery.send_reset_link(user)


def _keep_email(user: User, address: str | None) -> bool:
    """For a reported change of address: cancel a pending change and, if it already happened, put
    the reported-from address back (unless another account took it meanwhile). Not committed."""
    if not address:
        return False
    links.invalidate(user.id, links.CHANGE_EMAIL, commit=False)
    if user.email != address and db.session.scalar(db.select(User.id).where(User.email == address)) is None:
        user.email, user.email_verified = address, True
    return user.email == address


def _remove_reported_factor(user: User, factor: dict) -> None:
    from idp.services import factors

    kind, ident = factor.get("kind"), factor.get("id")
    if kind:
        factors.remove_without_notice(user, kind, ident)
