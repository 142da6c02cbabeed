"""Checklist 110: Redis down. With the store (sessions, throttling counters, one-time challenges)
stopped mid-traffic, password sign-in, the TOTP step and passkey verification answer a clean 503
with Retry-After: never a sign-in without the challenge and replay checks, never guessing without
the limiter (it fails closed), no stack trace; everything works again when Redis returns, without a
restart; a lockout kept in the database survives the store's loss."""
from __future__ import annotations

import shutil
import subprocess
import time

import pytest
import redis

from idp.extensions import db
from idp.models import TotpCredential, User
from idp.models.types import utcnow
from idp.services import accounts, totp
from tests.conftest import csrf_token, migrated_app
from tests.support.bot_challenge import answered
from tests.support.mfa import totp_now
from tests.support.smtp import free_port

EMAIL, PASSWORD = "redis-down@example.org", "a long enough resident passphrase"


class RedisProcess:
    """A redis-server of the test's own (no persistence: a restart loses everything, like a failover)."""

    def __init__(self):
        self.binary = shutil.which("redis-server")
        self.port = free_port()
        self.process = None

    def start(self):
        self.process = subprocess.Popen([self.binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
                                         "--appendonly", "no"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                if redis.Redis(port=self.port, socket_timeout=0.5).ping():
                    return self
            except redis.ConnectionError:
                time.sleep(0.05)
        raise AssertionError("redis-server did not start")

    def stop(self):
        if self.process and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=10)


@pytest.fixture(scope="module")
def store_and_app(tmp_path_factory, smtp_server):
    store = RedisProcess()
    if store.binary is None:
        pytest.skip("redis-server is not installed")
    store.start()
    try:
        with migrated_app(tmp_path_factory.mktemp("redis-down"), smtp_server.port,
                          IDP_REDIS_URL=f"redis://127.0.0.1:{store.port}/0") as app:
            with app.app_context():
                user = accounts.create_user(EMAIL, PASSWORD, name="Redis Down", email_verified=True)
                secret = totp.begin_enrolment(user)
                db.session.scalar(db.select(TotpCredential)).confirmed_at = utcnow()
                db.session.commit()
            yield store, app, secret
    finally:
        store.stop()


def _login(browser, password=PASSWORD):
    """A sign-in; while the page can be had, its bot challenge is answered as the page's script would."""
    page = browser.get("/login")
    fields = {"csrf_token": "x"}
    if page.status_code == 200:
        html = page.get_data(as_text=True)
        fields = {"csrf_token": csrf_token(html), **answered(html)}
    return browser.post("/login", data={"email": EMAIL, "password": password, "next": "/account/", **fields})


def _clean_503(response):
    html = response.get_data(as_text=True)
    assert response.status_code == 503, response.status_code
    assert response.headers.get("Retry-After")
    assert "Traceback" not in html and "redis" not in html.lower() and "ConnectionError" not in html


def _last_step(app) -> int:
    with app.app_context():
        return db.session.scalar(db.select(TotpCredential.last_used_step))


def test_item_110_store_down_mid_sign_in_gives_503_never_a_sign_in(store_and_app):
    store, app, secret = store_and_app
    browser = app.test_client()
    assert _login(browser).headers["Location"] == "/login/second-factor"
    page = browser.get("/login/second-factor/app").get_data(as_text=True)
    token = csrf_token(page)
    step_before = _last_step(app)
    other = app.test_client()  # a sign-in page opened before the outage
    login_token = csrf_token(other.get("/login").get_data(as_text=True))

    store.stop()
    try:
        # The TOTP step: the challenge lives in the store, so no code is checked or consumed.
        code = browser.post("/login/second-factor/app", data={"csrf_token": token, "code": totp_now(secret)})
        _clean_503(code)
        assert _last_step(app) == step_before
        # Password sign-in (right and wrong): never answered without the limiter and the session.
        _clean_503(app.test_client().get("/login"))
        for password in [PASSWORD] + ["wrong guess " + "x" * 10] * (app.config["IDP_SETTINGS"].login_max_failures + 3):
            _clean_503(other.post("/login", data={"email": EMAIL, "password": password, "next": "/account/",
                                                  "csrf_token": login_token}))
        # Passkey verification needs its single-use challenge: refused, not verified without it.
        options = other.post("/login/passkey/options?mode=passwordless", headers={"X-CSRFToken": "x"})
        assert options.status_code in (403, 503) and b"challenge" not in options.data
        assertion = other.post("/login/passkey", json={"credential": {"id": "AAAA", "type": "public-key"}},
                               headers={"X-CSRFToken": "x"})
        assert assertion.status_code in (403, 503)
        # Protected pages are never served anonymously meanwhile.
        assert browser.get("/account/").status_code == 503
    finally:
        store.start()

    # Redis is back (empty): the same process serves again without a restart; the sign-in starts over.
    again = app.test_client()
    assert _login(again).headers["Location"] == "/login/second-factor"
    page = again.get("/login/second-factor/app").get_data(as_text=True)
    done = again.post("/login/second-factor/app", data={"csrf_token": csrf_token(page), "code": totp_now(secret, 1)})
    assert done.status_code == 303 and again.get("/account/").status_code == 200


def test_item_110_a_database_lock_survives_the_loss_of_the_store(store_and_app):
    store, app, _ = store_and_app
    with app.app_context():
        user = db.session.scalar(db.select(User).where(User.email == EMAIL))
        user.status, user.lock_reason = "locked", "self_reported"
        db.session.commit()
    try:
        store.stop()
        store.start()  # every counter and session in the store is gone
        response = _login(app.test_client())
        assert response.status_code in (200, 400, 401, 403) and "Location" not in response.headers
    finally:
        with app.app_context():
            user = db.session.scalar(db.select(User).where(User.email == EMAIL))
            user.status, user.lock_reason = "active", None
            db.session.commit()


def test_item_110_password_lockout_survives_a_store_restart(store_and_app):
    store, app, _ = store_and_app
    browser = app.test_client()
    for _ in range(app.config["IDP_SETTINGS"].login_max_failures + 1):
        _login(browser, password="wrong guess " + "x" * 10)
    assert _login(app.test_client()).status_code == 429  # locked now
    store.stop()
    store.start()
    locked = _login(app.test_client())
    assert locked.status_code == 429 and "Location" not in locked.headers
