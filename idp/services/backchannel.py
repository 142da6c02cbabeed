"""OpenID Connect Back-Channel Logout 1.0: when an IdP session ends (sign-out, reset, lock, staff
action), every client that received tokens for it and registered a ``backchannel_logout_uri`` is
sent a signed logout token. Notices are stored first and delivered by the background delivery
thread, retried with backoff when the client does not answer 200, and shown to staff."""
from __future__ import annotations

import secrets
import time
from datetime import timedelta

import requests
from flask import current_app
from joserfc import jwt
from sqlalchemy import func

from idp.extensions import db
from idp.models import AuthorizationCode, Client, LogoutNotice, Token, User, UserSession
from idp.models.types import utcnow
from idp.services import delivery_worker
from idp.services.keys import keyring

EVENT = "http://schemas.openid.net/event/backchannel-logout"
BACKOFF = (10, 30, 120, 600, 1800, 3600)  # seconds after each failed attempt; then it is given up
LEASE = timedelta(minutes=2)
TIMEOUT = 5
TOKEN_LIFETIME = 120


def notify_sessions_ended(sids: list[str], *, only_client: str | None = None) -> int:
    """Queue a notice for every client (or only ``only_client``) with a back-channel URI that was
    issued tokens or codes in one of these sessions; returns how many were queued."""
    if not sids:
        return 0
    with_tokens = db.select(Token.client_id, Token.sid).where(Token.sid.in_(sids))
    with_codes = db.select(AuthorizationCode.client_id, AuthorizationCode.sid).where(AuthorizationCode.sid.in_(sids))
    pairs = {(client_id, sid) for client_id, sid in db.session.execute(with_tokens.union(with_codes))
             if only_client is None or client_id == only_client}
    if not pairs:
        return 0
    targets = {c.client_id for c in db.session.scalars(db.select(Client).where(
        Client.client_id.in_({client_id for client_id, _ in pairs}), Client.backchannel_logout_uri.is_not(None),
        Client.disabled.is_(False)))}
    subs = dict(db.session.execute(db.select(UserSession.sid, User.sub).join(User, UserSession.user_id == User.id)
                                   .where(UserSession.sid.in_(sids))).all())
    now = utcnow()
    notices = [LogoutNotice(client_id=client_id, sid=sid, sub=subs.get(sid, ""), next_attempt_at=now)
               for client_id, sid in sorted(pairs) if client_id in targets and subs.get(sid)]
    db.session.add_all(notices)
    db.session.commit()
    for notice in notices:
        delivery_worker.wake("logout", notice.id)
    return len(notices)


def logout_token(client_id: str, sub: str, sid: str) -> str:
    """A signed logout token (typ logout+jwt): iss, aud, iat, exp, jti, sub, sid and the logout event."""
    ring = keyring()
    now = int(time.time())
    claims = {"iss": current_app.config["IDP_SETTINGS"].issuer, "aud": client_id, "iat": now,
              "exp": now + TOKEN_LIFETIME, "jti": secrets.token_urlsafe(16), "sub": sub, "sid": sid,
              "events": {EVENT: {}}}
    return jwt.encode({"alg": ring.alg, "kid": ring.signing_kid, "typ": "logout+jwt"}, claims, ring.signing)


def deliver(notice_id: int) -> bool | None:
    """POST one due notice: True delivered, False failed (rescheduled or given up), None not due."""
    if not delivery_worker.claim(LogoutNotice, notice_id, LogoutNotice.delivered_at, LEASE):
        return None
    notice = db.session.get(LogoutNotice, notice_id)
    client = db.session.scalar(db.select(Client).where(Client.client_id == notice.client_id))
    error = ""
    if client is None or not client.backchannel_logout_uri or client.disabled:
        error = "the client no longer takes back-channel logout"
        notice.attempts = len(BACKOFF) - 1  # nothing to retry: give up on this attempt
    else:
        try:
            response = requests.post(client.backchannel_logout_uri, timeout=TIMEOUT, allow_redirects=False,
                                     data={"logout_token": logout_token(client.client_id, notice.sub, notice.sid)},
                                     headers={"Cache-Control": "no-store"})
            if response.status_code not in (200, 204):
                error = f"answered HTTP {response.status_code}"
        except requests.RequestException as exc:
            error = f"unreachable ({type(exc).__name__})"
    return delivery_worker.record_outcome(notice, "delivered_at", error, BACKOFF,
                                          f"back-channel logout to {notice.client_id}")


def deliver_due(limit: int = 500) -> tuple[int, int]:
    return delivery_worker.deliver_each(delivery_worker.due(LogoutNotice, LogoutNotice.delivered_at, limit), deliver)


def problems(limit: int = 50) -> list[LogoutNotice]:
    """Notices that failed at least once and are not delivered, newest first (for staff)."""
    return list(db.session.scalars(db.select(LogoutNotice).where(LogoutNotice.delivered_at.is_(None),
                                                                 LogoutNotice.attempts > 0)
                                   .order_by(LogoutNotice.created_at.desc()).limit(limit)))


def waiting() -> int:
    return db.session.scalar(db.select(func.count()).select_from(LogoutNotice).where(
        LogoutNotice.delivered_at.is_(None), LogoutNotice.gave_up_at.is_(None))) or 0


delivery_worker.register("logout", deliver, deliver_due)
