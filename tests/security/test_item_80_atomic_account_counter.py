"""Checklist 80: atomic per-account counter under concurrency. 200 wrong-password sign-ins for one
account arrive at once at a real ``idp serve`` (gunicorn threads; two workers sharing Redis when
it is configured): every one is counted (the counter ends at exactly 200), throttling engages at
IDP_LOGIN_MAX_FAILURES, no request past the threshold is checked against the password (exactly
that many password checks are audited), the right password is then refused too, and the hard cap
cannot be configured above 100."""
from __future__ import annotations

import hashlib
import re
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests
from sqlalchemy import create_engine, text

from idp.config import ConfigError, load_settings
from tests.support.bot_challenge import answered
from tests.support.server import IdpServer

EMAIL = "stuffed@example.org"
PASSWORD = "a long enough resident passphrase"
PARALLEL = 200
LIMIT = 10  # IDP_LOGIN_MAX_FAILURES, the default
CSRF = re.compile(r'name="csrf_token"[^>]*value="([^"]+)"')


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    from tests.support.databases import redis_url

    workers = 2 if redis_url(2) else 1
    started = IdpServer(tmp_path_factory.mktemp("item80"), workers=workers,
                        extra_env={"IDP_LOGIN_MAX_FAILURES": str(LIMIT), "IDP_BOT_CHALLENGE_BITS": "8"}).start()
    _create_resident(started)
    yield started
    started.stop()


def _create_resident(server: IdpServer) -> None:
    """The resident, created in-process against the server's database (quicker than the CLI)."""
    from idp import create_app
    from idp.extensions import db
    from idp.services import accounts

    env = {k: v for k, v in server.env.items() if k.startswith("IDP_")}
    application = create_app(load_settings(env))
    with application.app_context():
        accounts.create_user(EMAIL, PASSWORD, name="Sipho Khumalo", email_verified=True)
        db.engine.dispose()


def _ready_form(url: str, http: requests.Session | None = None) -> tuple[requests.Session, dict]:
    """A sign-in page loaded in ``http`` (a new browser by default): its CSRF token and its bot
    challenge answered (the attacker solves it: the counter is what is tested here)."""
    http = http or requests.Session()
    page = http.get(url + "/login", timeout=30)
    return http, {"csrf_token": CSRF.search(page.text).group(1), **answered(page.text)}


def _sign_in(url: str, http: requests.Session, fields: dict, password: str) -> int:
    return http.post(url + "/login", data={**fields, "email": EMAIL, "password": password, "next": ""},
                     allow_redirects=False, timeout=60).status_code


def _audited(server: IdpServer) -> dict[str, int]:
    engine = create_engine(server.database_url.replace("postgresql://", "postgresql+psycopg://", 1))
    try:
        with engine.connect() as conn:
            rows = conn.execute(text("SELECT detail FROM audit_events WHERE event = 'signin.failure'")).all()
    finally:
        engine.dispose()
    import json

    reasons: dict[str, int] = {}
    for (detail,) in rows:
        detail = json.loads(detail) if isinstance(detail, str) else detail
        reasons[detail.get("reason")] = reasons.get(detail.get("reason"), 0) + 1
    return reasons


def test_item_80_parallel_wrong_passwords_are_all_counted_and_few_are_checked(server):
    # A few browsers, each sending many sign-ins at once (the session only carries the CSRF token).
    browsers = [_ready_form(server.url)[0] for _ in range(8)]  # each with its session before the rush
    with ThreadPoolExecutor(max_workers=8) as pool:  # each sign-in with a page (and puzzle) of its own
        forms = list(pool.map(lambda n: _ready_form(server.url, browsers[n % len(browsers)]), range(PARALLEL)))
    barrier = threading.Barrier(32)

    def attack(form):
        try:
            barrier.wait(timeout=5)
        except threading.BrokenBarrierError:
            pass
        return _sign_in(server.url, *form, "wrong password, guess number n")

    with ThreadPoolExecutor(max_workers=32) as pool:
        statuses = list(pool.map(attack, forms))

    assert 500 not in statuses and set(statuses) <= {401, 429}, statuses
    # The LIMIT-th failure already answers 429; everything after it too.
    assert statuses.count(401) == LIMIT - 1
    assert statuses.count(429) == PARALLEL - (LIMIT - 1)
    reasons = _audited(server)
    # Only LIMIT requests ever reached the password check; the rest were refused before it.
    assert reasons.get("bad_password") == LIMIT
    assert reasons.get("throttled") == PARALLEL - LIMIT
    redis = server.env.get("IDP_REDIS_URL")
    if redis:
        from idp.store import make_store

        key = "throttle:login-account:" + hashlib.sha256(EMAIL.encode()).hexdigest()[:32]
        assert int(make_store(redis).get(key)) == PARALLEL  # the server's own store, read directly

    # The right password is not checked either while the account is throttled.
    assert _sign_in(server.url, *_ready_form(server.url), PASSWORD) == 429
    assert _audited(server).get("bad_password") == LIMIT


@pytest.mark.parametrize("value", ["101", "1000", "0", "2"])
def test_item_80_the_failure_limit_is_capped_at_100(value):
    with pytest.raises(ConfigError) as refused:
        load_settings({"IDP_ENV": "test", "IDP_LOGIN_MAX_FAILURES": value, "IDP_SECRET_KEY": "k" * 40})
    assert any(line.startswith("IDP_LOGIN_MAX_FAILURES:") for line in refused.value.problems)
