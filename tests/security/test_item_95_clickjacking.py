"""Checklist 95: clickjacking. Another site puts the IdP's pages in an invisible frame to trick a
resident into clicking "Allow" or "Sign in". Every HTML response (sign-in, the authorization and
consent pages, second factor, password reset, error pages, account and admin pages) carries
``Content-Security-Policy: frame-ancestors 'none'`` and ``X-Frame-Options: DENY``, and a real
Chromium refuses to render the IdP inside another origin's frame."""
from __future__ import annotations

from urllib.parse import urlencode, urlsplit

import pytest
from sqlalchemy import update

from idp.extensions import db
from idp.models import User, UserSession
from idp.oidc.acr import ACR_PHISHING_RESISTANT
from tests.conftest import csrf_token
from tests.integration.test_signin_flows import login, make_user
from tests.support.oidc import authorize_params, make_client, pkce_pair

ANONYMOUS = ["/", "/login", "/register", "/forgot-password", "/verify-email/resend", "/reset-password/not-a-token",
             "/verify-email/not-a-token", "/signed-out", "/no/such/page", "/authorize?client_id=unknown",
             "/login/second-factor", "/services", "/help", "/contact"]
SIGNED_IN = ["/account/", "/account/name", "/account/email", "/account/password", "/account/security",
             "/account/security/phone", "/account/municipal/", "/account/services", "/account/close"]
ADMIN = ["/admin/", "/admin/residents", "/admin/clients", "/admin/clients/new", "/admin/keys", "/admin/audit",
         "/admin/link-requests", "/admin/deliveries"]


def _assert_unframeable(response, path: str) -> None:
    csp = response.headers.get("Content-Security-Policy", "")
    directives = {part.strip().split(" ", 1)[0]: part.strip() for part in csp.split(";") if part.strip()}
    assert directives.get("frame-ancestors") == "frame-ancestors 'none'", (path, csp)
    assert response.headers.get("X-Frame-Options") == "DENY", path


def _html_pages(http, paths):
    for path in paths:
        response = http.get(path)
        if response.mimetype == "text/html":
            yield path, response


def test_item_95_every_anonymous_page_and_error_page_refuses_framing(app, client):
    seen = 0
    for path, response in _html_pages(client, ANONYMOUS):
        _assert_unframeable(response, path)
        seen += 1
    assert seen == len(ANONYMOUS)
    # A failed form post (400), a throttled or refused sign-in (401) and a CSRF failure (403) too.
    page = client.get("/login")
    for data in ({"email": "x@example.org", "password": "wrong password here",
                  "csrf_token": csrf_token(page.get_data(as_text=True))}, {"email": "x@example.org"}):
        _assert_unframeable(client.post("/login", data=data), "/login POST")
    _assert_unframeable(client.post("/logout", data={}), "/logout POST")


def test_item_95_authorize_consent_and_second_factor_pages_refuse_framing(app, client):
    client_id, _ = make_client(app)
    make_user(app)
    _, challenge = pkce_pair()
    params = urlencode(authorize_params(client_id, challenge))
    assert login(client).status_code == 303
    consent = client.get("/authorize?" + params)
    assert consent.status_code == 200 and "Allow" in consent.get_data(as_text=True)
    _assert_unframeable(consent, "consent")
    bad = client.get("/authorize?" + params.replace("code_challenge_method=S256", "code_challenge_method=plain"))
    _assert_unframeable(bad, "authorize error")
    for path, response in _html_pages(client, SIGNED_IN):
        _assert_unframeable(response, path)


def test_item_95_admin_console_refuses_framing(app):
    user_id = make_user(app, email="admin@capetown.gov.za")
    with app.app_context():
        db.session.get(User, user_id).roles = ["administrator"]
        db.session.commit()
    http = app.test_client()
    login(http, email="admin@capetown.gov.za")
    with app.app_context():
        db.session.execute(update(UserSession).where(UserSession.user_id == user_id)
                           .values(acr=ACR_PHISHING_RESISTANT, amr=["pwd", "hwk", "mfa"]))
        db.session.commit()
    shown = []
    for path, response in _html_pages(http, ADMIN):
        _assert_unframeable(response, path)
        shown += [path] if response.status_code == 200 else []
    assert "/admin/" in shown and "/admin/clients" in shown and "/admin/keys" in shown


@pytest.mark.e2e
def test_item_95_a_real_browser_refuses_to_frame_the_sign_in_and_consent_pages(app, client):
    """Chromium loads an attacker's page (another origin) that frames the IdP; the IdP's answers
    come from the application itself. The frame stays empty; a frame without the headers (the
    control) renders, so the harness would notice framing."""
    from playwright.sync_api import sync_playwright

    from tests.support.browser import launch_chromium

    client_id, _ = make_client(app)
    make_user(app)
    assert login(client).status_code == 303
    _, challenge = pkce_pair()
    authorize = "/authorize?" + urlencode(authorize_params(client_id, challenge))
    idp = "http://localhost"
    attacker = ("<!doctype html><title>win a prize</title>"
                f'<iframe id="login" src="{idp}/login"></iframe>'
                f'<iframe id="consent" src="{idp}{authorize}"></iframe>'
                '<iframe id="control" src="http://control.test/plain"></iframe>')

    def from_idp(route):
        parts = urlsplit(route.request.url)
        answer = client.get(parts.path + ("?" + parts.query if parts.query else ""))
        route.fulfill(status=answer.status_code, body=answer.get_data(),
                      headers={k: v for k, v in answer.headers.items() if k.lower() != "content-length"})

    with sync_playwright() as playwright:
        browser = launch_chromium(playwright)
        try:
            page = browser.new_page()
            page.route("http://attacker.test/**", lambda route: route.fulfill(
                status=200, body=attacker, headers={"Content-Type": "text/html"}))
            page.route("http://control.test/**", lambda route: route.fulfill(
                status=200, body="<!doctype html><p id=ok>framed</p>", headers={"Content-Type": "text/html"}))
            page.route(idp + "/**", from_idp)
            page.goto("http://attacker.test/")
            page.wait_for_load_state("load")
            frames = [frame for frame in page.frames if frame != page.main_frame]
            control = next(f for f in page.frames if f.url.startswith("http://control.test"))
            assert control.locator("#ok").count() == 1  # the harness shows a framable page
            for frame in page.frames:
                if frame == page.main_frame or frame == control:
                    continue
                # A refused frame shows Chromium's error page, never the IdP's form.
                assert frame.locator("input[name=password]").count() == 0, frame.url
                assert frame.locator("button[value=allow], input[name=csrf_token]").count() == 0, frame.url
            assert len(frames) == 3
            refused = [frame for frame in frames if frame != control]
            assert all(frame.url.startswith("chrome-error:") for frame in refused), [f.url for f in refused]
        finally:
            browser.close()


def test_item_95_second_factor_and_reset_pages_refuse_framing(app, smtp_server):
    from tests.integration.test_pages_account import signed_in_client
    from tests.support.mfa import enrol_totp

    owner, _ = signed_in_client(app)
    enrol_totp(owner)
    for path in ("/account/security", "/account/security/recovery-codes"):
        _assert_unframeable(owner.get(path), path)
    challenged = app.test_client()
    assert login(challenged).headers["Location"] == "/login/second-factor"
    for path in ("/login/second-factor", "/login/second-factor/app", "/login/second-factor/recovery"):
        response = challenged.get(path)
        assert response.status_code == 200, path
        _assert_unframeable(response, path)
    import re

    from tests.support.links import open_link
    from tests.support.smtp import body_of

    page = challenged.get("/forgot-password")
    challenged.post("/forgot-password", data={"csrf_token": csrf_token(page.get_data(as_text=True)),
                                              "email": "amara@example.org"})
    mail = smtp_server.wait_for("amara@example.org", subject_contains="Reset")
    path = re.search(r"/reset-password/[\w-]+", body_of(mail)).group(0)
    reset = open_link(challenged, path)
    assert reset.status_code == 200
    _assert_unframeable(reset, "reset form")
    _assert_unframeable(reset.history[0], "reset link's redirect")
