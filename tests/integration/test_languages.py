"""Languages: ui_locales, then the switcher's choice, then the saved preference, then Accept-Language;
the choice is saved in the profile, released as the ``locale`` claim and used for the resident's mail."""
from __future__ import annotations

import re
from pathlib import Path

import pytest
from babel.messages.pofile import read_po

from idp.extensions import db
from idp.models import AuditEvent, User
from idp.services import support
from tests.conftest import csrf_token
from tests.integration.test_pages_account import signed_in_client
from tests.integration.test_signin_flows import login as login_as_resident
from tests.support.mfa import form_token
from tests.support.oidc import authorize_params, exchange, get_code, make_client, make_user, pkce_pair
from tests.support.smtp import body_of

CATALOGUES = Path(__file__).parents[2] / "idp" / "translations"


def translated(code: str, msgid: str) -> str:
    """The catalogue's translation of ``msgid`` (HTML-escaped as a page shows it)."""
    with open(CATALOGUES / code / "LC_MESSAGES" / "messages.po", "rb") as handle:
        text = read_po(handle)[msgid].string
    assert text and text != msgid, f"{code} has no own translation of {msgid!r}"
    return text.replace("&", "&amp;").replace("'", "&#39;").replace('"', "&#34;")


def language_of(response) -> str:
    return re.search(r'<html lang="([a-z]+)"', response.get_data(as_text=True)).group(1)


def test_accept_language_picks_a_supported_language_with_or_without_a_region(client):
    assert language_of(client.get("/login", headers={"Accept-Language": "zu-ZA,zu;q=0.9,en;q=0.5"})) == "zu"
    page = client.get("/login", headers={"Accept-Language": "af"}).get_data(as_text=True)
    assert translated("af", "Sign in") in page
    assert language_of(client.get("/login", headers={"Accept-Language": "fr, de;q=0.5"})) == "en"
    assert language_of(client.get("/login")) == "en"


def test_ui_locales_wins_for_the_sign_in_that_follows(app, client):
    client_id, _ = make_client(app)
    _, challenge = pkce_pair()
    params = authorize_params(client_id, challenge, ui_locales="fr-CA xh-ZA af")
    response = client.get("/authorize", query_string=params, headers={"Accept-Language": "af"})
    assert response.status_code == 302 and "/login" in response.headers["Location"]
    login_page = client.get(response.headers["Location"], headers={"Accept-Language": "af"})
    assert language_of(login_page) == "xh"
    assert translated("xh", "Sign in") in login_page.get_data(as_text=True)


def test_unsupported_ui_locales_change_nothing(app, client):
    client_id, _ = make_client(app)
    _, challenge = pkce_pair()
    client.get("/authorize", query_string=authorize_params(client_id, challenge, ui_locales="fr de"))
    assert language_of(client.get("/login", headers={"Accept-Language": "st"})) == "st"


def test_a_visitor_switches_language_and_it_sticks_on_this_browser(client):
    page = client.get("/login?next=/account/")
    assert 'value="/login?next=/account/"' in page.get_data(as_text=True)
    response = client.post("/language", data={"lang": "st", "next": "/login?next=/account/"},
                           headers={"Accept-Language": "af"})
    assert response.status_code == 303 and response.headers["Location"] == "/login?next=/account/"
    assert "idp_lang=st" in response.headers["Set-Cookie"] and "HttpOnly" in response.headers["Set-Cookie"]
    after = client.get("/login", headers={"Accept-Language": "af"})
    assert language_of(after) == "st"
    assert re.search(r'value="st" lang="st" class="link"\s+aria-current="true"', after.get_data(as_text=True))


@pytest.mark.parametrize("target", ["//evil.example/", "https://evil.example/", "/\\evil.example", "javascript:alert(1)"])
def test_the_switch_never_leaves_the_site(client, target):
    response = client.post("/language", data={"lang": "af", "next": target})
    assert response.status_code == 303 and response.headers["Location"] == "/"


@pytest.mark.parametrize("value", ["", "fr", "EN", "af-ZA", "<script>"])
def test_an_unknown_language_is_refused_and_nothing_is_set(client, value):
    response = client.post("/language", data={"lang": value, "next": "/login"})
    assert response.status_code == 400
    assert "idp_lang" not in response.headers.get("Set-Cookie", "")


def test_a_signed_in_resident_needs_the_csrf_token_and_the_choice_is_saved_and_audited(app):
    client, _ = signed_in_client(app)
    refused = client.post("/language", data={"lang": "zu", "next": "/account/"})
    assert refused.status_code == 403  # CSRF token missing
    with app.app_context():
        assert db.session.scalar(db.select(User)).locale is None
    done = client.post("/language", data={"lang": "zu", "next": "/account/",
                                          "csrf_token": form_token(client, "/account/")})
    assert done.status_code == 303
    with app.app_context():
        user = db.session.scalar(db.select(User))
        assert user.locale == "zu"
        assert db.session.scalar(db.select(AuditEvent).where(AuditEvent.event == "profile.locale_changed"))
    # On another browser with no choice of its own, the saved preference beats Accept-Language.
    other = app.test_client()
    assert login_as_resident(other).status_code == 303
    assert language_of(other.get("/account/", headers={"Accept-Language": "af"})) == "zu"


def test_the_language_chosen_before_signing_in_is_saved_and_released_as_the_locale_claim(app, client):
    client_id, secret = make_client(app)
    make_user(app)
    client.post("/language", data={"lang": "af", "next": "/login"})
    page = client.get("/login")
    assert language_of(page) == "af"
    client.post("/login", data={"email": "resident@example.org", "password": "a long enough resident passphrase",
                                "next": "/account/", "csrf_token": csrf_token(page.get_data(as_text=True))})
    verifier, challenge = pkce_pair()
    code = get_code(client, client_id, challenge)
    tokens = exchange(client, client_id, secret, code, verifier).get_json()
    claims = client.get("/userinfo", headers={"Authorization": f"Bearer {tokens['access_token']}"}).get_json()
    assert claims["locale"] == "af"


def test_discovery_lists_the_five_languages(client):
    assert client.get("/.well-known/openid-configuration").get_json()["ui_locales_supported"] == [
        "en", "af", "xh", "zu", "st"]


def test_registration_remembers_the_language_and_mails_in_it(app, client, smtp_server):
    page = client.get("/register", headers={"Accept-Language": "xh"})
    response = client.post("/register", headers={"Accept-Language": "xh"}, data={
        "name": "Sipho Mthembu", "email": "sipho@example.org", "password": "a long enough resident passphrase",
        "confirm": "a long enough resident passphrase", "csrf_token": csrf_token(page.get_data(as_text=True))})
    assert response.status_code in (200, 303)
    with app.app_context():
        assert db.session.scalar(db.select(User).where(User.email == "sipho@example.org")).locale == "xh"
    message = smtp_server.wait_for("sipho@example.org")
    assert str(message["Subject"]) == translated("xh", "Confirm your email address")


def test_mail_sent_by_staff_is_in_the_residents_language_not_the_staff_members(app, smtp_server):
    make_user(app)
    with app.app_context():
        resident = db.session.scalar(db.select(User))
        resident.locale = "st"
        db.session.commit()
        staff = User(email="staff@example.org", name="Staff", roles=["support"], password_hash="x")
        db.session.add(staff)
        db.session.commit()
        with app.test_request_context("/admin/", headers={"Accept-Language": "en"}):
            support.reset_mfa(staff, resident, "resident lost the phone, checked ID at the counter")
    message = smtp_server.wait_for("resident@example.org")
    assert str(message["Subject"]) == translated("st", "Your sign-in methods were reset")
    assert translated("st", "Set up a new method as soon as you can:").replace("&#39;", "'") in body_of(message)
