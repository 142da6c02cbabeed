"""A resident's second factors as a whole: which they have, what a sign-in with them proves
(amr/acr), and the bookkeeping when one is added or removed (recovery codes, notices)."""
from __future__ import annotations

from flask import current_app
from flask_babel import gettext as _

from idp.extensions import db
from idp.models import User
from idp.oidc.acr import ACR_PHISHING_RESISTANT, rank
from idp.services import DomainError, audit, devices, passkeys, phones, recovery_codes, security_mail, totp

PASSKEY, TOTP, SMS, RECOVERY = "passkey", "totp", "sms", "recovery"


def sms_enabled() -> bool:
    """Whether the city allows SMS codes as a second factor (IDP_SMS_SECOND_FACTOR)."""
    return current_app.config["IDP_SETTINGS"].sms_second_factor


def sms_active(user: User) -> bool:
    return sms_enabled() and bool(user.sms_second_factor and user.phone_number)


def methods(user: User) -> list[str]:
    """The resident's second-factor methods, strongest first (recovery codes last)."""
    found = []
    if passkeys.list_for(user):
        found.append(PASSKEY)
    if totp.active(user):
        found.append(TOTP)
    if sms_active(user):
        found.append(SMS)
    if found and recovery_codes.remaining(user):
        found.append(RECOVERY)
    return found


def has_second_factor(user: User) -> bool:
    return bool(methods(user))


def methods_for(user: User, acr: str | None) -> list[str]:
    """The resident's methods that reach ``acr`` (only passkeys reach phishing-resistant)."""
    available = methods(user)
    if rank(acr) >= rank(ACR_PHISHING_RESISTANT):
        return [m for m in available if m == PASSKEY]
    return available


def label(kind: str) -> str:
    return {PASSKEY: _("passkey or security key"), TOTP: _("authenticator app"),
            SMS: _("text message codes"), RECOVERY: _("recovery code")}[kind]


def added(user: User, kind: str, *, ident: int | None = None, ip: str = "",
          keep_sid: str | None = None) -> list[str] | None:
    """Record a newly added factor and tell the resident; returns fresh recovery codes when this is
    the first factor (shown once), else None. With ``keep_sid``, every other session ends."""
    audit.record("mfa.factor_added", user_id=user.id, ip_address=ip, kind=kind)
    _sign_out_elsewhere(user, keep_sid)
    security_mail.send(user, "factor_added", ip=ip, detail=label(kind), factor={"kind": kind, "id": ident})
    if recovery_codes.remaining(user) == 0:
        return recovery_codes.generate(user)
    return None


def remove_without_notice(user: User, kind: str, ident: int | None = None) -> bool:
    """Remove a factor; when none is left, recovery codes and trusted browsers go too."""
    if kind == PASSKEY:
        removed = ident is not None and passkeys.remove(user, int(ident))
    elif kind == TOTP:
        removed = totp.remove(user)
    elif kind == SMS:
        removed = bool(user.sms_second_factor)
        user.sms_second_factor = False
        db.session.commit()
    else:
        return False
    if removed:
        _tidy(user)
    return removed


def _tidy(user: User) -> None:
    """With no second factor left, recovery codes and trusted browsers mean nothing: drop them."""
    if not has_second_factor(user):
        recovery_codes.discard(user)
        devices.forget_trust(user)


def remove_phone(user: User, *, ip: str = "", keep_sid: str | None = None) -> None:
    """Forget the resident's number, and with it text-message codes as a factor (with ``keep_sid``,
    every other session ends)."""
    phones.remove(user, ip=ip)
    _tidy(user)
    _sign_out_elsewhere(user, keep_sid)


def _sign_out_elsewhere(user: User, keep_sid: str | None) -> None:
    """A change of sign-in methods made from session ``keep_sid`` ends the resident's other
    sessions, so a session someone else holds does not outlive it (None: nothing ends)."""
    if keep_sid is not None:
        from idp.services import sessions

        sessions.end_all_for_user(user.id, except_sid=keep_sid)


def _strong_factor_after(user: User, kind: str | None = None, ident: int | None = None) -> bool:
    """Whether the resident keeps an authenticator app or a passkey once this factor is gone."""
    others = [row for row in passkeys.list_for(user) if not (kind == PASSKEY and row.id == ident)]
    return bool(others) or (kind != TOTP and totp.active(user))


def _refuse_sms_only_staff() -> DomainError:
    return DomainError("sms_only_staff", _("Staff accounts cannot use text message codes as their only second "
                                           "method. Set up an authenticator app or a passkey first."))


def _signs_in_alone_after(user: User, kind: str, ident: int | None) -> bool:
    """Whether the resident keeps a way to sign in by itself (a password or a passkey) once this
    factor is gone."""
    others = [row for row in passkeys.list_for(user) if not (kind == PASSKEY and row.id == ident)]
    return bool(user.password_hash) or bool(others)


def remove(user: User, kind: str, *, ident: int | None = None, ip: str = "", keep_sid: str | None = None) -> bool:
    """Remove a factor at the resident's request and tell them (with ``keep_sid``, every other
    session ends). Raises DomainError 'last_authenticator' for the last one the resident could
    sign in with."""
    if user.roles and kind != SMS and sms_active(user) and not _strong_factor_after(user, kind, ident):
        raise _refuse_sms_only_staff()
    if not _signs_in_alone_after(user, kind, ident):
        raise DomainError("last_authenticator", _("This is the only way you can sign in, so it cannot be removed. "
                                                  "Add another passkey first."))
    if not remove_without_notice(user, kind, ident):
        return False
    audit.record("mfa.factor_removed", user_id=user.id, ip_address=ip, kind=kind)
    _sign_out_elsewhere(user, keep_sid)
    security_mail.send(user, "factor_removed", ip=ip, detail=label(kind))
    return True


def enable_sms(user: User, *, ip: str = "", keep_sid: str | None = None) -> list[str] | None:
    """Use text-message codes as a second factor (needs a verified number and the city's consent).
    Raises DomainError 'sms_only_staff' for a staff account without an app or passkey."""
    if not sms_enabled() or not user.phone_number or user.sms_second_factor:
        return None
    if user.roles and not _strong_factor_after(user):
        raise _refuse_sms_only_staff()
    user.sms_second_factor = True
    db.session.commit()
    return added(user, SMS, ip=ip, keep_sid=keep_sid)
