"""The load guard (idp/load_guard.py, checklist 115): a request that used up its time budget makes no
further database call and answers 503 with its transaction rolled back; under ``idp serve`` one
thread of each worker is kept free: a request waits for a working slot while they turn over, and
answers 503 once their holders are stuck, while health checks are still answered."""
from __future__ import annotations

import threading
import time

import pytest
from sqlalchemy import insert

from idp import load_guard
from idp.extensions import db
from idp.models import AuditEvent
from idp.models.types import utcnow
from tests.conftest import migrated_app

RELEASE = threading.Event()


def _routes(application):
    @application.get("/test/slow-writer")
    def slow_writer():
        db.session.execute(insert(AuditEvent).values(at=utcnow(), event="test.first_write", outcome="success",
                                                     detail={}))
        time.sleep(1.2)  # the budget (1 s in these tests) runs out here
        db.session.execute(insert(AuditEvent).values(at=utcnow(), event="test.second_write", outcome="success",
                                                     detail={}))
        db.session.commit()
        return "both written"

    @application.get("/test/slow-then-audited")
    def slow_then_audited():
        time.sleep(1.2)
        from idp.services import audit

        audit.record("test.after_the_budget")
        return "recorded"

    @application.get("/test/held")
    def held():
        RELEASE.wait(30)
        return "done"


@pytest.fixture
def guarded(tmp_path, smtp_server):
    with migrated_app(tmp_path, smtp_server.port, _routes) as application:
        application.config["IDP_SETTINGS"].request_deadline = 1  # below the allowed minimum, to keep tests short
        yield application


def test_a_request_past_its_time_budget_answers_503_and_keeps_nothing(guarded):
    answer = guarded.test_client().get("/test/slow-writer")
    assert answer.status_code == 503 and answer.headers["Retry-After"] == "30"
    assert "temporarily unavailable" in answer.get_data(as_text=True).lower()
    with guarded.app_context():  # the first write went with the rolled-back transaction
        assert db.session.scalar(db.select(db.func.count()).select_from(AuditEvent)
                                 .where(AuditEvent.event.like("test.%"))) == 0
    assert guarded.test_client().get("/login").status_code == 200  # the next request has its own budget


def test_with_every_working_slot_stuck_a_request_answers_503_and_probes_still_answer(guarded):
    load_guard.keep_one_thread_free(guarded, threads=2)  # as under idp serve --threads 2: one slot
    RELEASE.clear()
    answers = []
    busy = threading.Thread(target=lambda: answers.append(guarded.test_client().get("/test/held").status_code))
    busy.start()
    try:
        deadline = time.monotonic() + 10
        while not guarded.extensions["idp.slots"].started and time.monotonic() < deadline:
            time.sleep(0.01)  # until the held request has the slot
        shed = guarded.test_client().get("/login")  # refused once the holder counts as stuck
        assert shed.status_code == 503 and shed.headers["Retry-After"] == "30"
        assert guarded.test_client().get("/healthz").status_code == 200
        assert guarded.test_client().get("/readyz").status_code == 200
    finally:
        RELEASE.set()
        busy.join(30)
    assert answers == [200]
    assert guarded.test_client().get("/login").status_code == 200  # the slot came back


def test_a_burst_of_quick_requests_waits_for_the_slots_instead_of_being_refused(guarded):
    load_guard.keep_one_thread_free(guarded, threads=3)  # two working slots for twelve at once
    answers = []

    def visit():
        answers.append(guarded.test_client().get("/login").status_code)

    visitors = [threading.Thread(target=visit) for _ in range(12)]
    for visitor in visitors:
        visitor.start()
    for visitor in visitors:
        visitor.join(60)
    assert answers == [200] * 12


def test_an_audit_event_cut_off_by_the_budget_is_logged_not_lost(guarded, caplog):
    with caplog.at_level("ERROR", logger="idp.audit"):
        answer = guarded.test_client().get("/test/slow-then-audited")
    assert answer.status_code == 503
    assert any("event=test.after_the_budget" in r.getMessage() and "NOT STORED" in r.getMessage()
               for r in caplog.records)
