"""Signing up and proving control of the email address."""
from __future__ import annotations

from flask import current_app
from flask_babel import gettext as _

from idp.extensions import db
from idp.models import User
from idp.services import DomainError, accounts, audit
from idp.services import action_tokens as links


def register(name: str, email: str, password: str, *, ip: str = "", locale: str | None = None) -> None:
    """Create an unverified account and mail a verification link. Answers the same whether or
    not the address is registered: the owner of a taken address gets a warning mail instead.
    ``locale`` is the language the resident registered in: their mails and the ``locale`` claim use it.
    Raises DomainError ('invalid_email', 'weak_password', 'invalid_name') for bad input, Throttled
    when the client address has asked for too many mails."""
    name = name.strip()
    if not name:
        raise DomainError("invalid_name", _("Enter your name."))
    canonical = accounts.canonical_email(email)
    accounts.check_password_policy(password, email=canonical, name=name)
    links.guard_mail_requests(ip)
    existing = accounts.find_by_email(canonical)
    if existing is None:
        try:
            user = accounts.create_user(canonical, password, name=name, locale=locale)
        except DomainError as exc:
            if exc.code != "email_taken":
                raise
            existing = accounts.find_by_email(canonical)
        else:
            audit.record("user.registered", user_id=user.id, ip_address=ip)
            send_verification(user)
            return
    # Same cost as creating an account, so the answer's timing does not tell either.
    current_app.extensions["idp.hasher"].hash(password)
    audit.record("user.registered", outcome="failure", user_id=existing.id if existing else None,
                 ip_address=ip, reason="email_taken")
    if links.requested_mail_allowed(canonical):
        links.notify(canonical, _("Someone tried to register with your email address"), "already_registered",
                     link=links.absolute_link("/login"), reset_link=links.absolute_link("/forgot-password"))


def send_verification(user: User) -> None:
    if not links.requested_mail_allowed(user.email):
        return
    raw = links.issue(user.id, links.VERIFY_EMAIL, data={"email": user.email}, supersede=True)
    links.notify(user.email, _("Confirm your email address"), "verify_email",
                 link=links.absolute_link(f"/verify-email/{raw}"), expires_with=links.VERIFY_EMAIL, name=user.name)


def resend_verification(email: str, *, ip: str = "") -> None:
    """Mail a new link if the address belongs to an unverified account; silent otherwise.
    Raises Throttled when the client address has asked for too many mails."""
    links.guard_mail_requests(ip)
    user = accounts.find_by_email(email)
    if user is not None and not user.email_verified and user.is_active:
        send_verification(user)
        audit.record("email.verification_resent", user_id=user.id, ip_address=ip)


def verification_link_valid(raw: str) -> bool:
    return links.peek(raw, links.VERIFY_EMAIL) is not None


def verify_email(raw: str, *, ip: str = "") -> User:
    """Use a verification link; raises DomainError('invalid_link') when it is not valid."""
    found = links.consume_for_account(raw, links.VERIFY_EMAIL, "email")
    if found is None:
        audit.record("email.verified", outcome="failure", ip_address=ip)
        raise invalid_link()
    _, user = found
    user.email_verified = True
    db.session.commit()
    audit.record("email.verified", user_id=user.id, ip_address=ip)
    return user


def invalid_link() -> DomainError:
    return DomainError("invalid_link", _("This link is not valid or has expired."))
