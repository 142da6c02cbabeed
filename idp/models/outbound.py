"""Mail waiting to be delivered, or delivered: the persistent queue behind every message sent."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from idp.extensions import db
from idp.models.types import UTCDateTime, utcnow


class OutboundMail(db.Model):
    __tablename__ = "outbound_mail"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    recipient: Mapped[str] = mapped_column(String(254))
    subject: Mapped[str] = mapped_column(String(300))
    # The body (and the outbox console link) sealed with AES-GCM: bodies carry sign-in links.
    content_sealed: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    # Due for a (first or next) attempt at this time; a worker claims a message by moving it on.
    next_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), index=True)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    gave_up_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    last_error: Mapped[str] = mapped_column(String(200), default="")
    # A message whose link stops working at this time is never sent after it (given up instead).
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class LogoutNotice(db.Model):
    """A back-channel logout notice owed to one client for one ended IdP session."""

    __tablename__ = "logout_notices"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    client_id: Mapped[str] = mapped_column(String(64), index=True)
    sid: Mapped[str] = mapped_column(String(64))
    sub: Mapped[str] = mapped_column(String(36))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), index=True)
    delivered_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    gave_up_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    last_error: Mapped[str] = mapped_column(String(200), default="")
