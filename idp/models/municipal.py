"""The city's register of municipal accounts (rates, water, electricity) and residents' links to them."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Integer, LargeBinary, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from idp.extensions import db
from idp.models.types import UTCDateTime, utcnow

ACCOUNT_TYPES = ("residential", "business", "government", "managing_agent")
LINK_ROLES = ("owner", "tenant", "managing_agent", "company_representative")


class MunicipalAccount(db.Model):
    """One account of the billing system's register, loaded by ``idp accounts import``."""

    __tablename__ = "municipal_accounts"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    account_number: Mapped[str] = mapped_column(String(32), unique=True)
    # residential | business | government | managing_agent
    account_type: Mapped[str] = mapped_column(String(20))
    holder_name: Mapped[str] = mapped_column(String(200))
    service_address: Mapped[str] = mapped_column(String(300))
    erf_number: Mapped[str | None] = mapped_column(String(40))
    # active | closed
    status: Mapped[str] = mapped_column(String(10), default="active")
    # Keyed digests (idp.security.crypto.keyed_digest); the numbers themselves are never stored.
    holder_id_digest: Mapped[str | None] = mapped_column(String(64))
    linking_pin_digest: Mapped[str | None] = mapped_column(String(64))
    imported_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class AccountLink(db.Model):
    """A resident's proven right to act on an account, in a role."""

    __tablename__ = "account_links"
    __table_args__ = (UniqueConstraint("user_id", "account_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("municipal_accounts.id", ondelete="CASCADE"), index=True)
    # owner | tenant | managing_agent | company_representative
    role: Mapped[str] = mapped_column(String(30))
    # linking_pin | id_number | document
    verification: Mapped[str] = mapped_column(String(20))
    verified_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class LinkRequest(db.Model):
    """A request to link an account without a PIN or ID number, with a supporting document, for staff to review."""

    __tablename__ = "account_link_requests"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    account_number: Mapped[str] = mapped_column(String(32))
    role: Mapped[str] = mapped_column(String(30))
    document: Mapped[bytes] = mapped_column(LargeBinary())
    document_type: Mapped[str] = mapped_column(String(40))
    document_name: Mapped[str] = mapped_column(String(120), default="")
    note: Mapped[str] = mapped_column(String(500), default="")
    # pending | approved | rejected
    status: Mapped[str] = mapped_column(String(10), default="pending", index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    reviewed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    reviewer: Mapped[str] = mapped_column(String(254), default="")
    reason: Mapped[str] = mapped_column(String(500), default="")
