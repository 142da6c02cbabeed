"""The signed-in resident of the current request, and signing in and out at the web layer."""
from __future__ import annotations

import ipaddress
from datetime import timedelta
from functools import wraps

from flask import current_app, flash, g, redirect, request, session, url_for
from flask_babel import gettext as _

from idp import i18n
from idp.models import User, UserSession
from idp.models.types import utcnow
from idp.security import server_session
from idp.services import sessions


def client_ip() -> str:
    """The client's address, the one key for rate limits, sessions and the audit log.

    ProxyFix (``IDP_TRUST_PROXY`` hops, none by default) has already taken the address the
    trusted proxy appended to X-Forwarded-For; anything a client wrote before it is ignored. The
    address is normalised (an IPv4-mapped IPv6 address becomes the IPv4 one), and a value that is
    not an IP address falls back to the connecting address, so no header can pick a fresh key."""
    original = request.environ.get("werkzeug.proxy_fix.orig", {}).get("REMOTE_ADDR")
    for candidate in (request.remote_addr, original):
        address = _parse_ip(candidate)
        if address:
            return address
    return ""


def _parse_ip(value: str | None) -> str | None:
    try:
        address = ipaddress.ip_address((value or "").strip())
    except ValueError:
        return None
    mapped = getattr(address, "ipv4_mapped", None)
    return str(mapped or address)


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


RECENT_SIGN_IN = 600  # seconds: sensitive changes need a sign-in at most this old


def needs_recent_sign_in(back_endpoint: str | None = None):
    """Decorator for sensitive changes (sign-in details, second factors, account links): the
    session must have signed in (or stepped up) in the last ``RECENT_SIGN_IN`` seconds, and with
    the second factor when the resident has one. Otherwise the resident signs in again, or shows
    the second factor, and comes back to the page (``back_endpoint``, or this one for a GET).
    Use it under the ``signed_in`` check."""
    def decorate(view):
        @wraps(view)
        def wrapper(*args, **kwargs):
            from idp.oidc import acr as acr_rules
            from idp.services import factors

            record, user = current_session()
            back = url_for(back_endpoint) if back_endpoint else (
                request.full_path.rstrip("?") if request.method == "GET" else request.path)
            if utcnow() - record.auth_time > timedelta(seconds=RECENT_SIGN_IN):
                flash(_("For your safety, sign in again to make this change."), "error")
                return redirect(url_for("auth.login", next=back), code=303)
            if acr_rules.rank(record.acr) < acr_rules.rank(acr_rules.ACR_MFA) and factors.has_second_factor(user):
                return redirect(url_for("mfa.step_up", acr=acr_rules.ACR_MFA, next=back), code=303)
            return view(*args, **kwargs)

        return wrapper

    return decorate
