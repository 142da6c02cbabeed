"""Timing adjustable (WCAG 2.2.1): a signed-in page carries the warning shown before an idle
sign-out, and "Stay signed in" restarts the idle clock, as a script call or a plain form."""
from __future__ import annotations

import re
from datetime import timedelta

from sqlalchemy import update

from idp.extensions import db
from idp.models import UserSession
from idp.models.types import utcnow
from tests.conftest import csrf_token
from tests.integration.test_pages_account import signed_in_client


def idle_for(app, minutes: int) -> None:
    with app.app_context():
        db.session.execute(update(UserSession).values(last_seen_at=utcnow() - timedelta(minutes=minutes)))
        db.session.commit()


def last_seen(app):
    with app.app_context():
        return db.session.scalar(db.select(UserSession.last_seen_at))


def warning_form(html: str) -> dict:
    box = re.search(r'<div id="idle-warning".*?</div>', html, re.S)[0]
    assert "hidden" in box.split(">", 1)[0] and 'data-idle-seconds="1800"' in box and 'role="alertdialog"' in box
    return {"csrf_token": csrf_token(box), "next": re.search(r'name="next" value="([^"]*)"', box)[1]}


def test_signed_in_pages_carry_the_warning_and_anonymous_ones_do_not(app, client):
    assert 'id="idle-warning"' not in client.get("/login").get_data(as_text=True)
    resident, _ = signed_in_client(app)
    html = resident.get("/account/name?x=1").get_data(as_text=True)
    assert warning_form(html)["next"] == "/account/name?x=1"
    assert re.search(r'<script src="/static/idle\.js\?v=[0-9a-f]{12}" defer></script>', html)
    assert "minutes without activity" in html and "30 minutes" in html


def test_staying_signed_in_restarts_the_idle_clock(app):
    resident, _ = signed_in_client(app)
    form = warning_form(resident.get("/account/").get_data(as_text=True))
    idle_for(app, 28)
    answer = resident.post("/account/keep-signed-in", data=form, headers={"X-Requested-With": "fetch"})
    assert answer.status_code == 204
    assert utcnow() - last_seen(app) < timedelta(minutes=1)
    idle_for(app, 29)
    assert resident.get("/account/").status_code == 200  # still inside the limit
    idle_for(app, 28)
    plain = resident.post("/account/keep-signed-in", data={**form, "next": "/account/name"})
    assert plain.status_code == 303 and plain.headers["Location"] == "/account/name"
    assert utcnow() - last_seen(app) < timedelta(minutes=1)
    elsewhere = resident.post("/account/keep-signed-in", data={**form, "next": "https://evil.example/"})
    assert elsewhere.status_code == 303 and elsewhere.headers["Location"] == "/account/"


def test_staying_signed_in_needs_the_token_and_a_live_session(app):
    resident, _ = signed_in_client(app)
    form = warning_form(resident.get("/account/").get_data(as_text=True))
    assert resident.post("/account/keep-signed-in", data={"next": "/account/"}).status_code == 403
    idle_for(app, 31)
    late = resident.post("/account/keep-signed-in", data=form, headers={"X-Requested-With": "fetch"})
    assert late.status_code == 302 and "/login" in late.headers["Location"]
