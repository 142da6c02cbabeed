"""What a hosted page costs a resident on first load, and which pages a site links to: shared by
the IdP's and the departments' page checks."""
from __future__ import annotations

import re
from html import unescape
from html.parser import HTMLParser

BUDGET = 50 * 1024  # bytes of HTML plus what the page loads, uncompressed


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
    """The addresses ``html`` (a page or a style sheet) loads."""
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


def script_free_form_problems(html: str) -> list[str]:
    """Inline script handlers, and forms that cannot be sent without JavaScript."""
    problems = [marker for marker in ("onclick=", "onsubmit=", 'href="javascript:') if marker in html]
    return problems + [form[:200] for form in re.findall(r"<form\b.*?</form>", html, flags=re.S)
                       if not re.search(r"<button\b[^>]*>|<input\b[^>]*type=\"submit\"", form)]


def crawl(client, skip: re.Pattern, start: str = "/", limit: int = 30) -> list[str]:
    """The site-local pages reachable by links from ``start`` (breadth first, at most ``limit``)."""
    seen, queue = [], [start]
    while queue and len(seen) < limit:
        path = queue.pop(0)
        if path in seen:
            continue
        seen.append(path)
        html = client.get(path).get_data(as_text=True)
        queue += [unescape(href) for href in re.findall(r'href="(/(?!/)[^"]*)"', html) if not skip.search(unescape(href))]
    return seen
