"""Shared fixtures: one migrated application per test session on SQLite (or PostgreSQL and
Redis when IDP_TEST_DATABASE_URL / IDP_TEST_REDIS_URL are set), a real SMTP server, and
clean tables and store between tests."""
from __future__ import annotations

import logging
import re
from contextlib import contextmanager
from functools import partial
from pathlib import Path

import pytest
from flask_migrate import upgrade
from sqlalchemy import text

from idp import create_app
from idp.config import load_settings
from idp.extensions import db
from idp.services import delivery_worker
from tests.support.browser import launch_chromium
from tests.support.canary import CANARY
from tests.support.databases import create_database, drop_database, redis_url
from tests.support.oidc import login, make_client, make_user
from tests.support.server import TEST_SECRET, IdpServer
from tests.support.sms_fixtures import sms_gateway  # noqa: F401  (a fixture for every test module)
from tests.support.smtp import SETTLE, SmtpServer

_handle = logging.Logger.handle


def _handle_and_watch(logger, record):
    """Every record any logger emits (whatever its handlers or propagation) reaches the canary."""
    CANARY.handle(record)
    return _handle(logger, record)


def pytest_configure(config):
    logging.Logger.handle = _handle_and_watch
    # Tests run the sweep's jobs themselves. A background sweep (a retention pass, say) landing in
    # the middle of a test would race it, and on PostgreSQL deadlock with the table emptying after it.
    delivery_worker.SWEEP_EVERY = 24 * 3600.0


def pytest_sessionfinish(session, exitstatus):
    """The canary run: no log line of the run and no answer may give a secret away."""
    logging.Logger.handle = _handle
    problems = CANARY.echoes + [f"log line: {line}" for line in CANARY.leaks()]
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    if reporter is not None:
        reporter.write_line(f"canary run: {len(CANARY.secrets) + len(CANARY.phrases)} secrets watched over "
                            f"{len(CANARY.lines)} log lines, {len(problems)} leaks")
        for problem in problems[:20]:
            reporter.write_line(f"  LEAK {problem}", red=True)
    if problems:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


@pytest.fixture(scope="session")
def smtp_server():
    server = SmtpServer().start()
    yield server
    server.stop()


def make_settings(tmp_dir, database_url: str, smtp_port: int, **overrides):
    env = {
        "IDP_ENV": "test",
        "IDP_ISSUER": "http://localhost",
        "IDP_SECRET_KEY": TEST_SECRET,
        "IDP_INSTANCE_PATH": str(tmp_dir / "instance"),
        "IDP_DATABASE_URL": database_url,
        "IDP_SMTP_HOST": "127.0.0.1",
        "IDP_SMTP_PORT": str(smtp_port),
        "IDP_SMTP_STARTTLS": "false",
        "IDP_BOT_CHALLENGE_BITS": "8",  # test clients solve it in Python: keep it quick
    }
    if redis_url(1):
        env["IDP_REDIS_URL"] = redis_url(1)
    env.update(overrides)
    return load_settings(env)


@contextmanager
def migrated_app(tmp_dir, smtp_port: int, prepare=None, **overrides):
    """An application on its own fresh, migrated database; ``prepare(app)`` may add test-only
    routes before the first request."""
    database_url = create_database(tmp_dir)
    application = create_app(make_settings(tmp_dir, database_url, smtp_port, **overrides))
    CANARY.wrap(application)
    settle = partial(delivery_worker.wait_idle, application)
    SETTLE.append(settle)
    if prepare is not None:
        prepare(application)
    with application.app_context():
        upgrade()
    try:
        yield application
    finally:
        SETTLE.remove(settle)
        with application.app_context():
            db.engine.dispose()
        drop_database(database_url)


# Tests empty the append-only audit trail too: with a permit that covers every event.
AUDIT_PURGE_PERMIT = "INSERT INTO audit_purge_permits (before) VALUES ('9999-12-31 00:00:00')"


def empty_tables(application) -> None:
    """Empty every table of ``application``'s database."""
    with application.app_context():
        db.session.remove()
        tables = [t.name for t in reversed(db.metadata.sorted_tables)]
        tables.sort(key=lambda name: name != "audit_events")  # while the permit is there
        with db.engine.begin() as conn:
            conn.execute(text(AUDIT_PURGE_PERMIT))
            if conn.dialect.name == "postgresql":
                conn.execute(text("TRUNCATE " + ", ".join(f'"{t}"' for t in tables) + " RESTART IDENTITY CASCADE"))
            else:
                for table in tables:
                    conn.execute(text(f'DELETE FROM "{table}"'))


def empty_tables_and_store(application) -> None:
    """Empty a test module's own application (its store and every table) after a test."""
    application.extensions["idp.store"].flush()
    empty_tables(application)


@pytest.fixture(scope="session")
def app(tmp_path_factory, smtp_server):
    with migrated_app(tmp_path_factory.mktemp("app"), smtp_server.port) as application:
        yield application


@pytest.fixture(autouse=True)
def _clean_state(request, smtp_server):
    """Every test starts with empty tables, an empty store and no mail."""
    application = request.getfixturevalue("app") if "app" in request.fixturenames else None
    if application is not None and "idp.store" not in application.extensions:
        application = None  # a test module's own "app" (a department app, say)
    yield
    if application is not None:  # mail still being delivered belongs to this test
        delivery_worker.wait_idle(application)
    smtp_server.clear()
    if application is None:
        return
    empty_tables(application)
    with application.app_context():
        application.extensions["idp.store"].flush()
        outbox = application.config["IDP_SETTINGS"].sms_outbox_dir  # texts of this test stay in it
        for path in Path(outbox).glob("*") if outbox else ():
            path.unlink()
        application.extensions.pop("idp.key_cache", None)
        application.extensions["idp.client_cache"].clear()


@pytest.fixture
def ctx(app):
    with app.app_context():
        yield app


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def rp(app, client):
    """A confidential client (client_id, secret) and the resident signed in on ``client``."""
    client_id, secret = make_client(app)
    make_user(app)
    login(client)
    return client_id, secret


CSRF_RE = re.compile(r'name="csrf_token"[^>]*value="([^"]+)"')


def page_without_tokens(response) -> str:
    """A response's HTML with CSRF token values blanked, for comparing two answers that must look alike.

    Tokens carry a timestamp, so two otherwise identical pages differ when rendered in different seconds.
    """
    return blank_tokens(response.get_data(as_text=True))


def blank_tokens(html: str) -> str:
    """HTML with the CSRF token values (form fields and the meta tag for scripts) and the sign-in
    page's bot-challenge puzzle blanked."""
    html = CSRF_RE.sub('name="csrf_token" value=""', html)
    html = re.sub(r'data-bot-puzzle="[^"]*"( id="bot_challenge" name="bot_challenge" type="hidden") value="[^"]*"',
                  r'data-bot-puzzle=""\1 value=""', html)
    return re.sub(r'<meta name="csrf-token" content="[^"]*">', '<meta name="csrf-token" content="">', html)


def csrf_token(html: str) -> str:
    """The CSRF token in a rendered form."""
    match = CSRF_RE.search(html)
    assert match, "the page has no CSRF token"
    return match.group(1)


@pytest.fixture
def idp_server(tmp_path, smtp_server):
    """A running ``idp serve`` with its own fresh database."""
    server = IdpServer(tmp_path, smtp_port=smtp_server.port).start()
    yield server
    server.stop()


@pytest.fixture
def page():
    """A page in a real headless Chromium (Debian's package, driven by Playwright)."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = launch_chromium(playwright)
        context = browser.new_context()
        yield context.new_page()
        context.close()
        browser.close()
