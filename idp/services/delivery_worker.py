"""One background thread per process that delivers what the persistent queues hold (mail,
back-channel logout notices): new items at once, and every ``SWEEP_EVERY`` seconds whatever is due
for a retry. Each queue claims an item with a conditional UPDATE, so several processes can share
the work without sending anything twice."""
from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable
from datetime import timedelta

from flask import Flask, current_app
from sqlalchemy import update

from idp.extensions import db
from idp.models.types import utcnow

log = logging.getLogger("idp.delivery")
SWEEP_EVERY = 30.0
EXTENSION = "idp.delivery_worker"

# channel -> (deliver one item by id, deliver everything due)
CHANNELS: dict[str, tuple[Callable[[int], object], Callable[[], object]]] = {}


# Jobs run at every sweep after the queues; each decides for itself whether it is due.
PERIODIC: list[Callable[[], object]] = []


def register(channel: str, deliver_one: Callable[[int], object], deliver_due: Callable[[], object]) -> None:
    CHANNELS[channel] = (deliver_one, deliver_due)


def every_sweep(job: Callable[[], object]) -> None:
    """Run ``job`` (in an app context) at each sweep of every process's worker."""
    PERIODIC.append(job)


class _DeliveryThread:
    def __init__(self, app: Flask):
        self.app = app
        self.inbox: queue.Queue[tuple[str, int]] = queue.Queue()
        self.thread = threading.Thread(target=self._run, name="idp-delivery", daemon=True)
        self.thread.start()

    def _run(self) -> None:
        last_sweep = time.monotonic()
        while True:
            try:
                item = self.inbox.get(timeout=max(0.0, last_sweep + SWEEP_EVERY - time.monotonic()))
            except queue.Empty:
                item = None
            sweep = time.monotonic() >= last_sweep + SWEEP_EVERY  # also when items keep arriving
            try:
                with self.app.app_context():
                    if item is not None:
                        CHANNELS[item[0]][0](item[1])
                    if sweep:
                        last_sweep = time.monotonic()
                        for _, deliver_due in CHANNELS.values():
                            deliver_due()
                        for job in PERIODIC:
                            job()
                    db.session.remove()
            except Exception:  # keep the thread alive whatever happens; the sweep retries
                log.exception("delivery thread error")
            finally:
                if item is not None:
                    self.inbox.task_done()


# --- the bookkeeping every queue shares (rows with attempts, next_attempt_at, gave_up_at, last_error
# and a "done" time column: sent_at for mail, delivered_at for logout notices) ---------------------

def claim(model, item_id: int, done, lease: timedelta) -> bool:
    """Take a due item for this worker (one conditional UPDATE moves its next attempt on)."""
    now = utcnow()
    claimed = db.session.execute(update(model).where(
        model.id == item_id, done.is_(None), model.gave_up_at.is_(None), model.next_attempt_at <= now)
        .values(next_attempt_at=now + lease)).rowcount
    db.session.commit()
    return claimed == 1


def due(model, done, limit: int) -> list[int]:
    """Ids of the items due for an attempt, the longest waiting first."""
    return list(db.session.scalars(db.select(model.id).where(
        done.is_(None), model.gave_up_at.is_(None), model.next_attempt_at <= utcnow())
        .order_by(model.next_attempt_at).limit(limit)))


def record_outcome(row, done_attr: str, error: str, backoff: tuple[int, ...], what: str) -> bool:
    """Count an attempt: done, or rescheduled after the next pause, or given up after the last one.
    Commits; returns whether it was delivered."""
    row.attempts += 1
    if not error:
        setattr(row, done_attr, utcnow())
        row.next_attempt_at, row.last_error = None, ""
    else:
        row.last_error = error[:200]
        if row.attempts >= len(backoff):
            row.gave_up_at, row.next_attempt_at = utcnow(), None
            log.error("%s given up after %s attempts: %s", what, row.attempts, error)
        else:
            row.next_attempt_at = utcnow() + timedelta(seconds=backoff[row.attempts - 1])
            log.warning("%s failed (attempt %s), retrying later: %s", what, row.attempts, error)
    db.session.commit()
    return not error


def deliver_each(ids: list[int], deliver_one: Callable[[int], bool | None]) -> tuple[int, int]:
    """Attempt each item; returns (delivered, failed)."""
    outcomes = [deliver_one(item_id) for item_id in ids]
    return outcomes.count(True), outcomes.count(False)


_start_lock = threading.Lock()


def _thread(app: Flask) -> _DeliveryThread:
    worker = app.extensions.get(EXTENSION)
    if worker is None or not worker.thread.is_alive():
        with _start_lock:
            worker = app.extensions.get(EXTENSION)
            if worker is None or not worker.thread.is_alive():
                worker = app.extensions[EXTENSION] = _DeliveryThread(app)
    return worker


def start(app: Flask) -> None:
    """Start this process's worker now (a server does, at start): what waits in the queues from
    before a restart is retried, and the periodic jobs run, without waiting for new work."""
    _thread(app)


def wake(channel: str, item_id: int) -> None:
    """Deliver this stored item soon, in the background (the caller has committed it)."""
    _thread(current_app._get_current_object()).inbox.put((channel, item_id))  # noqa: SLF001


def wait_idle(app: Flask) -> None:
    """Block until this process has attempted every item queued so far (tests, shutdown)."""
    worker = app.extensions.get(EXTENSION)
    if worker is not None and worker.thread.is_alive():
        worker.inbox.join()
