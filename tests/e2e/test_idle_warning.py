"""Timing adjustable (WCAG 2.2.1) in Chromium: two minutes before an idle sign-out a warning takes
the focus, passes axe, and "Stay signed in" (Enter) restarts the server's idle clock without
leaving the page. The browser's clock is moved forward; the server's is moved back."""
from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import create_engine, select, update

from idp.models import UserSession
from idp.models.types import utcnow
from tests.e2e.test_accessibility import PASSWORD, sign_in, violations
from tests.support.browser import launch_chromium

pytestmark = pytest.mark.e2e


@pytest.fixture
def page():
    """A page whose context lets the test inject axe past the IdP's CSP."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = launch_chromium(playwright)
        context = browser.new_context(bypass_csp=True)
        yield context.new_page()
        browser.close()


def test_the_warning_comes_before_the_idle_sign_out_and_one_key_stays_signed_in(idp_server, page):
    idp_server.cli("users", "create", "--email", "idle@example.org", "--password", PASSWORD, "--name", "Idle Resident",
                   "--verified-email")
    engine = create_engine(idp_server.database_url.replace("postgresql://", "postgresql+psycopg://"))
    page.clock.install()
    sign_in(page, idp_server.url, "idle@example.org")
    page.wait_for_url("**/account/**")
    warning = page.locator("#idle-warning")
    assert warning.is_hidden()

    page.clock.fast_forward(27 * 60 * 1000)
    assert warning.is_hidden()
    page.clock.fast_forward(61 * 1000)  # 28 minutes: two before the 30-minute limit
    warning.wait_for(state="visible")
    assert page.evaluate("() => document.activeElement.textContent.trim()") == "Stay signed in"
    assert violations(page) == []

    with engine.begin() as connection:
        connection.execute(update(UserSession).values(last_seen_at=utcnow() - timedelta(minutes=28)))
    url = page.url
    page.keyboard.press("Enter")
    warning.wait_for(state="hidden")
    assert page.url == url
    with engine.begin() as connection:
        seen = connection.execute(select(UserSession.last_seen_at)).scalar_one()
    assert utcnow() - (seen if seen.tzinfo else seen.replace(tzinfo=utcnow().tzinfo)) < timedelta(minutes=1)
    engine.dispose()
