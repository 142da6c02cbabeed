"""Checklist 27: Idle and absolute timeouts enforced by the server. A resident's session that was
not used for longer than IDP_SESSION_IDLE_MINUTES (30) and one older than
IDP_SESSION_LIFETIME_HOURS (12) however active it was must need a new sign-in (account pages send
to sign-in, prompt=none answers login_required); use within the idle limit keeps the session and
restarts the idle clock; whatever lifetime a tampered cookie claims changes nothing, because the
server decides from its own records. Time passes by editing the session's timestamps."""
from __future__ import annotations

from datetime import timedelta
from urllib.parse import urlencode

import pytest
from sqlalchemy import update

from idp.config import ConfigError, load_settings
from idp.extensions import db
from idp.models import UserSession
from idp.models.types import utcnow
from tests.support.oidc import REDIRECT, authorize_params, login, make_client, make_user, pkce_pair, query_of


def _session_row(app) -> UserSession:
    with app.app_context():
        row = db.session.scalar(db.select(UserSession))
        db.session.expunge(row)
        return row


def _shift(app, **values) -> None:
    with app.app_context():
        db.session.execute(update(UserSession).values(**values))
        db.session.commit()


def _prompt_none(http, client_id) -> str | None:
    _, challenge = pkce_pair()
    answer = http.get("/authorize?" + urlencode(authorize_params(client_id, challenge, prompt="none")))
    assert answer.status_code == 302 and answer.headers["Location"].startswith(REDIRECT)
    return query_of(answer.headers["Location"]).get("error")


def test_item_27_default_limits_are_30_minutes_idle_and_12_hours_absolute(app):
    settings = app.config["IDP_SETTINGS"]
    assert (settings.session_idle_minutes, settings.session_lifetime_hours) == (30, 12)
    make_user(app)
    http = app.test_client()
    login(http)
    row = _session_row(app)
    assert row.expires_at - row.created_at == timedelta(hours=12)


def test_item_27_an_idle_session_needs_a_new_sign_in(app):
    client_id, _ = make_client(app, first_party=True)
    make_user(app)
    http = app.test_client()
    login(http)
    _shift(app, last_seen_at=utcnow() - timedelta(minutes=31))
    response = http.get("/account/")
    assert response.status_code == 302 and response.headers["Location"].startswith("/login")
    assert _prompt_none(http, client_id) == "login_required"
    # Not revived by the request that found it idle either.
    assert http.get("/account/").status_code == 302


def test_item_27_use_within_the_idle_limit_keeps_the_session_and_restarts_the_clock(app):
    client_id, _ = make_client(app, first_party=True)
    make_user(app)
    http = app.test_client()
    login(http)
    _shift(app, last_seen_at=utcnow() - timedelta(minutes=29))
    assert http.get("/account/").status_code == 200
    assert utcnow() - _session_row(app).last_seen_at < timedelta(minutes=1)
    assert _prompt_none(http, client_id) is None  # a code, no error


def test_item_27_the_absolute_lifetime_ends_even_an_active_session(app):
    client_id, _ = make_client(app, first_party=True)
    make_user(app)
    http = app.test_client()
    login(http)
    before = _session_row(app)
    for _ in range(3):  # activity does not push the end back
        assert http.get("/account/").status_code == 200
    assert _session_row(app).expires_at == before.expires_at
    now = utcnow()
    _shift(app, created_at=now - timedelta(hours=12, seconds=1), auth_time=now - timedelta(hours=12, seconds=1),
           expires_at=now - timedelta(seconds=1), last_seen_at=now)
    assert http.get("/account/").status_code == 302
    assert _prompt_none(http, client_id) == "login_required"


def test_item_27_a_cookie_claiming_a_long_life_changes_nothing(app):
    make_user(app)
    http = app.test_client()
    login(http)
    sid = http.get_cookie("idp_session").value
    _shift(app, last_seen_at=utcnow() - timedelta(hours=2))
    browser = app.test_client()  # a browser told (by a tampered Set-Cookie) to keep the cookie for a year
    browser.set_cookie("idp_session", sid, max_age=365 * 86400, expires=utcnow() + timedelta(days=365))
    assert browser.get("/account/").status_code == 302
    assert browser.get("/account/security").status_code == 302


@pytest.mark.parametrize("raw", ["0", "4", "1441", "half an hour", "-30"])
def test_item_27_the_idle_limit_setting_is_validated(raw):
    with pytest.raises(ConfigError) as failure:
        load_settings({"IDP_SESSION_IDLE_MINUTES": raw, "IDP_INSTANCE_PATH": "/tmp/idp-item27",
                       "IDP_SECRET_KEY": "x" * 40})
    assert any(line.startswith("IDP_SESSION_IDLE_MINUTES:") for line in failure.value.problems)
    if len(raw) > 1:  # the value is never echoed ("0" and "4" occur in "between 5 and 1440")
        assert all(raw not in line for line in failure.value.problems)
