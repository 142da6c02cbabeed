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


def load_active(sid: str | None) -> tuple[UserSession, User] | None:
    """The live session and its resident, or None when ended, expired or the resident is not active."""
    if not sid:
        return None
    record = db.session.get(UserSession, sid)
    if record is None or record.ended_at is not None or record.expires_at <= utcnow():
        return None
    user = db.session.get(User, record.user_id)
    if user is None or not user.is_active:
        return None
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
    now: datetime = utcnow()
    return list(db.session.scalars(
        db.select(UserSession).where(UserSession.user_id == user_id, UserSession.ended_at.is_(None),
                                     UserSession.expires_at > now).order_by(UserSession.created_at.desc())))
