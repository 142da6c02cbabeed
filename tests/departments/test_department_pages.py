"""The departments' pages are light and in the resident's language: every page a resident can reach
by links, signed out and signed in, in each of the five languages, weighs at most 50 KB on first
load, asks nothing of another site, works without JavaScript, and shows translated text."""
from __future__ import annotations

import importlib
import re
from urllib.parse import urlsplit

import pytest

from relying_party_examples.common.i18n import LANGUAGES
from tests.departments.test_complaints import report
from tests.departments.test_permits import submit
from tests.support.pages import BUDGET, crawl, first_load, script_free_form_problems

DEPARTMENTS = ["billing", "permits", "complaints", "programs"]
ACCOUNT = {"account_number": "4001234568", "account_type": "residential", "role": "owner"}
CLAIMS = {"sub": "sub-1", "name": "Thandi Nkosi", "acr": "urn:ecitizen:acr:mfa", "amr": ["pwd", "otp"],
          "sid": "sid-1", "municipal_accounts": [ACCOUNT]}
# Not pages: sign-in hand-offs to the IdP, downloads, photos and static files.
NOT_PAGES = re.compile(r"^/(login|logout)\b|static/|\.csv$|/photo$")


def department(slug: str, tmp_path):
    """The department app ``slug`` on its own database, with one record of each kind it keeps."""
    module = importlib.import_module(f"relying_party_examples.{slug}.app")
    settings = {"RP_ISSUER": "http://idp.invalid", "RP_CLIENT_ID": f"{slug}-test", "RP_CLIENT_SECRET": "s",
                "RP_DATABASE_URL": f"sqlite:///{tmp_path}/{slug}.db", "RP_BASE_URL": "http://localhost:5199",
                "RP_SECRET_KEY": "k"}
    if slug == "complaints":
        settings.update(RP_BILLING_API_URL="", RP_BILLING_API_RESOURCE="")
    app = module.create_app(settings)
    resident = app.test_client()
    with app.app_context():
        resident.set_cookie(f"{slug}_session", module.passport.start_session(CLAIMS, None))
    if slug == "permits":
        assert submit(resident, "building").status_code == 303
    if slug == "complaints":
        assert report(resident).status_code == 303
    return app, resident


@pytest.fixture(scope="module", params=DEPARTMENTS)
def site(request, tmp_path_factory):
    app, resident = department(request.param, tmp_path_factory.mktemp(request.param))
    visitor = app.test_client()
    return {"visitor": (visitor, crawl(visitor, NOT_PAGES)), "resident": (resident, crawl(resident, NOT_PAGES))}


def test_the_crawl_reaches_the_records_pages(site):
    pages = set(site["resident"][1])
    assert "/" in pages and len(pages) >= 2
    assert any(re.match(r"^/(accounts|applications|requests|programs|registrations)/?", p) for p in pages), pages


@pytest.mark.parametrize("language", list(LANGUAGES))
def test_every_page_stays_within_budget_and_loads_nothing_from_elsewhere(site, language):
    heavy, offsite = {}, {}
    for client, paths in site.values():
        for path in paths:
            weight, urls = first_load(client, path, language)
            if weight > BUDGET:
                heavy[path] = weight
            if [u for u in urls if urlsplit(u).scheme or urlsplit(u).netloc]:
                offsite[path] = urls
    assert (heavy, offsite) == ({}, {})


def test_forms_work_without_javascript(site):
    for client, paths in site.values():
        for path in paths:
            assert script_free_form_problems(client.get(path).get_data(as_text=True)) == [], path


def main_text(html: str) -> str:
    """The words of a page's main content, without markup."""
    return " ".join(re.sub(r"<[^>]*>", " ", re.search(r"<main\b.*?</main>", html, re.S)[0]).split())


@pytest.mark.parametrize("language", [code for code in LANGUAGES if code != "en"])
def test_the_pages_are_translated(site, language):
    """Each page's main content reads differently in another language than in English."""
    client, paths = site["resident"]
    for path in paths:
        english = main_text(client.get(path).get_data(as_text=True))
        translated = main_text(client.get(path, headers={"Accept-Language": language}).get_data(as_text=True))
        assert translated != english, path
