"""The resident's dashboard: a card per department they use, filled from each department's
summary endpoint (``<api resource>/residents/<sub>/summary``). The IdP asks with an access token
of its own whose ``aud`` is that department's API; departments are asked in parallel with a short
timeout, and a slow or failing one only makes its own card say "not available right now"."""
from __future__ import annotations

import logging
import uuid
from concurrent.futures import ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from urllib.parse import quote, urlsplit

import requests
from flask import current_app
from sqlalchemy import or_

from idp.extensions import db
from idp.models import Client, Consent, Token, User
from idp.services import audit, tokens

log = logging.getLogger(__name__)
# The IdP's own name as a caller of department APIs (it is the issuer, not a registered client).
DASHBOARD_CALLER = "ecitizen-passport-dashboard"
MAX_ITEMS = 20


@dataclass
class Card:
    """One department's card: ``available`` is False when it did not answer in time or properly."""
    name: str
    available: bool = False
    items: list[dict] = field(default_factory=list)
    count_open: int = 0


def departments_used(user: User) -> list[Client]:
    """Active clients with an API that the resident signed in to (and has not disconnected)."""
    used = db.select(Token.client_id).where(Token.user_id == user.id, Token.revoked_at.is_(None))
    agreed = db.select(Consent.client_id).where(Consent.user_id == user.id)
    return list(db.session.scalars(
        db.select(Client).where(Client.api_resource.is_not(None), Client.disabled.is_(False),
                                or_(Client.client_id.in_(used), Client.client_id.in_(agreed)))
        .order_by(Client.name)))


def _service_token(audience: str) -> str:
    """An access token for one department's API, reused (through the store) until shortly before
    it expires; recorded like every token so the department can introspect it."""
    store = current_app.extensions["idp.store"]
    key = f"dashboard-token:{audience}"
    cached = store.get(key)
    if cached:
        return cached
    lifetime = current_app.config["IDP_SETTINGS"].access_token_lifetime
    context = {"audience": audience}
    token = tokens.access_token(DASHBOARD_CALLER, None, "", context)
    audit.record("token.issued", client_id=DASHBOARD_CALLER, grant_type="internal", commit=False)
    tokens.save({"access_token": token, "expires_in": lifetime}, client_id=DASHBOARD_CALLER, user_id=None,
                scope="", context=context, grant_id=uuid.uuid4().hex)
    store.set(key, token, max(1, lifetime - 30))
    return token


def _safe_link(value) -> str | None:
    if not isinstance(value, str) or len(value) > 2000:
        return None
    return value if urlsplit(value).scheme in ("https", "http") else None


def _clean_item(item) -> dict | None:
    """What a card shows of one item: short texts and an http(s) link only (departments are
    trusted, but their answers are still data, never markup or script URLs)."""
    if not isinstance(item, dict) or not isinstance(item.get("title"), str):
        return None
    shown = {name: str(item[name])[:200] for name in ("title", "status", "amount_due", "due_on", "reference")
             if isinstance(item.get(name), str | int | float) and not isinstance(item.get(name), bool)}
    shown["url"] = _safe_link(item.get("url"))
    return shown


def _ask(url: str, token: str, timeout: float) -> dict | None:
    try:
        answer = requests.get(url, headers={"Authorization": f"Bearer {token}", "Accept": "application/json"},
                              timeout=timeout, allow_redirects=False)
        if answer.status_code == 200:
            return answer.json()
        log.warning("a department summary answered %s", answer.status_code)
    except (requests.RequestException, ValueError) as exc:
        log.warning("a department summary failed: %s", type(exc).__name__)
    return None


def cards(user: User) -> list[Card]:
    """The resident's cards, one per department used; never waits longer than the timeout."""
    departments = departments_used(user)
    if not departments:
        return []
    timeout = current_app.config["IDP_SETTINGS"].dashboard_timeout
    calls = [(f"{d.api_resource.rstrip('/')}/residents/{quote(user.sub, safe='')}/summary",
              _service_token(d.api_resource)) for d in departments]
    pool = ThreadPoolExecutor(max_workers=min(8, len(calls)), thread_name_prefix="dashboard")
    futures = [pool.submit(_ask, url, token, timeout) for url, token in calls]
    # requests' timeout is per socket wait; a department trickling bytes is cut off here.
    wait(futures, timeout=timeout + 0.5)
    pool.shutdown(wait=False, cancel_futures=True)
    answers = [f.result() if f.done() else None for f in futures]
    result = []
    for department, answer in zip(departments, answers):
        card = Card(department.name)
        if isinstance(answer, dict) and isinstance(answer.get("items"), list):
            card.available = True
            card.items = [shown for shown in map(_clean_item, answer["items"][:MAX_ITEMS]) if shown]
            count = answer.get("count_open")
            card.count_open = count if isinstance(count, int) and not isinstance(count, bool) else len(card.items)
        result.append(card)
    return result
