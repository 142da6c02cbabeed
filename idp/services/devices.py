"""Browsers residents sign in from: a long-lived random cookie, stored here only as a digest.
A browser not seen before for an account triggers a security notice; a resident may trust a
browser to skip the second factor there for a while (revocable)."""
from __future__ import annotations

import hashlib
import secrets
from datetime import timedelta

from sqlalchemy import func, update

from idp.extensions import db
from idp.models import Device, User
from idp.models.types import utcnow


def new_device_id() -> str:
    return secrets.token_urlsafe(32)


def _digest(device_id: str) -> str:
    return hashlib.sha256(device_id.encode()).hexdigest()


def _find(user: User, device_id: str | None) -> Device | None:
    if not device_id or len(device_id) > 100:
        return None
    return db.session.scalar(db.select(Device).where(Device.user_id == user.id,
                                                     Device.device_digest == _digest(device_id)))


def record_sign_in(user: User, device_id: str, user_agent: str) -> bool:
    """Note a sign-in from this browser; True when the account has signed in elsewhere before
    but never here (worth telling the resident)."""
    found = _find(user, device_id)
    now = utcnow()
    if found is not None:
        found.last_seen_at = now
        db.session.commit()
        return False
    known = db.session.scalar(db.select(func.count()).select_from(Device).where(Device.user_id == user.id)) or 0
    db.session.add(Device(user_id=user.id, device_digest=_digest(device_id), user_agent=user_agent[:300],
                          first_seen_at=now, last_seen_at=now))
    db.session.commit()
    return known > 0


def is_known(user: User, device_id: str | None) -> bool:
    """Whether this browser has signed in to the account before."""
    return _find(user, device_id) is not None


def is_trusted(user: User, device_id: str | None) -> bool:
    found = _find(user, device_id)
    return found is not None and found.trusted_until is not None and found.trusted_until > utcnow()


def trust(user: User, device_id: str, days: int) -> None:
    """Skip the second factor on this browser for ``days`` days."""
    found = _find(user, device_id)
    if found is not None and days > 0:
        found.trusted_until = utcnow() + timedelta(days=days)
        db.session.commit()


def trusted_count(user: User) -> int:
    return db.session.scalar(db.select(func.count()).select_from(Device)
                             .where(Device.user_id == user.id, Device.trusted_until > utcnow())) or 0


def forget_trust(user: User) -> int:
    """Stop trusting every browser of the resident; returns how many were trusted."""
    count = db.session.execute(update(Device).where(Device.user_id == user.id, Device.trusted_until.is_not(None))
                               .values(trusted_until=None)).rowcount
    db.session.commit()
    return count
