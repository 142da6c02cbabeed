"""Checklist 115: deploy, clock and latency faults. An authorization transaction started on one
process is finished on a freshly started one (its state lives in the database and the shared store,
never in process memory), as in a rolling restart; a TOTP code from a device whose clock is off by
one step still works; a server whose own clock is 90 s off still accepts the right codes (checked
on the database's time) and raises the clock-skew alert. A database that accepts connections but
never answers still holds a request indefinitely instead of a prompt 503 (strict xfail)."""
from __future__ import annotations

from urllib.parse import urlencode

import pytest

from idp import create_app
from idp.extensions import db
from idp.models import TotpCredential, User
from idp.models.types import utcnow
from idp.services import totp
from tests.conftest import csrf_token, make_settings, migrated_app
from tests.support.mfa import post_form, totp_now
from tests.support.oidc import (
    PASSWORD,
    REDIRECT,
    authorize_params,
    exchange,
    make_client,
    make_user,
    pkce_pair,
    query_of,
)


@pytest.fixture
def deployment(tmp_path, smtp_server):
    with migrated_app(tmp_path, smtp_server.port) as first:
        try:
            yield first, tmp_path, smtp_server.port
        finally:
            first.extensions["idp.store"].flush()


def _restarted(first, tmp_path, smtp_port):
    """A new process of the same deployment: same database and store, nothing else shared."""
    app = create_app(make_settings(tmp_path / "next", first.config["IDP_SETTINGS"].database_url, smtp_port))
    app.extensions["idp.store"] = app.session_interface.store = first.extensions["idp.store"]
    return app


def _carry_cookies(source, app):
    browser = app.test_client()
    browser.set_cookie("idp_session", source.get_cookie("idp_session").value)
    return browser


def test_item_115_an_authorization_started_before_a_restart_finishes_after_it(deployment):
    first, tmp_path, smtp_port = deployment
    client_id, secret = make_client(first)
    make_user(first)
    verifier, challenge = pkce_pair()
    params = authorize_params(client_id, challenge)
    browser = first.test_client()
    to_login = browser.get("/authorize?" + urlencode(params))
    assert to_login.status_code == 302 and to_login.headers["Location"].startswith("/login")
    login_page = browser.get(to_login.headers["Location"]).get_data(as_text=True)

    second = _restarted(first, tmp_path, smtp_port)  # the first process is gone
    same = _carry_cookies(browser, second)
    signed_in = same.post(to_login.headers["Location"], data={
        "email": "resident@example.org", "password": PASSWORD, "csrf_token": csrf_token(login_page),
        "next": "/authorize?" + urlencode(params)})
    assert signed_in.status_code in (302, 303)
    consent = same.get(signed_in.headers["Location"])
    if consent.status_code == 200:
        consent = same.post("/authorize?" + urlencode(params), data={
            "decision": "allow", "csrf_token": csrf_token(consent.get_data(as_text=True))})
    assert consent.status_code == 302 and consent.headers["Location"].startswith(REDIRECT + "?")
    answer = query_of(consent.headers["Location"])
    assert answer["state"] == params["state"]
    third = _restarted(first, tmp_path / "3", smtp_port)  # and the code is redeemed at yet another one
    assert exchange(third.test_client(), client_id, secret, answer["code"], verifier).status_code == 200


def _with_totp(app):
    make_user(app)
    with app.app_context():
        user = db.session.scalar(db.select(User))
        secret = totp.begin_enrolment(user)
        db.session.scalar(db.select(TotpCredential)).confirmed_at = utcnow()
        db.session.commit()
    return secret


def _second_factor(app):
    browser = app.test_client()
    page = browser.get("/login")
    browser.post("/login", data={"email": "resident@example.org", "password": PASSWORD, "next": "/account/",
                                 "csrf_token": csrf_token(page.get_data(as_text=True))})
    return browser


def test_item_115_a_device_clock_one_step_off_still_signs_in(app):
    secret = _with_totp(app)
    browser = _second_factor(app)
    done = post_form(browser, "/login/second-factor/app", {"code": totp_now(secret, -1)})
    assert done.status_code == 303 and browser.get("/account/").status_code == 200


def test_item_115_a_server_clock_90_seconds_off_still_accepts_codes_and_alerts(app, monkeypatch):
    import time
    from types import SimpleNamespace

    from idp.models import AuditEvent
    from idp.services import clock

    secret = _with_totp(app)
    browser = _second_factor(app)
    fast = SimpleNamespace(time=lambda: time.time() + 90)  # NTP failed on this server: 90 s fast
    monkeypatch.setattr(totp, "time", fast)
    monkeypatch.setattr(clock, "time", SimpleNamespace(time=fast.time, monotonic=time.monotonic))
    app.extensions.pop("idp.clock", None)  # nothing measured yet on this "server"
    done = post_form(browser, "/login/second-factor/app", {"code": totp_now(secret)})  # the phone is right
    assert done.status_code == 303 and browser.get("/account/").status_code == 200
    with app.app_context():
        (alert,) = db.session.scalars(db.select(AuditEvent).where(AuditEvent.event == "clock.skew_detected"))
        assert alert.outcome == "alert" and 85 <= alert.detail["seconds"] <= 95
        clock.measure()  # measured again, still off: reported once
        assert db.session.scalar(db.select(db.func.count()).select_from(AuditEvent)
                                 .where(AuditEvent.event == "clock.skew_detected")) == 1
    app.extensions.pop("idp.clock", None)


def test_item_115_a_code_three_steps_off_the_shared_time_is_still_refused(app):
    secret = _with_totp(app)
    browser = _second_factor(app)
    done = post_form(browser, "/login/second-factor/app", {"code": totp_now(secret, -3)})
    assert done.status_code != 303 and browser.get("/account/").status_code != 200  # the window stays ±1 step


@pytest.mark.xfail(strict=True, reason="gap: no connect or statement timeout on PostgreSQL: a database that accepts "
                                       "connections but never answers holds the request instead of answering 503")
def test_item_115_a_database_that_never_answers_gets_a_503_not_a_hang(tmp_path, smtp_server):
    import socket
    import threading

    listener = socket.create_server(("127.0.0.1", 0))
    accepted = []
    threading.Thread(target=lambda: accepted.append(listener.accept()[0]), daemon=True).start()
    url = f"postgresql://postgres@127.0.0.1:{listener.getsockname()[1]}/idp"
    app = create_app(make_settings(tmp_path, url, smtp_server.port))
    answers = []
    request = threading.Thread(target=lambda: answers.append(app.test_client().get("/readyz").status_code),
                               daemon=True)
    request.start()
    request.join(10)  # a liveness bound, not a speed measurement
    in_time = list(answers)
    for connection in accepted:  # let a stuck request go
        connection.close()
    listener.close()
    request.join(10)
    assert in_time == [503]
