"""The time second factors count by (checklist 115): this server's clock, corrected by its measured
offset from the database's clock when the two disagree by IGNORED_BELOW seconds or more. Every
instance shares the database, so one whose NTP failed still checks authenticator-app codes against
the same time as the others, instead of refusing them all once it is a step (30 s) off. An offset
of ALERT_FROM seconds or more is reported once: audit event clock.skew_detected (the IdpClockSkew
alert) and a log warning. Measured at most every MEASURE_EVERY seconds per process, and at each
sweep of the background worker."""
from __future__ import annotations

import logging
import threading
import time

from flask import current_app
from sqlalchemy import text

from idp.extensions import db
from idp.services import audit, delivery_worker

MEASURE_EVERY = 300
IGNORED_BELOW = 2.0  # seconds of round trip and rounding that are no skew
ALERT_FROM = 30.0  # one TOTP step
_DATABASE_NOW = {
    "postgresql": "SELECT extract(epoch FROM clock_timestamp())",
    "sqlite": "SELECT (julianday('now') - 2440587.5) * 86400.0",
}

log = logging.getLogger(__name__)
_lock = threading.Lock()


def _state() -> dict:
    return current_app.extensions.setdefault("idp.clock", {"measured_at": None, "skew": 0.0, "alerted": False})


def measure() -> float:
    """Measure the offset now (database minus this server, seconds; 0 below IGNORED_BELOW), report a
    new skew from ALERT_FROM, and keep it for :func:`skew`."""
    query = _DATABASE_NOW.get(db.engine.dialect.name)
    if query is None:
        return 0.0
    before = time.time()
    database_now = float(db.session.execute(text(query)).scalar_one())
    after = time.time()
    offset = database_now - (before + after) / 2
    offset = offset if abs(offset) >= IGNORED_BELOW else 0.0
    state = _state()
    with _lock:
        state.update(measured_at=time.monotonic(), skew=offset)
        newly_skewed = abs(offset) >= ALERT_FROM and not state["alerted"]
        state["alerted"] = abs(offset) >= ALERT_FROM
    if newly_skewed:
        log.warning("this server's clock is %+.0f s off the database's: fix its time sync (NTP)", -offset)
        audit.record("clock.skew_detected", outcome="alert", seconds=round(-offset))
    return offset


def skew() -> float:
    """The last measured offset to add to this server's time (measured again when stale)."""
    state = _state()
    if state["measured_at"] is None or time.monotonic() - state["measured_at"] > MEASURE_EVERY:
        return measure()
    return state["skew"]


delivery_worker.every_sweep(skew)
