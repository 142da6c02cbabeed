"""Checking a resident's password, with throttling that does not reveal whether an account exists."""
from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import timedelta

from flask import current_app

from idp.extensions import db
from idp.models import User
from idp.models.types import utcnow
from idp.services import DomainError, accounts, audit, passwords, throttle

ACCOUNT = "login-account"
IP = "login-ip"
# Failed sign-ins across every account: a surge means credential stuffing from many addresses.
GLOBAL = "login-global"
# A browser that has signed in to the account before counts its tries apart from everyone else's,
# so strangers failing against an account cannot lock its owner out of their own browser.
DEVICE = "login-device"


@dataclass(frozen=True)
class SigninResult:
    user: User | None
    throttled: bool = False
    retry_minutes: int = 0
    # The bot challenge was demanded and not solved: the password was not checked.
    challenge_failed: bool = False
    # The password was right but is on a list of leaked passwords: no sign-in, a reset link was mailed.
    must_reset: bool = False

    @property
    def ok(self) -> bool:
        return self.user is not None


def account_key(identifier: str) -> str:
    """The throttle subject for an identifier (email or mobile number), whether or not an account has it."""
    from idp.services import phones

    try:
        return accounts.canonical_email(identifier) if "@" in identifier else phones.normalise(identifier)
    except DomainError:
        return identifier.strip().lower()


def find_account(identifier: str) -> User | None:
    """The resident with this email address or verified mobile number."""
    from idp.services import phones

    return accounts.find_by_email(identifier) if "@" in identifier else phones.find_by_phone(identifier)


def _settings():
    return current_app.config["IDP_SETTINGS"]


def _ip_throttled(ip: str) -> bool:
    return bool(ip) and throttle.failures(IP, ip) >= _settings().ip_max_failures


def _reserve_attempt(email_key: str) -> int:
    """Count the attempt before checking the password (atomic INCR): however many requests
    race, at most ``login_max_failures`` of them per window are ever checked."""
    settings = _settings()
    return throttle.add_failure(ACCOUNT, email_key, settings.login_failure_window)


def retry_minutes() -> int:
    return max(1, math.ceil(_settings().login_failure_window / 60))


def _count_ip_failure(ip: str) -> int:
    return throttle.add_failure(IP, ip, _settings().login_failure_window) if ip else 0


def clear_account_failures(user: User) -> None:
    """The resident proved who they are (right password, reset link): their failure count and any
    lockout end (the caller commits)."""
    throttle.reset(ACCOUNT, user.email)
    user.login_locked_until = None


def _locked(user: User | None) -> bool:
    return user is not None and user.login_locked_until is not None and user.login_locked_until > utcnow()


def _lock(user: User) -> None:
    """Keep the lockout in the database too: a store that restarts (or is flushed) forgets counters."""
    user.login_locked_until = utcnow() + timedelta(seconds=_settings().login_failure_window)
    db.session.commit()


def verify_current_password(user: User, password: str, *, ip: str = "") -> str:
    """For pages that ask again for the password: 'ok', 'bad_password' or 'throttled'
    (the same per-account limiter as sign-in)."""
    settings = _settings()
    if _ip_throttled(ip):
        return "throttled"
    attempts = _reserve_attempt(user.email)  # the same counter as sign-in by email
    if attempts > settings.login_max_failures:
        return "throttled"
    if current_app.extensions["idp.hasher"].verify(user.password_hash, password):
        clear_account_failures(user)
        db.session.commit()
        return "ok"
    ip_count = _count_ip_failure(ip)
    if attempts >= settings.login_max_failures or ip_count >= settings.ip_max_failures:
        return "throttled"
    return "bad_password"


def _global_failures() -> int:
    """Failed sign-ins over all accounts within the window. From ``IDP_LOGIN_GLOBAL_MAX_FAILURES``
    (a surge: credential stuffing) browsers new to an account must solve the bot challenge; from
    twice that they are refused outright, and only browsers known to the account sign in."""
    return throttle.failures(GLOBAL, "all")


def _challenge_demanded(key: str) -> bool:
    """For a browser new to the account: half the account's failure limit used, or a surge."""
    settings = _settings()
    return (throttle.failures(ACCOUNT, key) >= settings.login_max_failures // 2
            or _global_failures() >= settings.login_global_max_failures)


def authenticate(email: str, password: str, ip: str, *, device: str = "",
                 challenge: tuple[str | None, str | None] = (None, None)) -> SigninResult:
    """The resident when the email and password are right and the account may sign in.

    Unknown address, wrong password, locked or deactivated account: the same result, after the
    same argon2 work. Over a limit (per account, per client address, or twice the global one),
    the password is not even checked, nor when the bot challenge is demanded and ``challenge``
    (puzzle token, answer) does not solve it. ``device`` is the browser's id: a browser that has
    signed in to the account before has its own per-account counter, is never challenged and
    passes a surge. A right password that is on a list of leaked passwords signs nobody in: a
    reset link is mailed instead (``must_reset``)."""
    from idp.services import bot_challenge, devices

    settings = _settings()
    user = find_account(email)
    known = user is not None and devices.is_known(user, device)
    # One counter per account whichever identifier is typed (email or mobile number).
    key = user.email if user is not None else account_key(email)
    if not known and _challenge_demanded(key) and not bot_challenge.solved(*challenge):
        audit.record("signin.failure", outcome="failure", user_id=user.id if user else None, ip_address=ip,
                     reason="bot_challenge")
        return SigninResult(None, challenge_failed=True)
    counter, subject = (DEVICE, f"{user.id}:{device}") if known else (ACCOUNT, key)
    blocked = _ip_throttled(ip) or (not known and _global_failures() >= 2 * settings.login_global_max_failures)
    attempts = 0 if blocked else throttle.add_failure(counter, subject, settings.login_failure_window)
    if attempts == 0 or attempts > settings.login_max_failures or (not known and _locked(user)):
        audit.record("signin.failure", outcome="failure", user_id=user.id if user else None, ip_address=ip,
                     reason="throttled")
        return SigninResult(None, throttled=True, retry_minutes=retry_minutes())
    hasher = current_app.extensions["idp.hasher"]
    matches = hasher.verify(user.password_hash if user else None, password)
    if user is None or not matches or not user.is_active:
        reason = "unknown_user" if user is None else ("bad_password" if not matches else "inactive")
        audit.record("signin.failure", outcome="failure", user_id=user.id if user else None,
                     ip_address=ip, reason=reason)
        ip_count = _count_ip_failure(ip)
        throttle.add_failure(GLOBAL, "all", settings.login_failure_window)
        now_throttled = attempts >= settings.login_max_failures or ip_count >= settings.ip_max_failures
        if user is not None and counter == ACCOUNT and attempts >= settings.login_max_failures:
            _lock(user)
        return SigninResult(None, throttled=now_throttled, retry_minutes=retry_minutes() if now_throttled else 0)
    throttle.reset(counter, subject)
    if counter == ACCOUNT:
        user.login_locked_until = None  # committed with the sign-in below
    if passwords.is_known_leaked(password):
        _require_reset(user, ip)
        return SigninResult(None, must_reset=True)
    if hasher.needs_rehash(user.password_hash):
        user.password_hash = hasher.hash(password)
        db.session.commit()
    audit.record("signin.success", user_id=user.id, ip_address=ip, amr=["pwd"])
    return SigninResult(user)


def _require_reset(user: User, ip: str) -> None:
    """The resident signed in with a leaked password: mail a reset link (within the address's
    mail budget) instead of signing in."""
    from idp.services import action_tokens as links
    from idp.services import recovery

    audit.record("signin.leaked_password", outcome="failure", user_id=user.id, ip_address=ip)
    if links.requested_mail_allowed(user.email):
        recovery.send_reset_link(user)
