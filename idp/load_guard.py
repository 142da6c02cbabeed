"""Bounded answers when the database is slow (checklist 115).

- **A time budget per request.** Once ``IDP_REQUEST_DEADLINE`` seconds have passed, a request makes
  no further database call: it answers 503 with ``Retry-After``, its transaction rolled back. A
  database that answers slowly (each statement well inside its own timeout) then bounds every
  answer's time and frees the worker thread, instead of a sign-in taking minutes.
- **One thread kept free.** Under ``idp serve`` at most ``threads - 1`` requests of a worker do
  work at once. A request that finds them all busy waits for one, as in any queue, while they turn
  over; but when most of them have been at work for ``STUCK_AFTER`` seconds (the database or
  another backend is slow), or after ``QUEUE_WAIT`` seconds, it answers 503 at once instead. The
  health and metrics endpoints and static files need no slot, so liveness and readiness probes keep
  being answered while the other requests wait on a slow database.
"""
from __future__ import annotations

import threading
import time

from flask import Flask, current_app, g, has_request_context, request
from sqlalchemy import event
from sqlalchemy.engine import Engine

from idp.store import StoreUnavailable

QUEUE_WAIT = 5.0  # at most, seconds a request waits for a working slot
STUCK_AFTER = 2.0  # seconds at work after which the slots' holders count as stuck on a backend
_EXEMPT = ("ops.", "static")  # endpoints that need no slot: probes, metrics, files
_DEADLINE = "idp_deadline"
_SLOT = "idp_slot"


class DeadlineExceeded(StoreUnavailable):
    """The request used up its time budget; it answers 503 rather than wait on the database more."""


class Overloaded(StoreUnavailable):
    """Every working slot of this worker is busy, held by requests stuck on a slow backend."""


class _Slots:
    """``size`` working slots, and when each holder took its slot."""

    def __init__(self, size: int):
        self.free = threading.BoundedSemaphore(size)
        self.lock = threading.Lock()
        self.started: dict[int, float] = {}  # thread serving the holding request -> when it took the slot

    def take(self, key: int) -> None:
        """Take a slot for the request served by thread ``key``, or raise Overloaded (see above)."""
        give_up = time.monotonic() + QUEUE_WAIT
        while not self.free.acquire(timeout=0.05):
            now = time.monotonic()
            with self.lock:
                ages = sorted(now - started for started in self.started.values())
            if now > give_up or (ages and ages[len(ages) // 2] > STUCK_AFTER):
                raise Overloaded("every working thread is busy")
        with self.lock:
            self.started[key] = time.monotonic()

    def give_back(self, key: int) -> None:
        with self.lock:
            del self.started[key]
        self.free.release()


def init_app(app: Flask) -> None:
    """Start each request's time budget (before every other hook)."""
    app.before_request_funcs.setdefault(None, []).insert(0, _start_budget)
    app.teardown_request(_release_slot)


def keep_one_thread_free(app: Flask, threads: int) -> None:
    """Under a server with ``threads`` threads per worker: let at most ``threads - 1`` requests work."""
    if threads > 1:
        app.extensions["idp.slots"] = _Slots(threads - 1)


def lift_deadline() -> None:
    """Let the error page itself be rendered after the budget ran out."""
    g.pop(_DEADLINE, None)


def _start_budget() -> None:
    slots = current_app.extensions.get("idp.slots")
    if slots is not None and not (request.endpoint or "").startswith(_EXEMPT):
        slots.take(threading.get_ident())
        setattr(g, _SLOT, slots)
    setattr(g, _DEADLINE, time.monotonic() + current_app.config["IDP_SETTINGS"].request_deadline)


def _release_slot(_exc=None) -> None:
    slots = g.pop(_SLOT, None)
    if slots is not None:
        slots.give_back(threading.get_ident())


@event.listens_for(Engine, "before_cursor_execute")
def _check_budget(*_args) -> None:
    if has_request_context():
        deadline = g.get(_DEADLINE)
        if deadline is not None and time.monotonic() > deadline:
            raise DeadlineExceeded("the request's time budget ran out")
