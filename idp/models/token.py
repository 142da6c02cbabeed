"""Issued access and refresh tokens (digests only). One row per issuance; rows of one
authorization grant share ``grant_id`` so reuse of a rotated refresh token revokes them all."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, ForeignKey, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from idp.extensions import db
from idp.models.types import UTCDateTime, utcnow


class Token(db.Model):
    __tablename__ = "tokens"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    grant_id: Mapped[str] = mapped_column(String(64), index=True)
    code_id: Mapped[int | None] = mapped_column(ForeignKey("authorization_codes.id", ondelete="SET NULL"), index=True)
    client_id: Mapped[str] = mapped_column(String(64), index=True)
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    scope: Mapped[str] = mapped_column(Text, default="")
    access_token_digest: Mapped[str] = mapped_column(String(64), unique=True)
    refresh_token_digest: Mapped[str | None] = mapped_column(String(64), unique=True)
    sid: Mapped[str | None] = mapped_column(String(64), index=True)
    auth_time: Mapped[datetime | None] = mapped_column(UTCDateTime())
    acr: Mapped[str] = mapped_column(String(64), default="")
    amr: Mapped[list] = mapped_column(JSON, default=list)
    issued_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    access_expires_at: Mapped[datetime] = mapped_column(UTCDateTime())
    refresh_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # The absolute end of the refresh-token family, however often it rotates.
    grant_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    rotated_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), index=True)
    # The API the access token is for (RFC 8707 resource) when not the client itself.
    audience: Mapped[str | None] = mapped_column(String(2000))

    # Authlib's TokenMixin interface.
    def get_client_id(self) -> str:
        return self.client_id

    def check_client(self, client) -> bool:
        return self.client_id == client.get_client_id()

    def get_scope(self) -> str:
        return self.scope

    def get_expires_in(self) -> int:
        return max(0, int((self.access_expires_at - utcnow()).total_seconds()))

    def is_expired(self) -> bool:
        return self.access_expires_at <= utcnow()

    def is_revoked(self) -> bool:
        return self.revoked_at is not None
