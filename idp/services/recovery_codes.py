"""Recovery codes: ten single-use codes shown once, kept only as keyed digests."""
from __future__ import annotations

import secrets

from sqlalchemy import delete, func, update

from idp.extensions import db
from idp.models import RecoveryCode, User
from idp.models.types import utcnow
from idp.security.crypto import keyed_digest, keyed_digests
from idp.services import otp_guard

COUNT = 10
LENGTH = 15  # 15 characters of a 31-letter alphabet: 74 bits each (at least 64 are required)
# No 0/o, 1/l/i: codes are read off paper and typed on phones.
ALPHABET = "abcdefghjkmnpqrstuvwxyz23456789"
PURPOSE = "recovery-code"


def _normalise(code: str) -> str:
    return "".join(ch for ch in (code or "").lower() if ch.isalnum())


def generate(user: User) -> list[str]:
    """A new set of codes (the old set, and any block on it after wrong codes, stops); the only
    time they are ever shown."""
    _clear(user)
    codes = []
    for _ in range(COUNT):
        raw = "".join(secrets.choice(ALPHABET) for _ in range(LENGTH))
        codes.append("-".join(raw[i:i + 5] for i in range(0, LENGTH, 5)))
        db.session.add(RecoveryCode(user_id=user.id, code_digest=keyed_digest(raw, PURPOSE)))
    db.session.commit()
    return codes


def remaining(user: User) -> int:
    return db.session.scalar(db.select(func.count()).select_from(RecoveryCode)
                             .where(RecoveryCode.user_id == user.id, RecoveryCode.used_at.is_(None))) or 0


def use(user: User, code: str) -> bool:
    """Use one code up (atomically); False when it is not one of the resident's unused codes.
    Every try counts against the resident's limits (idp.services.otp_guard; raises Throttled past them)."""
    return otp_guard.attempt(user.id, "recovery-code", User.recovery_code_failures, user.id, lambda: _use(user, code))


def _use(user: User, code: str) -> bool:
    cleaned = _normalise(code)
    if len(cleaned) != LENGTH:
        return False
    used = db.session.execute(update(RecoveryCode)
                              .where(RecoveryCode.user_id == user.id,
                                     RecoveryCode.code_digest.in_(keyed_digests(cleaned, PURPOSE)),
                                     RecoveryCode.used_at.is_(None))
                              .values(used_at=utcnow())).rowcount
    db.session.commit()
    return used == 1


def discard(user: User) -> None:
    """Remove every code (when the last second factor goes)."""
    _clear(user)
    db.session.commit()


def _clear(user: User) -> None:
    db.session.execute(delete(RecoveryCode).where(RecoveryCode.user_id == user.id))
    db.session.execute(update(User).where(User.id == user.id).values(recovery_code_failures=0))
