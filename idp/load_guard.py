"""Bounded answers when the database is slow (checklist 115).

- **A time budget per request.** Once ``IDP_REQUEST_DEADLINE`` seconds have passed, a request makes
  no further database call: it answers 503 with ``Retry-After``, its transaction rolled back. A
  database that answers slowly (each statement well inside its own timeout) then bounds every
  answer's time and frees the worker thread, instead of a sign-in taking minutes.
- **One thread kept free.** Under ``idp serve`` at most ``threads - 1`` requests of a worker do
  work at once. A request that finds them all busy waits at most ``QUEUE_WAIT`` seconds for one,
  then answers 503. The health and metrics endpoints and static files need no slot, so liveness
  and readiness probes keep being answered while the others wait on a slow database.
"""
from __future__ import annotations

import threading
import time

from flask import Flask, current_app, g, has_request_context, request
from sqlalchemy import event
from sqlalchemy.engine import Engine

from idp.store import StoreUnavailable

QUEUE_WAIT = 0.5  # seconds a request waits for a free slot: a normal burst clears much sooner
_EXEMPT = ("ops.", "static")  # endpoints that need no slot: probes, metrics, files
_DEADLINE = "idp_deadline"
_SLOT = "idp_slot"


class DeadlineExceeded(StoreUnavailable):
    """The request used up its time budget; it answers 503 rather than wait on the database more."""


class Overloaded(StoreUnavailable):
    """Every working slot of this worker stayed busy for QUEUE_WAIT seconds."""


def init_app(app: Flask) -> None:
    """Start each request's time budget (before every other hook)."""
    app.before_request_funcs.setdefault(None, []).insert(0, _start_budget)
    app.teardown_request(_release_slot)


def keep_one_thread_free(app: Flask, threads: int) -> None:
    """Under a server with ``threads`` threads per worker: let at most ``threads - 1`` requests work."""
    if threads > 1:
        app.extensions["idp.slots"] = threading.BoundedSemaphore(threads - 1)


def lift_deadline() -> None:
    """Let the error page itself be rendered after the budget ran out."""
    g.pop(_DEADLINE, None)


def _start_budget() -> None:
    slots = current_app.extensions.get("idp.slots")
    if slots is not None and not (request.endpoint or "").startswith(_EXEMPT):
        if not slots.acquire(timeout=QUEUE_WAIT):
            raise Overloaded("every working thread is busy")
        setattr(g, _SLOT, slots)
    setattr(g, _DEADLINE, time.monotonic() + current_app.config["IDP_SETTINGS"].request_deadline)


def _release_slot(_exc=None) -> None:
    slots = g.pop(_SLOT, None)
    if slots is not None:
        slots.release()


@event.listens_for(Engine, "before_cursor_execute")
def _check_budget(*_args) -> None:
    if has_request_context():
        deadline = g.get(_DEADLINE)
        if deadline is not None and time.monotonic() > deadline:
            raise DeadlineExceeded("the request's time budget ran out")
