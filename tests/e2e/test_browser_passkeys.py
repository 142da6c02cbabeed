"""Passkeys end to end in Chromium with a CDP virtual authenticator: register one on the hosted
page, sign in with it alone, sign in with the password plus the passkey, and sign in to the staff
console on its own host."""
from __future__ import annotations

import json

import pytest
from playwright.sync_api import Error as PlaywrightError
from sqlalchemy import create_engine, text

from tests.support.server import IdpServer

pytestmark = pytest.mark.e2e

EMAIL = "nomsa.passkey@example.org"
PASSWORD = "quiet rivers under table mountain"


def add_virtual_authenticator(page):
    cdp = page.context.new_cdp_session(page)
    cdp.send("WebAuthn.enable")
    added = cdp.send("WebAuthn.addVirtualAuthenticator", {"options": {
        "protocol": "ctap2", "transport": "internal", "hasResidentKey": True, "hasUserVerification": True,
        "isUserVerified": True, "automaticPresenceSimulation": True}})
    return cdp, added["authenticatorId"]


def sign_in_with_password(page, base):
    page.goto(base + "/login")
    page.get_by_label("Email address").fill(EMAIL)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in", exact=True).click()


def sign_out(page, base):
    page.goto(base + "/account/")
    page.get_by_role("button", name="Sign out").click()
    page.get_by_role("heading", name="You are signed out").wait_for()


def latest_session(server) -> tuple[list, str]:
    engine = create_engine(server.database_url.replace("postgresql://", "postgresql+psycopg://"))
    try:
        with engine.connect() as conn:
            amr, acr = conn.execute(text("SELECT amr, acr FROM user_sessions ORDER BY created_at DESC LIMIT 1")).one()
    finally:
        engine.dispose()
    return (json.loads(amr) if isinstance(amr, str) else amr), acr


def test_register_a_passkey_then_sign_in_with_it_alone_and_as_second_factor(idp_server, smtp_server, page):
    base = idp_server.url
    idp_server.cli("users", "create", "--email", EMAIL, "--password", PASSWORD, "--name", "Nomsa Khumalo",
                   "--verified-email")
    cdp, authenticator = add_virtual_authenticator(page)

    sign_in_with_password(page, base)
    page.get_by_role("heading", name="My account").wait_for()
    page.goto(base + "/account/security")
    page.get_by_role("link", name="Add a passkey or security key").click()
    page.get_by_label("Name for this passkey").fill("My test phone")
    page.get_by_role("button", name="Create a passkey").click()
    page.get_by_role("heading", name="Your recovery codes").wait_for()  # the first factor brings codes
    assert len(page.locator("ol.codes li").all()) == 10
    credentials = cdp.send("WebAuthn.getCredentials", {"authenticatorId": authenticator})["credentials"]
    assert len(credentials) == 1 and credentials[0]["isResidentCredential"]
    page.goto(base + "/account/security")
    assert "My test phone" in page.content()
    smtp_server.wait_for(EMAIL, subject_contains="sign-in method was added")

    sign_out(page, base)
    page.goto(base + "/login")
    try:
        page.get_by_role("button", name="Sign in with a passkey").click(timeout=3000)
    except PlaywrightError:
        pass  # the browser's passkey autofill (conditional mediation) signed in first
    page.get_by_role("heading", name="My account").wait_for()
    amr, acr = latest_session(idp_server)
    assert acr == "urn:ecitizen:acr:phishing-resistant" and {"user", "mfa"} <= set(amr) and set(amr) & {"hwk", "swk"}

    sign_out(page, base)
    # Hold the authenticator back so the sign-in page's passkey autofill cannot answer first.
    cdp.send("WebAuthn.setAutomaticPresenceSimulation", {"authenticatorId": authenticator, "enabled": False})
    sign_in_with_password(page, base)
    page.get_by_role("heading", name="Confirm it is you").wait_for()
    cdp.send("WebAuthn.setAutomaticPresenceSimulation", {"authenticatorId": authenticator, "enabled": True})
    page.get_by_role("button", name="Use my passkey or security key").click()
    page.get_by_role("heading", name="My account").wait_for()
    amr, acr = latest_session(idp_server)
    assert acr == "urn:ecitizen:acr:phishing-resistant" and {"pwd", "mfa"} <= set(amr)


def test_a_passkey_of_another_site_or_none_at_all_does_not_sign_in(idp_server, page):
    base = idp_server.url
    idp_server.cli("users", "create", "--email", EMAIL, "--password", PASSWORD, "--verified-email")
    add_virtual_authenticator(page)  # empty: no credential for this site
    page.goto(base + "/login")
    page.get_by_role("button", name="Sign in with a passkey").click()
    alert = page.locator("[data-passkey-error]")
    alert.filter(has_text="cancelled").wait_for(timeout=20000)
    assert page.url.startswith(base + "/login")


def test_staff_sign_in_to_the_console_on_its_own_host_with_a_passkey(tmp_path, smtp_server, page):
    """IDP_ADMIN_HOST (checklist 74): the console is only on its host, which keeps its own session;
    a passkey registered on the residents' host signs staff in there (same RP ID)."""
    server = IdpServer(tmp_path, smtp_port=smtp_server.port)
    # Chromium takes no bare "localhost" as the RP ID of a subdomain: the issuer is one level down.
    base, admin = f"http://id.localhost:{server.port}", f"http://admin.id.localhost:{server.port}"
    server.env.update(IDP_ISSUER=base, IDP_ADMIN_HOST=f"admin.id.localhost:{server.port}",
                      IDP_ALLOWED_HOSTS=f"localhost:{server.port}")  # the readiness probe's
    server.start()
    try:
        server.cli("users", "create", "--email", EMAIL, "--password", PASSWORD, "--name", "Nomsa Khumalo",
                   "--verified-email")
        server.cli("users", "grant-role", EMAIL, "administrator")
        cdp, authenticator = add_virtual_authenticator(page)
        sign_in_with_password(page, base)
        page.get_by_role("heading", name="My account").wait_for()
        page.goto(base + "/account/security/passkeys/new")
        page.get_by_label("Name for this passkey").fill("Office key")
        page.get_by_role("button", name="Create a passkey").click()
        page.get_by_role("heading", name="Your recovery codes").wait_for()
        assert page.goto(base + "/admin/").status == 404  # not on the residents' host, even signed in

        cdp.send("WebAuthn.setAutomaticPresenceSimulation", {"authenticatorId": authenticator, "enabled": False})
        page.goto(admin + "/admin/")
        assert page.url.startswith(admin + "/login")  # the residents' session does not reach this host
        page.get_by_label("Email address").fill(EMAIL)
        page.get_by_label("Password").fill(PASSWORD)
        page.get_by_role("button", name="Sign in", exact=True).click()
        page.get_by_role("heading", name="Confirm it is you").wait_for()
        cdp.send("WebAuthn.setAutomaticPresenceSimulation", {"authenticatorId": authenticator, "enabled": True})
        page.get_by_role("button", name="Use my passkey or security key").click()
        page.get_by_role("heading", name="Staff console").wait_for()
        assert page.url == admin + "/admin/"
        _, acr = latest_session(server)
        assert acr == "urn:ecitizen:acr:phishing-resistant"
    finally:
        server.stop()
