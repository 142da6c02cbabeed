"""WCAG 2.2 AA on the departments' pages: axe-core runs in headless Chromium over each kind of page
of every example department a resident can reach by links, signed in with form errors shown in
each of the five languages, and signed out and the error page in English, and finds nothing."""
from __future__ import annotations

import json
import threading

import pytest
from werkzeug.serving import make_server

from relying_party_examples.common.i18n import LANGUAGES
from tests.departments.test_department_pages import DEPARTMENTS, NOT_PAGES, department
from tests.e2e.test_accessibility import AXE, violations
from tests.support.browser import launch_chromium
from tests.support.pages import crawl
from tests.support.smtp import free_port

pytestmark = pytest.mark.e2e

def one_of_each_kind(paths: list[str]) -> list[str]:
    """The first of the pages that share a template (``/programs/a`` and ``/programs/b``)."""
    kinds = {}
    for path in paths:
        kinds.setdefault((path.count("/"), path.split("/")[1]), path)
    return list(kinds.values())


# Pages whose form, sent empty, comes back with errors to check as well.
EMPTY_FORMS = {"permits": "/apply", "complaints": "/report"}


@pytest.fixture(scope="module")
def sites(tmp_path_factory):
    """Each department served over HTTP, with its pages and a signed-in resident's cookie."""
    served = []
    for slug in DEPARTMENTS:
        app, resident = department(slug, tmp_path_factory.mktemp(slug))
        port = free_port()
        server = make_server("127.0.0.1", port, app, threaded=True)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        served.append({"slug": slug, "url": f"http://127.0.0.1:{port}", "server": server,
                       "cookie": {"name": f"{slug}_session", "value": resident.get_cookie(f"{slug}_session").value,
                                  "url": f"http://127.0.0.1:{port}"},
                       "visitor": one_of_each_kind(crawl(app.test_client(), NOT_PAGES)) + ["/no/such/page"],
                       "resident": one_of_each_kind(crawl(resident, NOT_PAGES))})
    yield served
    for site in served:
        site["server"].shutdown()


@pytest.mark.parametrize("language", list(LANGUAGES))
def test_every_department_page_passes_axe_in_each_language(sites, language):
    assert AXE.is_file(), "axe-core is missing: run tests/setup_browser.sh"
    from playwright.sync_api import sync_playwright

    problems = {}
    with sync_playwright() as playwright:
        browser = launch_chromium(playwright)
        for site in sites:
            context = browser.new_context(bypass_csp=True, extra_http_headers={"Accept-Language": language})
            page = context.new_page()

            def check(name: str) -> None:
                assert page.locator("html").get_attribute("lang") == language, name
                problems[f"{site['slug']} {name}"] = violations(page)

            for path in site["visitor"] if language == "en" else []:
                page.goto(site["url"] + path)
                check(path)
            context.add_cookies([site["cookie"]])
            for path in site["resident"]:
                page.goto(site["url"] + path)
                check(path + " (signed in)")
            if site["slug"] in EMPTY_FORMS:
                page.goto(site["url"] + EMPTY_FORMS[site["slug"]])
                page.locator("main form[method=post] button[type=submit]").first.click()
                page.wait_for_load_state()
                check(EMPTY_FORMS[site["slug"]] + " with errors")
            context.close()
        browser.close()
    assert len(problems) >= 13
    failing = {name: found for name, found in problems.items() if found}
    assert failing == {}, json.dumps(failing, indent=1)[:4000]
