"""The languages residents can use, and which one a request is answered in.

Order: the relying party's ``ui_locales`` (kept in the session for the rest of that sign-in), then
the resident's explicit choice on this browser (the language switcher's cookie), then the choice
saved in their profile, then the browser's ``Accept-Language``, then English. The staff console is
in English only.
"""
from __future__ import annotations

from flask import Flask, current_app, has_request_context, request, session
from flask_babel import force_locale

# Code -> the language's name in that language (what the switcher shows).
LANGUAGES = {"en": "English", "af": "Afrikaans", "xh": "isiXhosa", "zu": "isiZulu", "st": "Sesotho"}
DEFAULT = "en"
COOKIE = "idp_lang"
COOKIE_MAX_AGE = 365 * 24 * 3600
UI_LOCALES_KEY = "ui_locales"
ENGLISH_ONLY_BLUEPRINTS = {"admin"}


def supported(code: str | None) -> str | None:
    """``code`` (any case, with or without a region: ``zu-ZA``) as a supported language, or None."""
    if not code or not isinstance(code, str) or len(code) > 35:
        return None
    primary = code.strip().replace("_", "-").split("-")[0].lower()
    return primary if primary in LANGUAGES else None


def first_supported(ui_locales: str | None) -> str | None:
    """The first supported language of a space-separated ``ui_locales`` list (OIDC Core 3.1.2.1)."""
    return next(filter(None, map(supported, (ui_locales or "").split()[:20])), None)


def select_locale() -> str:
    """Flask-Babel's locale selector."""
    if not has_request_context() or request.blueprint in ENGLISH_ONLY_BLUEPRINTS:
        return DEFAULT
    from idp.web.current import current_user

    chosen = supported(session.get(UI_LOCALES_KEY)) or browser_choice()
    if chosen:
        return chosen
    user = current_user()
    return supported(user.locale if user else None) or request.accept_languages.best_match(
        list(LANGUAGES)) or DEFAULT


def browser_choice() -> str | None:
    """The language chosen with the switcher on this browser, if any."""
    return supported(request.cookies.get(COOKIE))


def remember_ui_locales() -> None:
    """``before_request``: an authorization or logout request's ``ui_locales`` holds for the pages
    that follow it (sign-in, second step, consent) in this browser session."""
    if "ui_locales" in request.args and request.endpoint in ("oidc.authorize", "oidc.end_session"):
        code = first_supported(request.args.get("ui_locales"))
        if code:
            session[UI_LOCALES_KEY] = code


def choose(code: str, response) -> None:
    """The resident chose ``code`` with the switcher: remembered on this browser (and, by the caller,
    in their profile); it replaces a relying party's ``ui_locales``."""
    session.pop(UI_LOCALES_KEY, None)
    response.set_cookie(COOKIE, code, max_age=COOKIE_MAX_AGE, path="/", samesite="Lax", httponly=True,
                        secure=current_app.config["IDP_SETTINGS"].secure_cookies)


def in_language_of(user):
    """A context in which mails and texts to ``user`` are written in their saved language (for
    messages that staff or background work send on the resident's behalf)."""
    return force_locale(supported(getattr(user, "locale", None)) or DEFAULT)


def init_app(app: Flask) -> None:
    app.before_request(remember_ui_locales)
    app.jinja_env.globals["LANGUAGES"] = LANGUAGES
