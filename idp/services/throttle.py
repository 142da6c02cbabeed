"""Counting failures in the shared store (atomic INCR) to slow guessing down."""
from __future__ import annotations

import hashlib

from flask import current_app


def _key(kind: str, subject: str) -> str:
    # Subjects (emails, addresses) are hashed so the store holds no personal data.
    return f"throttle:{kind}:" + hashlib.sha256(subject.encode()).hexdigest()[:32]


def failures(kind: str, subject: str) -> int:
    """The current failure count for a subject."""
    value = current_app.extensions["idp.store"].get(_key(kind, subject))
    return int(value or 0)


def add_failure(kind: str, subject: str, window: int) -> int:
    """Count one more failure; the window starts at the first failure."""
    return current_app.extensions["idp.store"].incr(_key(kind, subject), window)


def reset(kind: str, subject: str) -> None:
    current_app.extensions["idp.store"].delete(_key(kind, subject))


def guard_attempt(kind: str, subject: str, *, limit: int | None = None, window: int | None = None) -> None:
    """Count one attempt at an authenticator (a TOTP or recovery code, say) before it is checked,
    against the per-account limit (``IDP_LOGIN_MAX_FAILURES`` per ``IDP_LOGIN_FAILURE_WINDOW``):
    raises Throttled past it, so parallel guesses cannot exceed the limit either. A right answer
    calls :func:`reset`. ``limit``/``window`` replace those two settings for one kind of attempt."""
    from flask_babel import gettext as _

    from idp.services import Throttled

    settings = current_app.config["IDP_SETTINGS"]
    limit = limit or settings.login_max_failures
    window = window or settings.login_failure_window
    if add_failure(kind, subject, window) > limit:
        raise Throttled("too_many_tries", _("Too many attempts. Try again in %(n)d minutes.",
                                            n=max(1, -(-window // 60))))
