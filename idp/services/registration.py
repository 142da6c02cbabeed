"""Signing up and proving control of the email address."""
from __future__ import annotations

from collections.abc import Collection

from flask import current_app
from flask_babel import gettext as _

from idp.extensions import db
from idp.models import User
from idp.services import DomainError, Throttled, accounts, audit, signin
from idp.services import action_tokens as links


def register(name: str, email: str, password: str, *, ip: str = "", locale: str | None = None) -> int | None:
    """Create an unverified account and mail a verification link. Answers the same whether or
    not the address is registered: the owner of a taken address gets a warning mail instead.
    ``locale`` is the language the resident registered in: their mails and the ``locale`` claim use it.
    Returns the new account's id (None when the address was taken), for the browser's session only.
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
            return user.id
    # Same cost as creating an account, so the answer's timing does not tell either.
    current_app.extensions["idp.hasher"].hash(password)
    audit.record("user.registered", outcome="failure", user_id=existing.id if existing else None,
                 ip_address=ip, reason="email_taken")
    if links.requested_mail_allowed(canonical):
        links.notify(canonical, _("Someone tried to register with your email address"), "already_registered",
                     link=links.absolute_link("/login"), reset_link=links.absolute_link("/forgot-password"))
    return None


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


def _password_holder(raw: str, known_accounts: Collection[int]) -> User | None:
    """The account whose password whoever opened this verification link must also give: it has one,
    and this browser neither registered it nor is signed in to it (``known_accounts``); else None."""
    token = links.peek(raw, links.VERIFY_EMAIL)
    user = db.session.get(User, token.user_id) if token else None
    return user if user is not None and user.password_hash is not None and user.id not in known_accounts else None


def needs_password(raw: str, known_accounts: Collection[int]) -> bool:
    """Whether whoever opened this verification link must also give the account's password.
    Checklist 35: someone who registered another person's address must not keep the account once
    its owner confirms the address; the owner, not knowing the password, chooses a new one through
    a reset link instead, which discards what was set before."""
    return _password_holder(raw, known_accounts) is not None


def verify_email(raw: str, *, ip: str = "", password: str | None = None,
                 known_accounts: Collection[int] = ()) -> User:
    """Use a verification link, with the account's password when :func:`needs_password`. Raises
    DomainError: 'invalid_link' when the link is not valid, 'bad_password' (the link stays valid)
    or 'throttled' (the sign-in limiter of the account)."""
    holder = _password_holder(raw, known_accounts)
    if holder is not None:
        outcome = signin.verify_current_password(holder, password or "", ip=ip)
        if outcome != "ok":
            audit.record("email.verified", outcome="failure", user_id=holder.id, ip_address=ip, reason=outcome)
            if outcome == "throttled":
                raise Throttled("throttled", _("Too many attempts. Try again in %(n)d minutes.", n=signin.retry_minutes()),
                                retry_after=signin.retry_minutes() * 60)
            raise DomainError("bad_password", _("That is not the password this account was registered with."))
    found = links.consume_for_account(raw, links.VERIFY_EMAIL, "email")
    if found is None:
        audit.record("email.verified", outcome="failure", ip_address=ip)
        raise invalid_link()
    _token, user = found
    user.email_verified = True
    db.session.commit()
    audit.record("email.verified", user_id=user.id, ip_address=ip)
    return user


def invalid_link() -> DomainError:
    return DomainError("invalid_link", _("This link is not valid or has expired."))
