"""Second factors and the browsers a resident signs in from."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, BigInteger, Boolean, ForeignKey, Integer, LargeBinary, String, UniqueConstraint, false
from sqlalchemy.orm import Mapped, mapped_column

from idp.extensions import db
from idp.models.types import UTCDateTime, utcnow


class TotpCredential(db.Model):
    """An authenticator app. Active once ``confirmed_at`` is set; at most one per resident."""

    __tablename__ = "totp_credentials"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), unique=True)
    # The base32 secret, sealed with AES-GCM (idp.security.crypto).
    secret_encrypted: Mapped[str] = mapped_column(String(255))
    # The last time step accepted: a code from that step or earlier is a replay.
    last_used_step: Mapped[int] = mapped_column(BigInteger, default=0)
    # Wrong codes in a row (idp.services.otp_guard): at IDP_OTP_LOCKOUT_FAILURES the app is blocked.
    failed_attempts: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    confirmed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class RecoveryCode(db.Model):
    """One single-use recovery code, stored as a keyed digest."""

    __tablename__ = "recovery_codes"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    code_digest: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class WebAuthnCredential(db.Model):
    """A passkey or security key registered with WebAuthn."""

    __tablename__ = "webauthn_credentials"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    credential_id: Mapped[bytes] = mapped_column(LargeBinary(1024), unique=True)
    public_key: Mapped[bytes] = mapped_column(LargeBinary(2048))
    sign_count: Mapped[int] = mapped_column(BigInteger, default=0)
    transports: Mapped[list] = mapped_column(JSON, default=list)
    name: Mapped[str] = mapped_column(String(64))
    aaguid: Mapped[str] = mapped_column(String(36), default="")
    # Backup eligible: a synced passkey (amr "swk") rather than a device-bound key (amr "hwk").
    backup_eligible: Mapped[bool] = mapped_column(Boolean, default=False)
    # Backed up (BS flag) when registered or last used: synced to the provider's cloud right now.
    backed_up: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    discoverable: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class Device(db.Model):
    """A browser a resident has signed in from, known by the digest of a long-lived cookie.
    ``trusted_until`` set: the resident chose to skip the second factor there until then."""

    __tablename__ = "devices"
    __table_args__ = (UniqueConstraint("user_id", "device_digest"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    device_digest: Mapped[str] = mapped_column(String(64))
    user_agent: Mapped[str] = mapped_column(String(300), default="")
    first_seen_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    last_seen_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    trusted_until: Mapped[datetime | None] = mapped_column(UTCDateTime())
