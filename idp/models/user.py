"""Residents (and staff, who are residents with roles)."""
from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import JSON, Boolean, Integer, String, false
from sqlalchemy.orm import Mapped, mapped_column

from idp.extensions import db
from idp.models.types import UTCDateTime, utcnow


class User(db.Model):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    # The public, stable, never-reassigned subject identifier.
    sub: Mapped[str] = mapped_column(String(36), unique=True, default=lambda: str(uuid.uuid4()))
    # Canonical (lower-cased, trimmed) address; unique.
    email: Mapped[str] = mapped_column(String(254), unique=True)
    email_verified: Mapped[bool] = mapped_column(Boolean, default=False)
    name: Mapped[str] = mapped_column(String(200), default="")
    given_name: Mapped[str | None] = mapped_column(String(100))
    family_name: Mapped[str | None] = mapped_column(String(100))
    locale: Mapped[str | None] = mapped_column(String(16))
    password_hash: Mapped[str | None] = mapped_column(String(255))
    password_changed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # E.164, set only once verified by SMS; a second sign-in identifier.
    phone_number: Mapped[str | None] = mapped_column(String(20), unique=True)
    phone_verified_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # The resident chose SMS codes as a second factor (needs a verified phone).
    sms_second_factor: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    # Wrong recovery codes in a row (idp.services.otp_guard); a new set of codes clears it.
    recovery_code_failures: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    # {topic: "email" | "sms" | "none"} for the city's messages; missing topics take the defaults
    # (idp.services.notifications). Security notices are not switchable and not listed here.
    notification_preferences: Mapped[dict | None] = mapped_column(JSON)
    # Password sign-in from browsers new to the account is refused until then (the failure limit was
    # reached); kept in the database so a restart of the store does not lift it.
    login_locked_until: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # active | locked | deactivated
    status: Mapped[str] = mapped_column(String(16), default="active")
    # Why a locked account is locked: "self_reported" (unlocked by a password reset) or "staff".
    lock_reason: Mapped[str | None] = mapped_column(String(32))
    # When the account was deactivated (a resident who closed it may reopen it for a while).
    deactivated_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    roles: Mapped[list] = mapped_column(JSON, default=list)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)

    @property
    def phone_number_verified(self) -> bool:
        return self.phone_number is not None and self.phone_verified_at is not None

    @property
    def is_active(self) -> bool:
        return self.status == "active"

    def __repr__(self) -> str:  # never the email: reprs end up in logs
        return f"<User {self.id}>"
