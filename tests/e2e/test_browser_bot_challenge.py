"""The sign-in bot challenge in Chromium: once an account is under attack, a script that does not
solve the puzzle is refused, and a resident in a real browser (the page's script solves it at the
default difficulty while they type) signs in as usual."""
from __future__ import annotations

import re

import pytest
import requests

from tests.support.bot_challenge import answered

pytestmark = pytest.mark.e2e

EMAIL = "thandi.challenge@example.org"
PASSWORD = "a long enough resident passphrase"
CSRF = re.compile(r'name="csrf_token"[^>]*value="([^"]+)"')


def _sign_in(base: str, password: str, solve: bool) -> requests.Response:
    http = requests.Session()
    html = http.get(base + "/login", timeout=30).text
    return http.post(base + "/login", allow_redirects=False, timeout=30, data={
        "csrf_token": CSRF.search(html).group(1), "email": EMAIL, "password": password, "next": "",
        **(answered(html) if solve else {})})


def test_a_real_browser_solves_the_challenge_a_plain_script_does_not(idp_server, page):
    base = idp_server.url
    idp_server.cli("users", "create", "--email", EMAIL, "--password", PASSWORD, "--verified-email")
    for _ in range(5):  # half of IDP_LOGIN_MAX_FAILURES (10): the account is under attack
        assert _sign_in(base, "not the password", solve=True).status_code == 401
    refused = _sign_in(base, PASSWORD, solve=False)
    assert refused.status_code == 429 and "automatic check" in refused.text

    page.goto(base + "/login")
    assert page.locator("input[name=bot_challenge]").get_attribute("data-bot-bits") == "16"
    page.get_by_label("Email address").fill(EMAIL)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in", exact=True).click()
    page.get_by_role("heading", name="My account").wait_for()
