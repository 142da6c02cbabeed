"""Light pages: every hosted page, in every language, weighs at most 50 KB on first load (the HTML
and everything it loads, counted uncompressed, so compression only makes it lighter), asks nothing
of another site, works as plain HTML forms, and its static files are cached for a year."""
from __future__ import annotations

import re
from html.parser import HTMLParser
from urllib.parse import urlsplit

import pytest

from idp.i18n import LANGUAGES
from tests.integration.test_pages_account import signed_in_client

BUDGET = 50 * 1024
PUBLIC = ["/", "/login", "/register", "/forgot-password", "/verify-email/resend", "/services", "/help", "/contact",
          "/signed-out", "/no/such/page"]
SIGNED_IN = ["/account/", "/account/dashboard", "/account/name", "/account/email", "/account/password",
             "/account/services", "/account/notifications", "/account/close", "/account/security",
             "/account/security/app", "/account/security/phone", "/account/security/passkeys/new",
             "/account/municipal/", "/account/municipal/link", "/account/municipal/request"]


class Resources(HTMLParser):
    """Every address a page makes the browser fetch (styles, scripts, images, icons, frames)."""

    def __init__(self):
        super().__init__()
        self.urls: list[str] = []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag in ("script", "img", "iframe", "source", "audio", "video", "embed") and attrs.get("src"):
            self.urls.append(attrs["src"])
        if tag == "link" and attrs.get("href") and {"stylesheet", "icon", "preload", "manifest"} & set(
                (attrs.get("rel") or "").split()):
            self.urls.append(attrs["href"])


def resources_of(html: str) -> list[str]:
    parser = Resources()
    parser.feed(html)
    return parser.urls + re.findall(r"url\(([^)]+)\)", html)


def first_load(client, path: str, language: str) -> tuple[int, list[str]]:
    """Bytes of the page and of what it loads, and the addresses of what it loads."""
    page = client.get(path, headers={"Accept-Language": language}, follow_redirects=True)
    assert page.status_code in (200, 404), (path, page.status_code)
    html = page.get_data(as_text=True)
    assert f'<html lang="{language}">' in html, path
    total, urls = len(page.data), resources_of(html)
    for url in urls:
        asset = client.get(url)
        assert asset.status_code == 200, url
        total += len(asset.data)
        urls += [u for u in resources_of(asset.get_data(as_text=True)) if u not in urls] if url.endswith(".css") else []
    return total, urls


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
            assert "onclick=" not in html and "onsubmit=" not in html and 'href="javascript:' not in html, path
            for form in re.findall(r"<form\b.*?</form>", html, flags=re.S):
                assert re.search(r"<button\b[^>]*>|<input\b[^>]*type=\"submit\"", form), (path, form[:200])
