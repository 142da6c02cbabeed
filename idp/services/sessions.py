"""Signed-in sessions at the IdP: started at sign-in, checked on every request, ended at
sign-out, password reset or by staff."""
from __future__ import annotations

import secrets
from datetime import datetime, timedelta

from sqlalchemy import update

from idp.extensions import db
from idp.models import User, UserSession
from idp.models.types import utcnow


def start(user: User, *, amr: list[str], acr: str, lifetime_hours: int,
          user_agent: str = "", ip_address: str = "") -> UserSession:
    """Record a new signed-in session for ``user``."""
    now = utcnow()
    record = UserSession(sid=secrets.token_urlsafe(24), user_id=user.id, auth_time=now, amr=list(amr),
                         acr=acr, created_at=now, last_seen_at=now,
                         expires_at=now + timedelta(hours=lifetime_hours),
                         user_agent=user_agent[:300], ip_address=ip_address[:64])
    db.session.add(record)
    db.session.commit()
    return record


def elevate(record: UserSession, *, amr: list[str], acr: str) -> None:
    """Record a step-up: the session now carries the stronger methods, as of now."""
    record.amr = list(amr)
    record.acr = acr
    record.auth_time = utcnow()
    db.session.commit()


TOUCH_EVERY = timedelta(seconds=60)  # last_seen_at is written at most once a minute per session


def idle_limit() -> timedelta:
    """How long a session may go unused before it ends (``IDP_SESSION_IDLE_MINUTES``)."""
    from flask import current_app

    return timedelta(minutes=current_app.config["IDP_SETTINGS"].session_idle_minutes)


def load_active(sid: str | None) -> tuple[UserSession, User] | None:
    """The live session and its resident, or None when ended, past its absolute lifetime, idle
    for longer than the idle limit, or the resident is not active. A live session is marked as
    used now (the idle clock restarts)."""
    if not sid:
        return None
    record = db.session.get(UserSession, sid)
    now = utcnow()
    if record is None or record.ended_at is not None or record.expires_at <= now:
        return None
    if record.last_seen_at + idle_limit() <= now:
        return None
    user = db.session.get(User, record.user_id)
    if user is None or not user.is_active:
        return None
    if now - record.last_seen_at >= TOUCH_EVERY:
        record.last_seen_at = now
        db.session.commit()
    return record, user


def end(sid: str) -> UserSession | None:
    """End one session; returns it (for back-channel logout) or None if already ended."""
    record = db.session.get(UserSession, sid)
    if record is None or record.ended_at is not None:
        return None
    record.ended_at = utcnow()
    db.session.commit()
    _tell_clients([sid])
    return record


def end_all_for_user(user_id: int, *, except_sid: str | None = None) -> int:
    """End every live session of a resident; returns how many ended."""
    live = db.select(UserSession.sid).where(UserSession.user_id == user_id, UserSession.ended_at.is_(None))
    if except_sid:
        live = live.where(UserSession.sid != except_sid)
    sids = list(db.session.scalars(live))
    if not sids:
        return 0
    count = db.session.execute(update(UserSession).where(UserSession.sid.in_(sids), UserSession.ended_at.is_(None))
                               .values(ended_at=utcnow())).rowcount
    db.session.commit()
    _tell_clients(sids)
    return count


def _tell_clients(sids: list[str]) -> None:
    """Departments holding tokens from these sessions are told by back-channel logout."""
    from idp.services import backchannel

    backchannel.notify_sessions_ended(sids)


def active_for_user(user_id: int) -> list[UserSession]:
    """The resident's sessions that are not ended or expired (idle ones included), newest first."""
    now: datetime = utcnow()
    return list(db.session.scalars(
        db.select(UserSession).where(UserSession.user_id == user_id, UserSession.ended_at.is_(None),
                                     UserSession.expires_at > now).order_by(UserSession.created_at.desc())))


def live_for_user(user_id: int) -> list[UserSession]:
    """The sessions the resident could still use (not ended, expired or idle), newest first."""
    cutoff = utcnow() - idle_limit()
    return [record for record in active_for_user(user_id) if record.last_seen_at > cutoff]


def end_others(user: User, keep_sid: str, *, ip: str = "") -> tuple[int, int]:
    """The resident's "sign out everywhere else": end every other session, revoke the tokens
    departments received through those sessions (tokens from this session and grants not
    tied to an ended session stay), and audit it. Returns (sessions ended, tokens revoked)."""
    from idp.services import audit, grants

    others = [record.sid for record in active_for_user(user.id) if record.sid != keep_sid]
    ended = end_all_for_user(user.id, except_sid=keep_sid)
    revoked = grants.revoke_for_sessions(user.id, others)
    audit.record("session.others_ended", user_id=user.id, ip_address=ip, sessions=ended, tokens=revoked)
    return ended, revoked
