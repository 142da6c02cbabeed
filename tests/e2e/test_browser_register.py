"""A resident registers, confirms the address from the real mail, signs in and out in Chromium."""
from __future__ import annotations

import pytest

from tests.support.smtp import first_link

pytestmark = pytest.mark.e2e

def test_register_verify_sign_in_sign_out(idp_server, smtp_server, page):
    base = idp_server.url
    email = "lindiwe.e2e@example.org"
    password = "correct horse battery stapler"

    page.goto(base + "/")
    page.get_by_role("link", name="Create an account").click()
    page.get_by_label("Full name").fill("Lindiwe Mokoena")
    page.get_by_label("Email address").fill(email)
    page.get_by_label("Create a password").fill("short")
    page.get_by_role("button", name="Create account").click()
    assert page.locator("#password-error").is_visible()  # refused with a reason, tied to the field
    page.get_by_label("Create a password").fill(password)
    page.get_by_role("button", name="Create account").click()
    page.get_by_role("heading", name="Check your email").wait_for()

    link = first_link(smtp_server.wait_for(email, subject_contains="Confirm"))
    assert link.startswith(base + "/verify-email/")
    page.goto(link)
    page.get_by_role("button", name="Confirm").click()
    page.get_by_role("heading", name="Sign in").wait_for()

    page.get_by_label("Email address").fill(email)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in", exact=True).click()
    page.get_by_role("heading", name="My account").wait_for()
    assert email in page.content() and "(confirmed)" in page.content()

    page.get_by_role("button", name="Sign out").click()
    page.get_by_role("heading", name="You are signed out").wait_for()
    page.goto(base + "/account/")
    page.get_by_role("heading", name="Sign in").wait_for()
