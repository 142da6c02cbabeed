"""The background worker (idp/services/delivery_worker.py): a server starts it with the app, and it
sweeps (retries the queues, runs the periodic jobs) every SWEEP_EVERY seconds, even while new items
keep arriving."""
from __future__ import annotations

import threading
import time

import pytest
from flask import current_app

from idp.cli.serve import IdpGunicorn, gunicorn_options
from idp.services import delivery_worker
from tests.conftest import migrated_app


@pytest.fixture
def fresh_app(tmp_path, smtp_server):
    with migrated_app(tmp_path, smtp_server.port) as application:
        yield application


@pytest.fixture
def sweeps(monkeypatch):
    """The apps whose worker swept, once per sweep, at a fast pace."""
    monkeypatch.setattr(delivery_worker, "SWEEP_EVERY", 0.2)
    seen = []
    job = lambda: seen.append(current_app._get_current_object())  # noqa: E731, SLF001
    delivery_worker.every_sweep(job)
    yield seen
    delivery_worker.PERIODIC.remove(job)


def test_a_server_starts_the_worker_with_the_app(fresh_app, monkeypatch):
    created = []
    monkeypatch.setattr("idp.create_app", lambda settings: created.append(fresh_app) or fresh_app)
    server = IdpGunicorn(fresh_app.config["IDP_SETTINGS"], gunicorn_options("127.0.0.1", 0, 1, 1))
    assert server.load() is fresh_app and created
    worker = fresh_app.extensions[delivery_worker.EXTENSION]
    assert worker.thread.is_alive()  # without any mail sent first


def test_sweeps_go_on_while_items_keep_arriving(fresh_app, sweeps):
    delivery_worker.register("test-busy", lambda item_id: time.sleep(0.01), lambda: None)
    try:
        stop = threading.Event()

        def keep_busy():
            with fresh_app.app_context():
                while not stop.is_set():
                    delivery_worker.wake("test-busy", 1)
                    time.sleep(0.005)

        feeder = threading.Thread(target=keep_busy)
        feeder.start()
        time.sleep(1.5)
        stop.set()
        feeder.join()
        assert sweeps.count(fresh_app) >= 3  # about one every 0.2 s, although the inbox was never empty
    finally:
        delivery_worker.CHANNELS.pop("test-busy")
