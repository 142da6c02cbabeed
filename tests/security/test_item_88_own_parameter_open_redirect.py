"""Checklist 88: own-parameter open redirect. ``next`` values that a browser would resolve to
another site (``//evil.tld``, ``/\\evil.tld``, ``https:evil.tld``, percent-encoded slashes,
``javascript:``, tabs and newlines inside the slashes) on sign-in, registration, reset, step-up,
sign-out, the language switch and the account-link pages: the IdP only ever redirects to a path
on its own origin."""
from __future__ import annotations

from urllib.parse import quote, urlencode, urlsplit

import pytest

from tests.conftest import csrf_token
from tests.integration.test_pages_account import signed_in_client
from tests.integration.test_signin_flows import PASSWORD, login, make_user

EVIL = ["//evil.tld", "/\\evil.tld", "https:evil.tld", "%2F%2Fevil.tld", "/%2F%2Fevil.tld", "%252F%252Fevil.tld",
        "javascript:alert(1)", "/\t/evil.tld", "/\n/evil.tld", "\\\\evil.tld", "https://evil.tld/account/",
        "///evil.tld", "/%5Cevil.tld", " //evil.tld", "http://localhost@evil.tld/"]


def _assert_stays_home(location: str) -> None:
    """A browser resolving ``location`` against http://localhost stays on http://localhost."""
    assert location, "expected a redirect"
    from urllib.parse import urljoin

    # What browsers do: strip tab/newline, treat backslash as slash.
    cleaned = location.replace("\t", "").replace("\n", "").replace("\r", "").replace("\\", "/")
    resolved = urlsplit(urljoin("http://localhost/login", cleaned))
    assert resolved.scheme == "http" and resolved.netloc == "localhost", location
    assert not location.lower().startswith(("javascript:", "//", "/\\")), location


def test_item_88_sign_in_ignores_an_off_site_next(app):
    make_user(app)
    for evil in EVIL:
        http = app.test_client()
        page = http.get("/login?" + urlencode({"next": evil}))
        assert 'value="' + evil + '"' not in page.get_data(as_text=True) or evil.startswith("/%")
        response = login(http, next_=evil)
        assert response.status_code == 303
        _assert_stays_home(response.headers["Location"])


@pytest.mark.parametrize("evil", EVIL[:6])
def test_item_88_percent_encoded_next_in_the_query_is_refused(app, evil):
    """The next value arrives still percent-encoded once more than the form expects."""
    make_user(app)
    http = app.test_client()
    token = csrf_token(http.get("/login").get_data(as_text=True))
    response = http.post("/login?next=" + quote(evil, safe=""), data={
        "csrf_token": token, "email": "amara@example.org", "password": PASSWORD})
    assert response.status_code == 303
    _assert_stays_home(response.headers["Location"])


def test_item_88_step_up_language_and_sign_out_stay_on_site(app):
    http, _ = signed_in_client(app)
    for evil in EVIL:
        step_up = http.get("/login/step-up?" + urlencode({"acr": "urn:ecitizen:acr:password", "next": evil}))
        if step_up.status_code in (302, 303):
            _assert_stays_home(step_up.headers["Location"])
        token = csrf_token(http.get("/account/").get_data(as_text=True))
        switched = http.post("/language", data={"lang": "zu", "next": evil, "csrf_token": token})
        assert switched.status_code == 303
        _assert_stays_home(switched.headers["Location"])
    for evil in EVIL:  # signing out (signed in or not) ends on the IdP's own page
        token = csrf_token(http.get("/login").get_data(as_text=True))
        out = http.post("/logout?" + urlencode({"next": evil}), data={"csrf_token": token, "next": evil})
        assert out.status_code == 303
        _assert_stays_home(out.headers["Location"])


@pytest.mark.parametrize("path", ["/account/municipal/link", "/account/municipal/request", "/register",
                                  "/forgot-password"])
def test_item_88_other_forms_never_redirect_off_site(app, path):
    http, _ = signed_in_client(app)
    page = http.get(path)
    token = csrf_token(page.get_data(as_text=True)) if page.status_code == 200 else ""
    for evil in EVIL:
        response = http.post(path + "?" + urlencode({"next": evil}),
                             data={"csrf_token": token, "next": evil, "account_number": "x", "email": "a@b.org"})
        location = response.headers.get("Location")
        if location:
            _assert_stays_home(location)
        assert f'href="{evil}"' not in response.get_data(as_text=True)
