"""Single-use, expiring links sent by email: a random token goes in the link, only its
SHA-256 digest is stored, and consuming it is one atomic UPDATE (no double use)."""
from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import timedelta

from flask import current_app
from sqlalchemy import update

from idp.extensions import db
from idp.models import ActionToken, User
from idp.models.types import utcnow

VERIFY_EMAIL = "verify_email"
RESET_PASSWORD = "reset_password"
CHANGE_EMAIL = "change_email"
NOT_ME = "not_me"

LIFETIMES = {
    VERIFY_EMAIL: timedelta(hours=24),
    RESET_PASSWORD: timedelta(minutes=60),
    CHANGE_EMAIL: timedelta(hours=24),
    NOT_ME: timedelta(days=14),
}


@dataclass(frozen=True)
class LinkToken:
    """What a valid token says (plain values; the ORM row stays in the service)."""

    id: int
    user_id: int
    purpose: str
    data: dict


def digest(raw: str) -> str:
    return hashlib.sha256(raw.encode("utf-8")).hexdigest()


def issue(user_id: int, purpose: str, *, data: dict | None = None, supersede: bool = False) -> str:
    """Store a new token and return the raw value for the link (256 bits from ``secrets``).
    With ``supersede``, older unused tokens of the same purpose for the resident stop working."""
    now = utcnow()
    if supersede:
        invalidate(user_id, purpose, commit=False)
    raw = secrets.token_urlsafe(32)
    db.session.add(ActionToken(digest=digest(raw), user_id=user_id, purpose=purpose, data=data or {},
                               created_at=now, expires_at=now + LIFETIMES[purpose]))
    db.session.commit()
    return raw


def invalidate(user_id: int, *purposes: str, commit: bool = True) -> None:
    """Make the resident's unused links of these purposes stop working (a newer link was sent, or
    what they were issued against changed: the password or the email address)."""
    db.session.execute(update(ActionToken)
                       .where(ActionToken.user_id == user_id, ActionToken.purpose.in_(purposes),
                              ActionToken.used_at.is_(None))
                       .values(used_at=utcnow()))
    if commit:
        db.session.commit()


def _plausible(raw: str) -> bool:
    return isinstance(raw, str) and 20 <= len(raw) <= 100


def peek(raw: str, purpose: str) -> LinkToken | None:
    """The token if it is valid now, without using it up (a GET must not consume a link)."""
    if not _plausible(raw):
        return None
    row = db.session.scalar(db.select(ActionToken).where(ActionToken.digest == digest(raw),
                                                         ActionToken.purpose == purpose))
    if row is None or row.used_at is not None or row.expires_at <= utcnow():
        return None
    found = LinkToken(row.id, row.user_id, row.purpose, dict(row.data or {}))
    db.session.commit()  # end the read transaction before a later write (SQLite snapshots)
    return found


def consume(raw: str, purpose: str) -> LinkToken | None:
    """Mark the token used in the current transaction; None unless this call was the one that
    used it. The caller commits (together with the change the link authorises)."""
    found = peek(raw, purpose)
    if found is None:
        return None
    now = utcnow()
    result = db.session.execute(update(ActionToken)
                                .where(ActionToken.id == found.id, ActionToken.used_at.is_(None),
                                       ActionToken.expires_at > now)
                                .values(used_at=now))
    if result.rowcount != 1:
        db.session.rollback()
        return None
    return found


def consume_for_account(raw: str, purpose: str, address_field: str) -> tuple[LinkToken, User] | None:
    """Use a link whose account still has the address it was issued for (``data[address_field]``);
    None, with nothing changed, when the link or the account no longer fits."""
    token = consume(raw, purpose)
    user = db.session.get(User, token.user_id) if token else None
    if token is None or user is None or user.email != token.data.get(address_field):
        db.session.rollback()
        return None
    return token, user


def absolute_link(path: str) -> str:
    """A link built from the configured issuer, never from the request's Host header."""
    return current_app.config["IDP_SETTINGS"].issuer + path


# Requested mails (sign-up, new confirmation link, password reset) per address and hour: past
# this the page answers as usual but nothing more is sent (no mail bombing of an address).
REQUESTED_MAILS_PER_HOUR = 5


MAIL_REQUEST_WINDOW = 3600


def guard_mail_requests(ip: str) -> None:
    """Count one mail-sending request (sign-up, new confirmation link, password reset) from the
    client address ``ip``, whatever the address asked about; raises Throttled (HTTP 429 with
    Retry-After) past ``IDP_MAIL_REQUESTS_PER_IP`` within the hour. Counted before the address is
    even looked up, so a throttled answer is the same for known and unknown addresses."""
    from flask_babel import gettext as _

    from idp.services import Throttled, throttle

    if not ip:
        return
    limit = current_app.config["IDP_SETTINGS"].mail_requests_per_ip
    if throttle.add_failure("mail-requests-ip", ip, MAIL_REQUEST_WINDOW) > limit:
        raise Throttled("mail_limit", _("Too many attempts. Try again in %(n)d minutes.", n=MAIL_REQUEST_WINDOW // 60),
                        retry_after=MAIL_REQUEST_WINDOW)


def requested_mail_allowed(address: str) -> bool:
    """Count one requested mail to ``address``; False when its hourly budget is spent."""
    from idp.services import throttle

    return throttle.add_failure("mail-requested", address.strip().lower(), 3600) <= REQUESTED_MAILS_PER_HOUR


def notify(to: str, subject: str, template: str, *, link: str | None = None, expires_with: str | None = None,
           **context) -> None:
    """Queue a message to a resident. Delivery happens in the background (and is retried), so the
    page a resident sees never depends on whether an address exists or the mail server is up. A
    message carrying a link of purpose ``expires_with`` is not sent once that link has expired."""
    from idp.services import mail

    expires_at = utcnow() + LIFETIMES[expires_with] if expires_with else None
    mail.send_template(to, subject, template, link=link, expires_at=expires_at, **context)
