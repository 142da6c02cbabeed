"""The departments' pages in the five languages: every text in the templates is marked for
translation, the committed catalogue template is up to date, the language is chosen in the right
order (switcher, then the ``locale`` claim, then Accept-Language, then English), the switcher is
safe, and the IdP is asked for the same language (``ui_locales``)."""
from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
from babel.messages.catalog import Catalog
from babel.messages.frontend import CommandLineInterface
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po

from relying_party_examples.billing.app import create_app, passport
from relying_party_examples.common.i18n import LANGUAGES
from tests.support.catalogues import translation_problems

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "relying_party_examples"
ISSUER = "http://idp.invalid"
METADATA = {"issuer": ISSUER, "authorization_endpoint": f"{ISSUER}/authorize",
            "end_session_endpoint": f"{ISSUER}/logout"}


# --- every resident-visible text in the templates is marked ---------------------------------------
def department_templates() -> list[Path]:
    return sorted(path for path in EXAMPLES.glob("*/templates/**/*.html") if "hello_department" not in path.parts)


JINJA_COMMENT = re.compile(r"\{#.*?#\}", re.S)
SCRIPT_OR_STYLE = re.compile(r"<(script|style)\b.*?</\1\s*>", re.S | re.I)
JINJA = re.compile(r"\{\{.*?\}\}|\{%.*?%\}", re.S)
TAG = re.compile(r"<[^>]*>", re.S)
ENTITY = re.compile(r"&#?\w+;")
WORDS = re.compile(r"[A-Za-z]{2,}")
TEXT_ATTRIBUTE = re.compile(r"\s(aria-label|placeholder|title|alt)\s*=\s*(\"[^\"]*\"|'[^']*')", re.I)


def unmarked(source: str) -> list[str]:
    """What a template shows residents outside ``{{ _('…') }}``: left-over words, and text
    attributes whose value is not an expression."""
    source = SCRIPT_OR_STYLE.sub(" ", JINJA_COMMENT.sub(" ", source))
    found = [f'{name}="{value[1:-1]}"' for name, value in TEXT_ATTRIBUTE.findall(source)
             if WORDS.search(JINJA.sub(" ", value)) or (value[1:-1].strip() and "_(" not in value)]
    text = ENTITY.sub(" ", TAG.sub(" ", JINJA.sub(" ", source)))
    return found + [line.strip() for line in text.splitlines() if WORDS.search(line)]


def test_the_templates_are_found():
    names = {path.relative_to(EXAMPLES).as_posix() for path in department_templates()}
    assert "common/templates/passport/base.html" in names and "billing/templates/billing/account.html" in names
    assert {name.split("/")[0] for name in names} == {"common", "billing", "permits", "complaints", "programs"}


@pytest.mark.parametrize("template", department_templates(), ids=lambda path: path.relative_to(EXAMPLES).as_posix())
def test_every_text_of_a_template_is_marked_for_translation(template):
    assert unmarked(template.read_text(encoding="utf-8")) == []


def test_the_check_finds_unmarked_text():
    assert unmarked('<p>Hello {{ name }}</p><img alt="A photo">') == ['alt="A photo"', "Hello"]
    assert unmarked("<p>{{ _('Hello %(name)s', name=name) }}</p>{# a note #}<b aria-label=\"{{ _('x') }}\">") == []


# --- the committed template is what extraction gives today ---------------------------------------
def msgids(pot: Path) -> set:
    with pot.open("rb") as handle:
        return {message.id for message in read_po(handle) if message.id}


def test_messages_pot_is_up_to_date(tmp_path):
    fresh = tmp_path / "messages.pot"
    CommandLineInterface().run(["pybabel", "-q", "extract", "-F", str(EXAMPLES / "babel.cfg"), "-k", "_l",
                                "-k", "lazy_gettext", "--no-location", "--sort-output", "-o", str(fresh), str(ROOT)])
    committed = EXAMPLES / "translations" / "messages.pot"
    extracted = msgids(fresh)
    assert len(extracted) > 100  # the departments' pages, not an empty extraction
    missing, stale = extracted - msgids(committed), msgids(committed) - extracted
    assert (missing, stale) == (set(), set()), "run pybabel extract again (see relying_party_examples/babel.cfg)"


@pytest.mark.parametrize("code", [code for code in LANGUAGES if code != "en"])
def test_each_catalogue_translates_every_entry_keeping_placeholders_and_markup(code):
    translations = EXAMPLES / "translations"
    problems = translation_problems(translations / "messages.pot", translations / code / "LC_MESSAGES" / "messages.po")
    assert problems == [], f"{len(problems)} problems in {code}:\n" + "\n".join(problems[:30])


def test_every_language_has_a_catalogue_and_nothing_else_is_there():
    assert {p.name for p in (EXAMPLES / "translations").iterdir() if p.is_dir()} == set(LANGUAGES) - {"en"}


# --- which language a page is in -----------------------------------------------------------------
@pytest.fixture
def app(tmp_path):
    return create_app({"RP_ISSUER": ISSUER, "RP_CLIENT_ID": "billing-test", "RP_CLIENT_SECRET": "s",
                       "RP_DATABASE_URL": f"sqlite:///{tmp_path}/billing.db", "RP_BASE_URL": "http://localhost:5199",
                       "RP_SECRET_KEY": "k"})


@pytest.fixture
def idp_metadata(app, monkeypatch):
    with app.app_context():
        monkeypatch.setattr(type(passport.client), "load_server_metadata", lambda self: METADATA)


def signed_in(app, **claims):
    client = app.test_client()
    with app.app_context():
        client.set_cookie("billing_session", passport.start_session(
            {"sub": "sub-1", "name": "Thandi Nkosi", "acr": "urn:ecitizen:acr:password", "sid": "sid-1",
             "municipal_accounts": [], **claims}, "id-token-placeholder"))
    return client


def html_lang(client, path="/", **headers) -> str:
    return re.search(r'<html lang="([^"]+)">', client.get(path, headers=headers).get_data(as_text=True))[1]


def csrf(client) -> str:
    return re.search(r'name="csrf_token" value="([^"]+)"', client.get("/").get_data(as_text=True))[1]


def choose(client, lang, next_path="/"):
    return client.post("/language", data={"csrf_token": csrf(client), "lang": lang, "next": next_path})


def test_english_without_any_preference(app):
    assert html_lang(app.test_client()) == "en"
    assert html_lang(app.test_client(), **{"Accept-Language": "fr-FR, de;q=0.8"}) == "en"


def test_accept_language_picks_the_best_supported_language(app):
    assert html_lang(app.test_client(), **{"Accept-Language": "zu"}) == "zu"
    assert html_lang(app.test_client(), **{"Accept-Language": "fr, xh-ZA;q=0.9, af;q=0.5"}) == "xh"


def test_the_switchers_choice_beats_accept_language(app):
    http = app.test_client()
    assert choose(http, "af").status_code == 303
    with http.session_transaction() as flow:
        assert flow["lang"] == "af"
    assert html_lang(http, **{"Accept-Language": "zu"}) == "af"


def test_the_locale_claim_beats_accept_language_and_the_switcher_beats_the_claim(app):
    http = signed_in(app, locale="xh-ZA")
    assert html_lang(http, **{"Accept-Language": "zu"}) == "xh"
    choose(http, "st")
    assert html_lang(http, **{"Accept-Language": "zu"}) == "st"
    assert html_lang(signed_in(app, locale="fr"), **{"Accept-Language": "zu"}) == "zu"  # not one of ours


def test_the_switcher_is_on_every_page_and_marks_the_current_language(app):
    http = app.test_client()
    page = http.get("/?tab=2", headers={"Accept-Language": "zu"}).get_data(as_text=True)
    form = re.search(r'<form method="post" action="/language".*?</form>', page, re.S)[0]
    assert re.search(r'name="csrf_token" value="[^"]+"', form) and 'name="next" value="/?tab=2"' in form
    buttons = re.findall(r'<button type="submit" name="lang" value="(\w+)" lang="(\w+)"([^>]*)>([^<]+)</button>', form)
    assert [(value, lang, name) for value, lang, _, name in buttons] == [(c, c, n) for c, n in LANGUAGES.items()]
    assert [value for value, _, attributes, _ in buttons if 'aria-current="true"' in attributes] == ["zu"]


def test_after_a_post_the_switcher_returns_to_a_page_that_answers_get(app):
    http = signed_in(app, municipal_accounts=[{"account_number": "4001234568", "account_type": "residential",
                                               "role": "owner"}])
    page = http.get("/accounts/4001234568").get_data(as_text=True)
    assert 'action="/language"' in page and 'name="next" value="/accounts/4001234568"' in page
    fields = dict(re.findall(r'name="(csrf_token|payment_key)" value="([^"]+)"', page))
    refused = http.post("/accounts/4001234568/pay", data={**fields, "amount": "ten"})
    assert refused.status_code == 400
    assert 'name="next" value="/accounts/4001234568"' in refused.get_data(as_text=True)


def test_a_language_that_is_not_offered_is_refused_and_nothing_is_stored(app):
    http = app.test_client()
    for bad in ("fr", "", "ZU", "en-GB", "zu;"):
        assert choose(http, bad).status_code == 400
    assert http.post("/language", data={"csrf_token": csrf(http)}).status_code == 400
    with http.session_transaction() as flow:
        assert "lang" not in flow
    assert http.post("/language", data={"lang": "zu"}).status_code == 400  # no CSRF token
    with http.session_transaction() as flow:
        assert "lang" not in flow


@pytest.mark.parametrize("next_path, target", [
    ("//evil.example", "/"), ("//evil.example/path", "/"), ("/\\evil.example", "/"),
    ("https://evil.example/", "/"), ("evil.example", "/"), ("", "/"),
    ("/accounts/4001234568?tab=2", "/accounts/4001234568?tab=2"),
])
def test_the_switcher_goes_back_to_local_pages_only(app, next_path, target):
    response = choose(app.test_client(), "zu", next_path)
    assert response.status_code == 303 and response.headers["Location"] == target


# --- the IdP's pages follow -----------------------------------------------------------------------
def authorization_query(client, path="/login", **headers) -> dict:
    response = client.get(path, headers=headers)
    assert response.status_code == 302 and response.headers["Location"].startswith(f"{ISSUER}/authorize?")
    return parse_qs(urlsplit(response.headers["Location"]).query)


def test_the_authorization_request_carries_the_pages_language(app, idp_metadata):
    assert authorization_query(app.test_client())["ui_locales"] == ["en"]
    assert authorization_query(app.test_client(), **{"Accept-Language": "zu-ZA"})["ui_locales"] == ["zu"]
    http = app.test_client()
    choose(http, "st")
    query = authorization_query(http, "/login?acr=mfa", **{"Accept-Language": "zu"})
    assert query["ui_locales"] == ["st"] and query["acr_values"] == ["urn:ecitizen:acr:mfa"]


def test_signing_out_keeps_the_language_and_tells_the_idp(app, idp_metadata):
    http = signed_in(app)
    choose(http, "af")
    response = http.post("/logout", data={"csrf_token": csrf(http)})
    assert response.headers["Location"].startswith(f"{ISSUER}/logout?")
    assert parse_qs(urlsplit(response.headers["Location"]).query)["ui_locales"] == ["af"]
    assert html_lang(http) == "af"


# --- marked texts are translated -----------------------------------------------------------------
def test_a_catalogue_translates_templates_lazy_labels_and_python_messages(app, tmp_path):
    catalog = Catalog(locale="zu")
    for text in ("Your accounts", "Owner", "Sign out", "Language", "Balance due: %(amount)s"):
        catalog.add(text, f"[zu] {text}")
    (tmp_path / "zu" / "LC_MESSAGES").mkdir(parents=True)
    with (tmp_path / "zu" / "LC_MESSAGES" / "messages.mo").open("wb") as handle:
        write_mo(handle, catalog)
    app.extensions["babel"].translation_directories = [str(tmp_path)]
    http = signed_in(app, municipal_accounts=[{"account_number": "4001234568", "account_type": "residential",
                                               "role": "owner"}])
    page = http.get("/", headers={"Accept-Language": "zu"}).get_data(as_text=True)
    assert "<h1>[zu] Your accounts</h1>" in page and "<td>[zu] Owner</td>" in page
    assert "[zu] Sign out" in page and "[zu] Language" in page
    account = http.get("/accounts/4001234568", headers={"Accept-Language": "zu"}).get_data(as_text=True)
    assert "[zu] Balance due: R" in account
    english = http.get("/").get_data(as_text=True)
    assert "<h1>Your accounts</h1>" in english and "<td>Owner</td>" in english
