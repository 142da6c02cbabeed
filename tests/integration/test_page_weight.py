"""Light pages: every hosted page, in every language, weighs at most 50 KB on first load (the HTML
and everything it loads, counted uncompressed, so compression only makes it lighter), asks nothing
of another site, works as plain HTML forms, and its static files are cached for a year."""
from __future__ import annotations

import re
from urllib.parse import urlsplit

import pytest

from idp.i18n import LANGUAGES
from tests.integration.test_pages_account import signed_in_client
from tests.support.pages import BUDGET, first_load, script_free_form_problems

PUBLIC = ["/", "/login", "/register", "/forgot-password", "/verify-email/resend", "/services", "/help", "/contact",
          "/signed-out", "/no/such/page"]
SIGNED_IN = ["/account/", "/account/dashboard", "/account/name", "/account/email", "/account/password",
             "/account/services", "/account/notifications", "/account/close", "/account/security",
             "/account/security/app", "/account/security/phone", "/account/security/passkeys/new",
             "/account/municipal/", "/account/municipal/link", "/account/municipal/request"]


@pytest.mark.parametrize("language", list(LANGUAGES))
def test_every_page_stays_within_budget_and_loads_nothing_from_elsewhere(app, language):
    visitor = app.test_client()
    resident, _ = signed_in_client(app)
    weights = {}
    for client, paths in ((visitor, PUBLIC), (resident, SIGNED_IN)):
        for path in paths:
            weight, urls = first_load(client, path, language)
            weights[path] = weight
            offsite = [u for u in urls if urlsplit(u).scheme or urlsplit(u).netloc]
            assert offsite == [], (path, offsite)
    heavy = {path: weight for path, weight in weights.items() if weight > BUDGET}
    assert heavy == {}, heavy


def test_the_budget_check_counts_what_a_page_loads(app):
    visitor = app.test_client()
    weight, urls = first_load(visitor, "/login", "en")
    css = visitor.get(urls[0]).data
    assert any(u.startswith("/static/site.css?v=") for u in urls)
    assert weight > len(css) > 1000


def test_static_files_are_cached_for_a_year_under_a_versioned_address(client):
    html = client.get("/login").get_data(as_text=True)
    url = re.search(r'href="(/static/site\.css\?v=[0-9a-f]{12})"', html).group(1)
    assert client.get(url).headers["Cache-Control"] == "public, max-age=31536000, immutable"
    stale = client.get("/static/site.css?v=000000000000")
    assert "immutable" not in stale.headers.get("Cache-Control", "")
    assert "immutable" not in client.get("/static/site.css").headers.get("Cache-Control", "")


def test_forms_work_without_javascript(app):
    """No page needs a script to submit: every form posts to a real address with a real button."""
    visitor = app.test_client()
    resident, _ = signed_in_client(app)
    for client, paths in ((visitor, PUBLIC), (resident, SIGNED_IN)):
        for path in paths:
            html = client.get(path, follow_redirects=True).get_data(as_text=True)
            assert script_free_form_problems(html) == [], path
