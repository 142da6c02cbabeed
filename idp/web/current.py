"""The signed-in resident of the current request, and signing in and out at the web layer."""
from __future__ import annotations

from flask import current_app, g, request, session

from idp import i18n
from idp.models import User, UserSession
from idp.security import server_session
from idp.services import sessions


def client_ip() -> str:
    """The client's address (ProxyFix, when configured, has already applied X-Forwarded-For)."""
    return request.remote_addr or ""


def current_session() -> tuple[UserSession, User] | None:
    """The live (session, user) pair for this request, or None. Cached per request."""
    if "idp_auth" not in g:
        found = sessions.load_active(session.get("sid"))
        if found is None and session.get("sid"):
            session.pop("sid", None)
        g.idp_auth = found
    return g.idp_auth


def current_user() -> User | None:
    found = current_session()
    return found[1] if found else None


def sign_in(user: User, *, amr: list[str], acr: str) -> UserSession:
    """Start a session for ``user`` under a fresh cookie id (no fixation)."""
    settings = current_app.config["IDP_SETTINGS"]
    if session.get("sid"):  # signing in again (re-authentication): the old session ends
        sessions.end(session["sid"])
    keep = {k: v for k, v in session.items() if k not in ("sid", "csrf_token") and not k.startswith("_")}
    server_session.rotate()
    session.clear()
    session.update(keep)
    chosen = i18n.browser_choice()
    if chosen and user.locale != chosen:  # the language picked before signing in is remembered
        user.locale = chosen
    record = sessions.start(user, amr=amr, acr=acr, lifetime_hours=settings.session_lifetime_hours,
                            user_agent=request.user_agent.string or "", ip_address=client_ip())
    session["sid"] = record.sid
    g.idp_auth = (record, user)
    return record


def sign_out() -> UserSession | None:
    """End the IdP session and destroy the cookie's record."""
    ended = sessions.end(session["sid"]) if session.get("sid") else None
    server_session.destroy()
    g.idp_auth = None
    return ended
