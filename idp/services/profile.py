"""Changes a signed-in resident makes to their own account."""
from __future__ import annotations

from flask import current_app
from flask_babel import gettext as _
from sqlalchemy.exc import IntegrityError

from idp.extensions import db
from idp.models import User
from idp.models.types import utcnow
from idp.services import DomainError, Throttled, accounts, audit, grants, security_mail, sessions, signin
from idp.services import action_tokens as links
from idp.services.registration import invalid_link


def _clean_name(name: str) -> str:
    name = " ".join(name.split())
    if not name:
        raise DomainError("invalid_name", _("Enter your name."))
    if len(name) > 200:
        raise DomainError("invalid_name", _("Use at most %(n)d characters.", n=200))
    return name


def update_name(user: User, name: str, *, ip: str = "") -> None:
    user.name = _clean_name(name)
    db.session.commit()
    audit.record("profile.name_changed", user_id=user.id, ip_address=ip)


def set_locale(user: User, code: str, *, ip: str = "") -> None:
    """Remember the language the resident chose (returned as the ``locale`` claim)."""
    if user.locale == code:
        return
    user.locale = code
    db.session.commit()
    audit.record("profile.locale_changed", user_id=user.id, ip_address=ip, locale=code)


def check_current_password(user: User, password: str, ip: str, event: str) -> None:
    """Re-authentication for a sensitive change (throttled like sign-in); raises on a wrong password."""
    outcome = signin.verify_current_password(user, password, ip=ip)
    if outcome == "ok":
        return
    audit.record(event, outcome="failure", user_id=user.id, ip_address=ip, reason=outcome)
    if outcome == "throttled":
        raise Throttled("throttled", _("Too many attempts. Try again in %(n)d minutes.", n=signin.retry_minutes()))
    raise DomainError("bad_password", _("Your current password is not right."))


def request_email_change(user: User, current_password: str, new_email: str, *, ip: str = "") -> None:
    """After the current password, mail a confirmation link to the new address (the change
    happens only when it is used) and a notice to the old one. A taken address gets the same
    answer; its owner is told someone tried to use it."""
    check_current_password(user, current_password, ip, "email.change_requested")
    canonical = accounts.canonical_email(new_email)
    if canonical == user.email:
        raise DomainError("same_email", _("That is already your email address."))
    audit.record("email.change_requested", user_id=user.id, ip_address=ip)
    if accounts.find_by_email(canonical) is not None:
        links.notify(canonical, _("Someone tried to use your email address"), "already_registered",
                     link=links.absolute_link("/login"), reset_link=links.absolute_link("/forgot-password"))
    else:
        raw = links.issue(user.id, links.CHANGE_EMAIL, data={"email": canonical, "old": user.email}, supersede=True)
        links.notify(canonical, _("Confirm your new email address"), "change_email",
                     link=links.absolute_link(f"/confirm-email/{raw}"), expires_with=links.CHANGE_EMAIL,
                     name=user.name)
    # "This wasn't me" keeps the address: it cancels the change, or undoes it (checklist 35).
    revert = links.issue(user.id, links.NOT_ME, data={"event": "email.change_requested", "keep_email": user.email})
    links.notify(user.email, _("A change of your email address was requested"), "email_change_notice",
                 link=links.absolute_link(f"/not-me/{revert}"), name=user.name, new_email=canonical)


def email_change_link_valid(raw: str) -> bool:
    return links.peek(raw, links.CHANGE_EMAIL) is not None


def confirm_email_change(raw: str, *, ip: str = "") -> User:
    """Use a change-email link: the account's address becomes the new (verified) one."""
    found = links.consume_for_account(raw, links.CHANGE_EMAIL, "old")
    if found is None:
        audit.record("email.changed", outcome="failure", ip_address=ip, reason="invalid_link")
        raise invalid_link()
    token, user = found
    user.email = token.data["email"]
    user.email_verified = True
    links.invalidate(user.id, links.RESET_PASSWORD, commit=False)  # reset links went to the old address
    try:
        db.session.commit()
    except IntegrityError:  # registered by someone else meanwhile
        db.session.rollback()
        audit.record("email.changed", outcome="failure", user_id=token.user_id, ip_address=ip, reason="taken")
        raise invalid_link() from None
    audit.record("email.changed", user_id=user.id, ip_address=ip)
    return user


def change_password(user: User, current_password: str, new_password: str, *, keep_sid: str,
                    ip: str = "") -> None:
    """Check the current password (throttled like sign-in), set the new one, end every other
    session, revoke tokens issued to applications, and notify the resident."""
    check_current_password(user, current_password, ip, "password.changed")
    accounts.check_password_policy(new_password, email=user.email, name=user.name)
    user.password_hash = current_app.extensions["idp.hasher"].hash(new_password)
    user.password_changed_at = utcnow()
    links.invalidate(user.id, links.RESET_PASSWORD, commit=False)
    signin.clear_account_failures(user)
    db.session.commit()
    sessions.end_all_for_user(user.id, except_sid=keep_sid)
    grants.revoke_all_for_user(user.id)
    audit.record("password.changed", user_id=user.id, ip_address=ip)
    links.notify(user.email, _("Your eCitizen Passport password was changed"), "password_changed",
                 link=links.absolute_link("/forgot-password"), name=user.name)
    security_mail.text(user, _("The password of your eCitizen Passport account was changed."))
