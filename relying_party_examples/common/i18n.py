"""The languages of the department pages, and which one a request is answered in (Flask-Babel).

Order: the language the resident chose with this department's switcher (kept in the department's
session), then the ``locale`` claim eCitizen Passport gave at sign-in, then the browser's
``Accept-Language``, then English. Every department shares one catalogue,
``relying_party_examples/translations``. JSON APIs, logs and the staff CLI stay in English.
"""
from __future__ import annotations

from datetime import date, datetime
from pathlib import Path

from babel.dates import format_date, format_datetime
from flask import Flask, g, has_request_context, request, session
from flask_babel import Babel, get_locale

# Code -> the language's name in that language (what the switcher shows); the IdP offers the same.
LANGUAGES = {"en": "English", "af": "Afrikaans", "xh": "isiXhosa", "zu": "isiZulu", "st": "Sesotho"}
DEFAULT = "en"
SESSION_KEY = "lang"
TRANSLATIONS = Path(__file__).resolve().parent.parent / "translations"


def supported(code) -> str | None:
    """``code`` (any case, with or without a region: ``zu-ZA``) as a supported language, or None."""
    if not code or not isinstance(code, str) or len(code) > 35:
        return None
    primary = code.strip().replace("_", "-").split("-")[0].lower()
    return primary if primary in LANGUAGES else None


def select_locale() -> str:
    """Flask-Babel's locale selector."""
    if not has_request_context():
        return DEFAULT
    chosen = supported(session.get(SESSION_KEY))
    if chosen:
        return chosen
    resident = g.get("resident") or {}
    return supported(resident.get("locale")) or browser_language() or DEFAULT


def browser_language() -> str | None:
    """The supported language the browser's ``Accept-Language`` ranks highest. A regional tag
    counts for its language ("xh-ZA" is isiXhosa), and by its own weight: "xh-ZA, af;q=0.5" is
    isiXhosa, where an exact-match-first search would pick Afrikaans."""
    for value, quality in request.accept_languages:  # highest quality first
        if quality > 0 and supported(value):
            return supported(value)
    return None


def current() -> str:
    """The language of this request's pages, as a code of :data:`LANGUAGES`."""
    return supported(str(get_locale() or "")) or DEFAULT


def local_date(value, pattern: str = "d MMMM y") -> str:
    """A date or time written out in the page's language (month and day names included), with a
    CLDR ``pattern``. A datetime keeps its own time zone (naive ones are UTC, as stored)."""
    if value is None:
        return ""
    if isinstance(value, datetime):
        return format_datetime(value, pattern, tzinfo=value.tzinfo, locale=current())
    if isinstance(value, date):
        return format_date(value, pattern, locale=current())
    return format_date(date.fromisoformat(f"{value}-01" if len(value) == 7 else value), pattern, locale=current())


def labelled(labels: dict, value, capitalize: bool = True) -> str:
    """A stored value (a status, a kind …) as residents read it: its translated label, or the
    value itself, readable, when it has none."""
    if value in labels:
        return str(labels[value])
    readable = str(value or "").replace("_", " ")
    return readable.capitalize() if capitalize else readable


def init_app(app: Flask) -> None:
    """Flask-Babel for ``app`` (its own instance, so that several apps can live in one process),
    with the selector above; templates get ``LANGUAGES``, ``current_language()`` and ``|local_date``."""
    app.config.setdefault("BABEL_TRANSLATION_DIRECTORIES", str(TRANSLATIONS))
    app.config.setdefault("BABEL_DEFAULT_LOCALE", DEFAULT)
    Babel(app, locale_selector=select_locale)
    app.jinja_env.globals.update(LANGUAGES=LANGUAGES, current_language=current)
    app.jinja_env.filters.update(local_date=local_date)
