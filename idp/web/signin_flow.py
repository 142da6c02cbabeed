"""The steps between "password right" and "signed in": the second-factor challenge kept in the
session, step-up of a live session, the browser cookie, and finishing a sign-in honestly (amr/acr)."""
from __future__ import annotations

import secrets
import time

from flask import after_this_request, current_app, request, session

from idp.extensions import db
from idp.models import User
from idp.oidc import acr as acr_rules
from idp.security import server_session
from idp.services import devices, factors, security_mail, sessions
from idp.web import current

CHALLENGE_TTL = 600
SIGNIN, STEP_UP = "signin", "stepup"


def device_cookie_name() -> str:
    return "__Host-idp_device" if current_app.config["IDP_SETTINGS"].secure_cookies else "idp_device"


def device_id() -> str:
    """This browser's id, set on it (for 400 days) if it has none yet."""
    existing = request.cookies.get(device_cookie_name(), "")
    if 20 <= len(existing) <= 100:
        return existing
    new_id = devices.new_device_id()
    secure = current_app.config["IDP_SETTINGS"].secure_cookies

    @after_this_request
    def _set(response):
        response.set_cookie(device_cookie_name(), new_id, max_age=400 * 86400, httponly=True, secure=secure,
                            samesite="Lax", path="/")
        return response

    return new_id


def begin(user: User, *, mode: str, first_amr: list[str], next_url: str, acr: str | None = None) -> None:
    """Remember that ``user`` passed the first step and must now show a second factor. A sign-in
    half-way through gets a fresh cookie id, so an id planted before it cannot follow it."""
    if mode == SIGNIN:
        server_session.rotate()
    session["mfa"] = {"user_id": user.id, "mode": mode, "amr": list(first_amr), "next": next_url,
                      "acr": acr, "started": time.time(), "txn": secrets.token_urlsafe(16)}


def pending() -> tuple[dict, User] | None:
    """The challenge in progress and its resident, or None (none, expired, or account no longer active)."""
    state = session.get("mfa")
    if not state:
        return None
    user = db.session.get(User, state["user_id"])
    if time.time() - state["started"] > CHALLENGE_TTL or user is None or not user.is_active:
        session.pop("mfa", None)
        return None
    if state["mode"] == STEP_UP:
        found = current.current_session()
        if found is None or found[1].id != user.id:
            session.pop("mfa", None)
            return None
    return state, user


def allowed_methods(state: dict, user: User) -> list[str]:
    return factors.methods_for(user, state.get("acr"))


def finish_first_factor(user: User, *, amr: list[str], next_url: str) -> str | None:
    """After a password (or a passkey alone): sign in now and return where to go, or start the
    second-factor challenge and return None. A trusted browser skips the second factor, and the
    session then honestly says password only."""
    needs_second = "pwd" in amr and factors.has_second_factor(user) and not devices.is_trusted(user, device_id())
    if needs_second:
        begin(user, mode=SIGNIN, first_amr=amr, next_url=next_url)
        return None
    _sign_in(user, amr)
    return next_url


def complete(user: User, state: dict, factor_amr: list[str], *, trust: bool = False) -> str:
    """The second factor was right: finish the sign-in or step-up; returns where to go."""
    amr = sorted(set(state["amr"]) | set(factor_amr) | {"mfa"})
    session.pop("mfa", None)
    if state["mode"] == STEP_UP:
        record = current.current_session()[0]
        sessions.elevate(record, amr=amr, acr=acr_rules.for_amr(amr))
        server_session.rotate()  # a change of privilege gets a fresh cookie id
    else:
        _sign_in(user, amr)
    days = current_app.config["IDP_SETTINGS"].trust_browser_days
    if trust and days:
        devices.trust(user, device_id(), days)
    return state["next"]


def _sign_in(user: User, amr: list[str]) -> None:
    current.sign_in(user, amr=amr, acr=acr_rules.for_amr(amr))
    agent = request.user_agent.string or ""
    if devices.record_sign_in(user, device_id(), agent):
        security_mail.send(user, "new_device", ip=current.client_ip(), detail=_describe(agent))


def _describe(agent: str) -> str:
    """A short, readable browser description for a notice (never the whole header)."""
    text = " ".join(agent.split())[:120]
    return text or "unknown browser"
