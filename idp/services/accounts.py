"""Residents' accounts: creating them and finding them by email."""
from __future__ import annotations

import unicodedata

from email_validator import EmailNotValidError, validate_email
from flask import current_app
from flask_babel import gettext as _
from sqlalchemy.exc import IntegrityError

from idp.extensions import db
from idp.models import User
from idp.models.types import utcnow
from idp.services import DomainError, passwords


def canonical_email(raw: str) -> str:
    """Validate an address's syntax and return its canonical form: NFKC-normalised (full-width
    and other compatibility forms become the ordinary characters) and lower-case. An address
    mixing writing systems within its local part or a domain label (a Cyrillic "а" among Latin
    letters, say) is refused: it could pass for another resident's address."""
    try:
        result = validate_email(unicodedata.normalize("NFKC", raw.strip()), check_deliverability=False)
    except EmailNotValidError:
        raise DomainError("invalid_email", _("Enter an email address like name@example.com.")) from None
    canonical = result.normalized.lower()
    local, _at, domain = canonical.rpartition("@")
    # RFC 5321 bounds (email_validator leaves the local part's to "strict" mode): 64 octets before
    # the @, 254 in all.
    too_long = len(local.encode()) > 64 or len(canonical.encode()) > 254
    if too_long or any(len(_scripts(part)) > 1 for part in [local, *domain.split(".")]):
        raise DomainError("invalid_email", _("Enter an email address like name@example.com."))
    return canonical


def _scripts(text: str) -> set[str]:
    """The writing systems of the letters in ``text`` (LATIN, CYRILLIC, GREEK ...)."""
    return {unicodedata.name(ch, "UNKNOWN").split(" ")[0] for ch in text if ch.isalpha()}


def find_by_email(email: str) -> User | None:
    """The account with this address. A registration never confirmed within
    IDP_UNVERIFIED_ACCOUNT_DAYS is deleted when met (checklist 35), so the address is free again."""
    from idp.services import retention

    try:
        canonical = canonical_email(email)
    except DomainError:
        return None
    user = db.session.scalar(db.select(User).where(User.email == canonical))
    if user is not None and not user.email_verified and retention.expired_registration(user):
        retention.delete_registration(user)
        return None
    return user


def check_password_policy(password: str, *, email: str = "", name: str = "") -> None:
    """Raise DomainError with the policy's reason when the password is not acceptable."""
    settings = current_app.config["IDP_SETTINGS"]
    result = passwords.check_policy(password, settings.password_min_length, email=email, name=name)
    if not result.ok:
        raise DomainError("weak_password", result.reason)


def create_user(email: str, password: str, *, name: str = "", email_verified: bool = False,
                locale: str | None = None) -> User:
    """Create a resident (``locale``: the language they use); raises DomainError('email_taken') when
    the address is registered."""
    canonical = canonical_email(email)
    check_password_policy(password, email=canonical, name=name)
    hasher = current_app.extensions["idp.hasher"]
    user = User(email=canonical, name=name.strip(), email_verified=email_verified,
                password_hash=hasher.hash(password), password_changed_at=utcnow(), roles=[], locale=locale)
    db.session.add(user)
    try:
        db.session.commit()
    except IntegrityError:
        db.session.rollback()
        raise DomainError("email_taken", _("That email address is already registered.")) from None
    return user
