"""Translation coverage: every string a resident sees is marked for translation, the template
(messages.pot) is current, and each of the four catalogues translates every entry, keeping its
placeholders and markup."""
from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from idp.i18n import LANGUAGES
from tests.support.catalogues import catalogue, translation_problems

ROOT = Path(__file__).parents[2]
TEMPLATES = ROOT / "idp" / "templates"
TRANSLATIONS = ROOT / "idp" / "translations"
STAFF_ONLY = {"admin"}  # the staff console is in English only

JINJA = re.compile(r"\{#.*?#\}|\{%.*?%\}|\{\{.*?\}\}", re.S)
TEXT_ATTRIBUTES = re.compile(r'\b(?:aria-label|placeholder|title|alt|aria-description)="([^"]*)"')


def resident_templates() -> list[Path]:
    return sorted(p for p in TEMPLATES.rglob("*") if p.suffix in (".html", ".txt")
                  and p.relative_to(TEMPLATES).parts[0] not in STAFF_ONLY)


def unmarked_text(source: str) -> list[str]:
    """Words left in a template once Jinja blocks, scripts, styles and tags are taken out."""
    source = re.sub(r"<script.*?</script>|<style.*?</style>", " ", source, flags=re.S)
    without_jinja = JINJA.sub(" ", source)
    found = [m.group(1) for m in TEXT_ATTRIBUTES.finditer(without_jinja) if re.search(r"[A-Za-z]{2,}", m.group(1))]
    text = re.sub(r"<[^>]*>", " ", without_jinja, flags=re.S)
    found += [chunk.strip() for chunk in re.split(r"\s{2,}|\n", text) if re.search(r"[A-Za-z]{2,}", chunk)]
    return found


def test_the_scanner_finds_unmarked_text():
    assert unmarked_text('<p>Hello</p>{{ _("Marked") }}<input aria-label="Search">') == ["Search", "Hello"]
    assert unmarked_text('<p>{{ _("Marked") }}</p>{% if x %}<b>{{ name }}</b>{% endif %}') == []


@pytest.mark.parametrize("path", resident_templates(), ids=lambda p: str(p.relative_to(TEMPLATES)))
def test_every_visible_string_in_a_template_is_marked_for_translation(path):
    assert unmarked_text(path.read_text(encoding="utf-8")) == []


def test_the_message_template_is_current(tmp_path):
    """``pybabel extract`` (as in the README) gives exactly the committed messages.pot entries."""
    fresh = tmp_path / "messages.pot"
    subprocess.run([str(Path(sys.executable).with_name("pybabel")), "extract", "-F", "babel.cfg", "-k", "_l",
                    "-k", "lazy_gettext", "--no-location", "--sort-output", "-o", str(fresh), "."],
                   cwd=ROOT, check=True, capture_output=True)
    committed = {m.id for m in catalogue(TRANSLATIONS / "messages.pot") if m.id}
    current = {m.id for m in catalogue(fresh) if m.id}
    assert current - committed == set(), "new strings: run the extract command in the README"
    assert committed - current == set(), "strings no longer used: run the extract command in the README"


@pytest.mark.parametrize("code", [c for c in LANGUAGES if c != "en"])
def test_each_catalogue_translates_every_entry_keeping_placeholders_and_markup(code):
    problems = translation_problems(TRANSLATIONS / "messages.pot", TRANSLATIONS / code / "LC_MESSAGES" / "messages.po")
    assert problems == [], f"{len(problems)} problems in {code}:\n" + "\n".join(problems[:30])


def test_every_language_has_a_catalogue_and_nothing_else_is_there():
    assert {p.name for p in TRANSLATIONS.iterdir() if p.is_dir()} == set(LANGUAGES) - {"en"}
