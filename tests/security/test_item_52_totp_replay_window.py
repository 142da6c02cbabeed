"""Checklist 52: TOTP replay and window. A code accepted once is refused everywhere after that (in
another browser, at step-up), and so is any code of the same or an earlier time step; one step of
drift is allowed either way and two are not; the accepted step is persisted; parallel submissions
of one code are accepted exactly once."""
from __future__ import annotations

import threading
import time
from types import SimpleNamespace

import pyotp
import pytest
from sqlalchemy import update

from idp.extensions import db
from idp.models import TotpCredential, User
from idp.services import DomainError, totp
from tests.integration.test_pages_account import signed_in_client
from tests.integration.test_signin_flows import login
from tests.support.mfa import enrol_totp, form_token, post_form

NOW = (int(time.time()) // 30) * 30 + 10  # well inside a step: no boundary mid-test


@pytest.fixture
def enrolled(app, monkeypatch):
    client, user_id = signed_in_client(app)
    secret, _ = enrol_totp(client)
    with app.app_context():
        db.session.execute(update(TotpCredential).values(last_used_step=0))
        db.session.commit()
    monkeypatch.setattr(totp, "time", SimpleNamespace(time=lambda: NOW))
    return client, user_id, pyotp.TOTP(secret)


def _code(generator, steps: int) -> str:
    return generator.at(NOW + 30 * steps)


def _sign_in(app, code: str) -> int:
    browser = app.test_client()
    login(browser)
    return browser.post("/login/second-factor/app",
                        data={"csrf_token": form_token(browser, "/login/second-factor/app"), "code": code}).status_code


def _last_step(app) -> int:
    with app.app_context():
        return db.session.scalar(db.select(TotpCredential.last_used_step))


def test_item_52_a_code_is_used_once_across_browsers_and_step_up(app, enrolled):
    client, _, generator = enrolled
    code = _code(generator, 0)
    assert _sign_in(app, code) == 303
    assert _last_step(app) == NOW // 30  # persisted
    assert _sign_in(app, code) == 400  # another browser, same code
    asked = post_form(client, "/account/security/app/remove", token_from="/account/security")
    assert client.get(asked.headers["Location"]).headers["Location"] == "/login/second-factor"
    replay = client.post("/login/second-factor/app",
                         data={"csrf_token": form_token(client, "/login/second-factor/app"), "code": code})
    assert replay.status_code == 400


def test_item_52_after_a_newer_step_older_codes_are_refused(app, enrolled):
    _, _, generator = enrolled
    assert _sign_in(app, _code(generator, 1)) == 303  # the next step: drift allowed
    assert _last_step(app) == NOW // 30 + 1
    assert _sign_in(app, _code(generator, 0)) == 400  # valid now, but older than the one used
    assert _sign_in(app, _code(generator, -1)) == 400


def test_item_52_two_or_more_steps_away_is_refused(app, enrolled):
    _, user_id, generator = enrolled
    for steps in (-2, 2, -3, 10):
        assert _sign_in(app, _code(generator, steps)) == 400, steps
    assert _last_step(app) == 0


def test_item_52_parallel_submissions_of_one_code_succeed_once(app, enrolled):
    _, user_id, generator = enrolled
    code = _code(generator, 0)
    tries = 8
    barrier = threading.Barrier(tries)
    outcomes = []

    def submit():
        with app.test_request_context():
            barrier.wait()
            try:
                outcomes.append(totp.verify(db.session.get(User, user_id), code))
            except DomainError as exc:
                outcomes.append(exc.code)
            finally:
                db.session.remove()

    threads = [threading.Thread(target=submit) for _ in range(tries)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert outcomes.count(True) == 1, outcomes
    assert _last_step(app) == NOW // 30
