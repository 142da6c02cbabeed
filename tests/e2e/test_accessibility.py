"""WCAG 2.2 AA: axe-core (from npm) runs in headless Chromium over every resident page, signed out
and signed in, in each of the five languages, and finds nothing."""
from __future__ import annotations

import base64
import hashlib
import json
from pathlib import Path
from urllib.parse import urlencode

import pyotp
import pytest

from idp.i18n import LANGUAGES
from tests.support.browser import launch_chromium

pytestmark = pytest.mark.e2e

AXE = Path(__file__).parents[1] / "a11y" / "node_modules" / "axe-core" / "axe.min.js"
TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "wcag22aa"]
PASSWORD = "a long enough resident passphrase"
REDIRECT = "https://rates.example.gov.za/cb"
PUBLIC = ["/", "/login", "/register", "/forgot-password", "/verify-email/resend", "/services", "/help", "/contact",
          "/signed-out", "/no/such/page", "/authorize?client_id=unknown"]
SIGNED_IN = ["/account/", "/account/dashboard", "/account/name", "/account/email", "/account/password",
             "/account/services", "/account/notifications", "/account/close", "/account/security",
             "/account/security/phone", "/account/security/passkeys/new", "/account/municipal/",
             "/account/municipal/link", "/account/municipal/request"]


def violations(page) -> list[dict]:
    """axe's violations on the page as it is now (rule id, impact, the first offending elements)."""
    page.add_script_tag(content=AXE.read_text(encoding="utf-8"))
    found = page.evaluate("tags => axe.run(document, {runOnly: {type: 'tag', values: tags}})", TAGS)["violations"]
    return [{"rule": v["id"], "impact": v["impact"], "nodes": [n["target"] for n in v["nodes"][:3]]} for v in found]


@pytest.fixture(scope="module")
def server(tmp_path_factory, smtp_server):
    from tests.support.server import IdpServer

    idp = IdpServer(tmp_path_factory.mktemp("a11y"), smtp_port=smtp_server.port).start()
    out = idp.cli("clients", "create", "--name", "Rates and water", "--redirect-uri", REDIRECT,
                  "--scope", "openid profile email", "--json")
    idp.client_id = json.loads(out.stdout)["client_id"]
    yield idp
    idp.stop()


def authorize_url(server) -> str:
    challenge = base64.urlsafe_b64encode(hashlib.sha256(b"v" * 43).digest()).rstrip(b"=").decode()
    return server.url + "/authorize?" + urlencode({
        "response_type": "code", "client_id": server.client_id, "redirect_uri": REDIRECT, "scope": "openid profile",
        "state": "s", "nonce": "n", "code_challenge": challenge, "code_challenge_method": "S256"})


def sign_in(page, base: str, email: str) -> None:
    page.goto(base + "/login")
    page.locator("#email").fill(email)
    page.locator("#password").fill(PASSWORD)
    page.locator("main form[method=post] button[type=submit]").first.click()


@pytest.mark.parametrize("language", list(LANGUAGES))
def test_every_page_passes_axe_in_each_language(server, language):
    """Every page, and the states a resident meets on the way: form errors, setting up an
    authenticator app, recovery codes, the second step of sign-in and a department's consent."""
    assert AXE.is_file(), "axe-core is missing: run tests/setup_browser.sh"
    from playwright.sync_api import sync_playwright

    email = f"axe-{language}@example.org"
    server.cli("users", "create", "--email", email, "--password", PASSWORD, "--name", "Thandi Axe",
               "--verified-email")
    problems = {}

    def check(name: str) -> None:
        assert page.locator("html").get_attribute("lang") == language, name
        problems[name] = violations(page)

    with sync_playwright() as playwright:
        browser = launch_chromium(playwright)
        # The IdP's CSP forbids inline scripts; only the test's own axe injection bypasses it.
        context = browser.new_context(bypass_csp=True, extra_http_headers={"Accept-Language": language})
        page = context.new_page()
        for path in PUBLIC:
            page.goto(server.url + path)
            check(path)
        page.goto(server.url + "/register")
        page.locator("main form[method=post] button[type=submit]").first.click()
        check("/register with errors")
        page.goto(server.url + "/login")
        page.locator("#email").fill(email)
        page.locator("#password").fill("not the password at all")
        with page.expect_navigation():  # the page's script may hold the submit until its puzzle is solved
            page.locator("main form[method=post] button[type=submit]").first.click()
        check("/login with a wrong password")

        sign_in(page, server.url, email)
        page.wait_for_url("**/account/**")
        for path in SIGNED_IN:
            page.goto(server.url + path)
            check(path)
        page.goto(server.url + "/account/security")
        page.locator("form[action$='/account/security/app/start'] button").click()
        page.wait_for_url("**/account/security/app")
        check("/account/security/app")
        page.locator("#code").fill("000000")
        page.locator("main form[method=post] button[type=submit]").first.click()
        check("/account/security/app with a wrong code")
        secret = page.locator("code.secret").inner_text().replace(" ", "")
        page.locator("#code").fill(pyotp.TOTP(secret).now())
        page.locator("main form[method=post] button[type=submit]").first.click()
        page.wait_for_url("**/recovery-codes**")
        check("recovery codes")
        page.goto(authorize_url(server))
        check("consent")

        context.clear_cookies()
        sign_in(page, server.url, email)
        page.wait_for_url("**/login/second-factor**")
        check("/login/second-factor")
        for path in ("/login/second-factor/app", "/login/second-factor/recovery"):
            page.goto(server.url + path)
            check(path)
        context.close()
        browser.close()
    failing = {path: found for path, found in problems.items() if found}
    assert failing == {}, json.dumps(failing, indent=1)[:4000]


def test_axe_reports_a_real_violation(server):
    """The check can fail: an image without a text alternative is reported."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = launch_chromium(playwright)
        context = browser.new_context(bypass_csp=True)
        page = context.new_page()
        page.goto(server.url + "/login")
        page.evaluate("document.querySelector('main').insertAdjacentHTML('beforeend', '<img src=\"/x.png\">')")
        rules = {v["rule"] for v in violations(page)}
        context.close()
        browser.close()
    assert "image-alt" in rules
