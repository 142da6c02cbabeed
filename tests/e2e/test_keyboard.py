"""Keyboard only, in Chromium and in each of the five languages: sign-up, sign-in with an
authenticator code and a password reset, moving with Tab and acting with Enter, never the mouse;
every stop shows where the focus is."""
from __future__ import annotations

import time
from pathlib import Path

import pyotp
import pytest
from babel.support import Translations

from idp.i18n import LANGUAGES
from tests.support.server import IdpServer
from tests.support.smtp import first_link

pytestmark = pytest.mark.e2e

PASSWORD = "a long enough resident passphrase"
NEW_PASSWORD = "seven purple zebras crossing"
TRANSLATIONS = Path(__file__).parents[2] / "idp" / "translations"
FOCUS_SHOWN = """() => { const e = document.activeElement; const s = getComputedStyle(e);
  return e !== document.body && s.outlineStyle !== 'none' && parseFloat(s.outlineWidth) >= 2; }"""


def words(language: str, text: str) -> str:
    """``text`` as the pages show it in ``language``."""
    return Translations.load(str(TRANSLATIONS), [language]).gettext(text)


@pytest.fixture(scope="module")
def server(tmp_path_factory, smtp_server):
    """One running ``idp serve`` for the walkthroughs (each uses addresses of its own)."""
    idp = IdpServer(tmp_path_factory.mktemp("keyboard"), smtp_port=smtp_server.port).start()
    yield idp
    idp.stop()


@pytest.fixture(params=list(LANGUAGES))
def language(request, page):
    """The language the browser asks for."""
    page.context.set_extra_http_headers({"Accept-Language": request.param})
    return request.param


def tab_to(page, selector: str, limit: int = 40) -> int:
    """Press Tab until ``selector`` has the focus (each stop must show its focus); the presses it took."""
    for presses in range(1, limit + 1):
        page.keyboard.press("Tab")
        if page.evaluate("() => document.activeElement.tagName") != "BODY":
            assert page.evaluate(FOCUS_SHOWN), page.evaluate("() => document.activeElement.outerHTML")[:200]
        if page.evaluate("s => document.activeElement.matches(s)", selector):
            return presses
    raise AssertionError(f"Tab never reached {selector}")


def type_into(page, selector: str, text: str) -> None:
    tab_to(page, selector)
    page.keyboard.type(text)


def settings_of(server):
    from idp.config import load_settings

    return load_settings({k: v for k, v in server.env.items() if k.startswith("IDP_")})


def enrol_authenticator(server, email: str) -> str:
    """Give the resident an authenticator app (as if set up earlier on another device)."""
    from idp import create_app
    from idp.services import accounts, totp

    app = create_app(settings_of(server))
    with app.app_context():
        user = accounts.find_by_email(email)
        secret = totp.begin_enrolment(user)
        assert totp.confirm_enrolment(user, pyotp.TOTP(secret).now())
    return secret


def test_the_skip_link_comes_first_and_moves_the_focus_to_the_content(server, page):
    page.goto(server.url + "/login")
    assert tab_to(page, "a.skip") == 1
    page.keyboard.press("Enter")
    assert page.evaluate("() => document.activeElement.id") == "main"


def test_sign_up_with_the_keyboard(server, smtp_server, page, language):
    email = f"ayanda.keys.{language}@example.org"
    page.goto(server.url + "/register")
    type_into(page, "#name", "Ayanda Keyboard")
    type_into(page, "#email", email)
    type_into(page, "#password", PASSWORD)
    page.keyboard.press("Enter")
    page.get_by_role("heading", name=words(language, "Check your email")).wait_for()

    page.goto(first_link(smtp_server.wait_for(email)))
    tab_to(page, "main button[type=submit]")
    page.keyboard.press("Enter")
    page.get_by_role("heading", name=words(language, "Sign in"), exact=True).wait_for()


def test_sign_in_with_an_authenticator_code_with_the_keyboard(server, page, language):
    email = f"sipho.keys.{language}@example.org"
    server.cli("users", "create", "--email", email, "--password", PASSWORD, "--name", "Sipho Keys", "--verified-email")
    secret = enrol_authenticator(server, email)
    page.goto(server.url + "/login")
    type_into(page, "#email", email)
    type_into(page, "#password", PASSWORD)
    page.keyboard.press("Enter")
    page.wait_for_url("**/login/second-factor**")
    tab_to(page, "a[href$='/login/second-factor/app']")
    page.keyboard.press("Enter")
    page.wait_for_url("**/login/second-factor/app**")
    # A code from the next time step: the one confirming the enrolment may not be used twice.
    type_into(page, "#code", pyotp.TOTP(secret).at((int(time.time()) // 30 + 1) * 30))
    page.keyboard.press("Enter")
    page.get_by_role("heading", name=words(language, "My account")).wait_for()


def test_password_reset_with_the_keyboard(server, smtp_server, page, language):
    email = f"lerato.keys.{language}@example.org"
    server.cli("users", "create", "--email", email, "--password", PASSWORD, "--name", "Lerato Keys", "--verified-email")
    page.goto(server.url + "/login")
    tab_to(page, "a[href^='/forgot-password']")
    page.keyboard.press("Enter")
    page.wait_for_url("**/forgot-password**")
    type_into(page, "#email", email)
    with page.expect_navigation():  # the answer page, before going to the mailed link
        page.keyboard.press("Enter")
    link = first_link(smtp_server.wait_for(email))
    page.goto(link)
    type_into(page, "#password", NEW_PASSWORD)
    type_into(page, "#confirm", NEW_PASSWORD)
    page.keyboard.press("Enter")
    page.get_by_role("heading", name=words(language, "Sign in"), exact=True).wait_for()
    type_into(page, "#email", email)
    type_into(page, "#password", NEW_PASSWORD)
    page.keyboard.press("Enter")
    page.get_by_role("heading", name=words(language, "My account")).wait_for()
