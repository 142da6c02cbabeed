"""Remembered consent per resident, client and scope."""
from __future__ import annotations

from idp.extensions import db
from idp.models import Consent
from idp.models.types import utcnow


def covers(user_id: int, client_id: str, scope: str) -> bool:
    """True when the resident already agreed to share every scope requested."""
    record = db.session.scalar(db.select(Consent).where(Consent.user_id == user_id, Consent.client_id == client_id))
    return record is not None and set(scope.split()) <= set(record.scope.split())


def grant(user_id: int, client_id: str, scope: str) -> None:
    """Remember consent (merged with scopes granted before)."""
    record = db.session.scalar(db.select(Consent).where(Consent.user_id == user_id, Consent.client_id == client_id))
    if record is None:
        db.session.add(Consent(user_id=user_id, client_id=client_id, scope=scope, granted_at=utcnow()))
    else:
        record.scope = " ".join(sorted(set(record.scope.split()) | set(scope.split())))
        record.granted_at = utcnow()
    db.session.commit()
