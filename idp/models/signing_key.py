"""Token signing keys; the private part is encrypted at rest."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from idp.extensions import db
from idp.models.types import UTCDateTime, utcnow


class SigningKey(db.Model):
    __tablename__ = "signing_keys"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    kid: Mapped[str] = mapped_column(String(64), unique=True)
    alg: Mapped[str] = mapped_column(String(10))
    private_key_encrypted: Mapped[str] = mapped_column(Text)
    public_jwk: Mapped[dict] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    # A rotated-in key is published in the JWKS first and signs only from this time on, so that
    # departments' cached key sets know it before they meet a token it signed. None: from creation.
    activates_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # Set when a newer key takes over signing; the public key stays published until
    # every token it signed has expired.
    retired_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    publish_until: Mapped[datetime | None] = mapped_column(UTCDateTime())

    def state(self, now: datetime) -> str:
        """``pending`` (published, not signing yet), ``signing``, ``published`` (retired, its tokens
        may still be live) or ``retired`` (withdrawn from the JWKS)."""
        if self.activates_at is not None and self.activates_at > now:
            return "pending"
        if self.retired_at is None or self.retired_at > now:
            return "signing"
        if self.publish_until is not None and self.publish_until > now:
            return "published"
        return "retired"
