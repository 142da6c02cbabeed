"""One limiter for every check of a resident's one-time codes (authenticator app, recovery codes),
whatever the path: sign-in, step-up (which also guards removing a factor or changing sign-in
details) and recovery.

Two bounds, per resident and authenticator, across all sessions:
- a window: after ``IDP_OTP_MAX_FAILURES`` tries within ``IDP_OTP_FAILURE_WINDOW`` seconds without
  a right code, no code is checked until the window ends (counted in the shared store);
- a hard stop: after ``IDP_OTP_LOCKOUT_FAILURES`` wrong codes in a row the authenticator is
  blocked (counted in the database) until it is replaced or support resets the factors.

Each try is counted *before* the code is compared (atomic increments), so parallel guesses can
never be checked more often than the limits allow; a right code clears both counts."""
from __future__ import annotations

from collections.abc import Callable

from flask import current_app
from flask_babel import gettext as _
from sqlalchemy import update

from idp.extensions import db
from idp.services import Throttled, audit, throttle


def attempt(user_id: int, kind: str, counter, row_id: int, verify: Callable[[], bool]) -> bool:
    """Check a code with ``verify`` under the limits. ``kind`` names the authenticator's throttle,
    ``counter`` is the model column with its wrong codes in a row and ``row_id`` the row holding it.
    Returns verify's answer; raises Throttled ('too_many_tries' within the window,
    'authenticator_locked' after the hard stop) without calling verify."""
    settings = current_app.config["IDP_SETTINGS"]
    try:
        throttle.guard_attempt(f"otp:{kind}", str(user_id), limit=settings.otp_max_failures,
                               window=settings.otp_failure_window)
    except Throttled:
        audit.record("mfa.throttled", outcome="failure", user_id=user_id, method=kind)
        raise
    model = counter.class_
    claimed = db.session.execute(update(model).where(model.id == row_id, counter < settings.otp_lockout_failures)
                                 .values({counter.key: counter + 1})).rowcount
    db.session.commit()
    if claimed != 1:
        audit.record("mfa.authenticator_locked", outcome="failure", user_id=user_id, method=kind)
        raise Throttled("authenticator_locked", _("This sign-in method is blocked after too many wrong codes. "
                                                  "Use another method, or contact the city's support."))
    if not verify():
        return False
    db.session.execute(update(model).where(model.id == row_id).values({counter.key: 0}))
    db.session.commit()
    throttle.reset(f"otp:{kind}", str(user_id))
    return True
