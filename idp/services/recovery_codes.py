"""Recovery codes: ten single-use codes shown once, kept only as keyed digests."""
from __future__ import annotations

import secrets

from sqlalchemy import delete, func, update

from idp.extensions import db
from idp.models import RecoveryCode, User
from idp.models.types import utcnow
from idp.security.crypto import keyed_digest

COUNT = 10
# No 0/o, 1/l/i: codes are read off paper and typed on phones.
ALPHABET = "abcdefghjkmnpqrstuvwxyz23456789"
PURPOSE = "recovery-code"


def _normalise(code: str) -> str:
    return "".join(ch for ch in (code or "").lower() if ch.isalnum())


def generate(user: User) -> list[str]:
    """A new set of codes (the old set stops working); the only time they are ever shown."""
    db.session.execute(delete(RecoveryCode).where(RecoveryCode.user_id == user.id))
    codes = []
    for _ in range(COUNT):
        raw = "".join(secrets.choice(ALPHABET) for _ in range(10))
        codes.append(f"{raw[:5]}-{raw[5:]}")
        db.session.add(RecoveryCode(user_id=user.id, code_digest=keyed_digest(raw, PURPOSE)))
    db.session.commit()
    return codes


def remaining(user: User) -> int:
    return db.session.scalar(db.select(func.count()).select_from(RecoveryCode)
                             .where(RecoveryCode.user_id == user.id, RecoveryCode.used_at.is_(None))) or 0


def use(user: User, code: str) -> bool:
    """Use one code up (atomically); False when it is not one of the resident's unused codes."""
    cleaned = _normalise(code)
    if len(cleaned) != 10:
        return False
    used = db.session.execute(update(RecoveryCode)
                              .where(RecoveryCode.user_id == user.id,
                                     RecoveryCode.code_digest == keyed_digest(cleaned, PURPOSE),
                                     RecoveryCode.used_at.is_(None))
                              .values(used_at=utcnow())).rowcount
    db.session.commit()
    return used == 1


def discard(user: User) -> None:
    """Remove every code (when the last second factor goes)."""
    db.session.execute(delete(RecoveryCode).where(RecoveryCode.user_id == user.id))
    db.session.commit()
