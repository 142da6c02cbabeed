"""Checklist 59: SMS pumping and bombing. Texts are limited per number, per account (across many
numbers), per client address and by a city-wide daily budget; a refusal is a 429 with
Retry-After; staff are alerted when half the daily budget is spent; numbers of other countries,
premium-rate and fixed-line numbers are refused before anything is sent."""
from __future__ import annotations

from pathlib import Path

import pytest

from idp.extensions import db
from idp.models import AuditEvent
from tests.integration.test_pages_account import signed_in_client
from tests.integration.test_signin_flows import login, make_user
from tests.support.mfa import clear_texts, post_form, texted_codes


def _add(client, number):
    return post_form(client, "/account/security/phone", {"phone": number})


def _texts(app) -> int:
    outbox = Path(app.config["IDP_SETTINGS"].sms_outbox_dir)
    return len(list(outbox.iterdir())) if outbox.exists() else 0


@pytest.fixture
def client(app):
    clear_texts(app)
    browser, _ = signed_in_client(app)
    return browser


def test_item_59_foreign_premium_and_fixed_numbers_are_refused_unsent(app, client):
    for number in ("+44 7911 123456", "+1 202 555 0143", "+234 803 123 4567",
                   "+27 86 123 4567",  # South African premium-rate/share-call range
                   "+27 21 400 1111",  # Cape Town fixed line
                   "0900 123 456"):
        assert _add(client, number).status_code == 400, number
    assert _texts(app) == 0


def test_item_59_sends_per_account_are_limited_across_numbers(app, client, monkeypatch):
    limit = app.config["IDP_SETTINGS"].sms_max_per_account
    statuses = [_add(client, f"+27 82 777 {i:04d}") for i in range(limit + 1)]
    assert [r.status_code for r in statuses[:limit]] == [303] * limit
    refused = statuses[limit]
    assert refused.status_code == 429 and int(refused.headers["Retry-After"]) > 0
    assert _texts(app) == limit


def test_item_59_sends_per_number_answer_429_with_retry_after(app, client):
    limit = app.config["IDP_SETTINGS"].sms_max_per_number
    statuses = [_add(client, "+27 82 123 4567") for _ in range(limit + 1)]
    assert statuses[limit].status_code == 429 and int(statuses[limit].headers["Retry-After"]) > 0
    assert len(texted_codes(app, "+27821234567")) == limit


def test_item_59_the_daily_budget_stops_texts_and_half_of_it_alerts_staff(app, monkeypatch, caplog):
    settings = app.config["IDP_SETTINGS"]
    monkeypatch.setattr(settings, "sms_daily_budget", 4)
    monkeypatch.setattr(settings, "sms_max_per_account", 100)
    clear_texts(app)
    responses = []
    for i in range(5):  # five residents, one number each: only the city-wide budget can stop them
        browser = app.test_client()
        make_user(app, email=f"r{i}@example.org")
        assert login(browser, email=f"r{i}@example.org").status_code == 303
        responses.append(_add(browser, f"+27 82 888 {i:04d}"))
    assert [r.status_code for r in responses] == [303, 303, 303, 303, 429]
    assert int(responses[4].headers["Retry-After"]) > 0
    assert _texts(app) == 4
    with app.app_context():
        alerts = db.session.scalars(db.select(AuditEvent).where(AuditEvent.event == "sms.budget_half_spent")).all()
    assert len(alerts) == 1 and alerts[0].detail["spent"] == 2 and alerts[0].detail["budget"] == 4
    assert any("half of the daily text message budget" in r.getMessage() for r in caplog.records)
