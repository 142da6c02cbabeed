"""Reading the audit trail: filtered pages, a CSV export streamed in chunks, and the daily counts
behind the admin overview."""
from __future__ import annotations

import csv
import io
import json
from dataclasses import asdict, dataclass
from datetime import date, datetime, time, timedelta, timezone

from sqlalchemy import func

from idp.extensions import db
from idp.models import AuditEvent, TotpCredential, User, WebAuthnCredential
from idp.models.types import utcnow

CSV_COLUMNS = ("id", "at", "event", "outcome", "user_id", "actor_id", "client_id", "ip_address", "detail")


@dataclass(frozen=True)
class Filters:
    event: str = ""        # a prefix: "signin." or "account.locked"
    user_id: int | None = None
    actor_id: int | None = None
    outcome: str = ""
    since: date | None = None
    until: date | None = None

    def chosen(self) -> dict[str, str]:
        """The filters set, as text: for the audit trail and an export request."""
        return {name: str(value) for name, value in asdict(self).items() if value not in (None, "")}

    @classmethod
    def from_chosen(cls, chosen: dict[str, str]) -> Filters:
        """The filters :meth:`chosen` gave."""
        def number(name):
            return int(chosen[name]) if name in chosen else None

        def day(name):
            return date.fromisoformat(chosen[name]) if name in chosen else None

        return cls(event=chosen.get("event", ""), user_id=number("user_id"), actor_id=number("actor_id"),
                   outcome=chosen.get("outcome", ""), since=day("since"), until=day("until"))


def _select(filters: Filters):
    query = db.select(AuditEvent)
    if filters.event:
        query = query.where(AuditEvent.event.like(filters.event.replace("%", "").replace("_", r"\_") + "%",
                                                  escape="\\"))
    if filters.user_id is not None:
        query = query.where(AuditEvent.user_id == filters.user_id)
    if filters.actor_id is not None:
        query = query.where(AuditEvent.actor_id == filters.actor_id)
    if filters.outcome:
        query = query.where(AuditEvent.outcome == filters.outcome)
    if filters.since:
        query = query.where(AuditEvent.at >= datetime.combine(filters.since, time.min, timezone.utc))
    if filters.until:
        query = query.where(AuditEvent.at < datetime.combine(filters.until + timedelta(days=1), time.min, timezone.utc))
    return query


def count(filters: Filters) -> int:
    """How many events match ``filters``."""
    return db.session.scalar(db.select(func.count()).select_from(_select(filters).subquery())) or 0


def export_allowed(actor_id: int) -> bool:
    """Count one CSV export by ``actor_id``; False beyond IDP_AUDIT_EXPORTS_PER_HOUR in an hour."""
    from flask import current_app

    from idp.services import throttle

    limit = current_app.config["IDP_SETTINGS"].audit_exports_per_hour
    return throttle.add_failure("audit-export", str(actor_id), 3600) <= limit


def page(filters: Filters, number: int = 1, size: int = 50) -> tuple[list[AuditEvent], bool]:
    """One page of events, newest first, and whether there is a next page."""
    rows = list(db.session.scalars(_select(filters).order_by(AuditEvent.id.desc())
                                   .offset((max(number, 1) - 1) * size).limit(size + 1)))
    return rows[:size], len(rows) > size


_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def spreadsheet_safe(value):
    """A CSV cell a spreadsheet will not run as a formula (OWASP CSV injection): text starting with
    = + - @ tab or CR gets a leading apostrophe. Numbers and None pass unchanged."""
    if isinstance(value, str) and value.startswith(_FORMULA_STARTS):
        return "'" + value
    return value


def csv_chunks(filters: Filters, batch: int = 1000):
    """The filtered events as CSV text, oldest first, in chunks (keyset pagination: bounded memory)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(CSV_COLUMNS)
    last_id = 0
    while True:
        rows = list(db.session.scalars(_select(filters).where(AuditEvent.id > last_id)
                                       .order_by(AuditEvent.id).limit(batch)))
        for row in rows:
            writer.writerow([spreadsheet_safe(cell) for cell in (
                row.id, row.at.isoformat(), row.event, row.outcome, row.user_id, row.actor_id, row.client_id,
                row.ip_address, json.dumps(row.detail or {}, sort_keys=True))])
        yield buffer.getvalue()
        buffer.seek(0)
        buffer.truncate()
        if len(rows) < batch:
            return
        last_id = rows[-1].id
        db.session.expunge_all()


def daily_counts(event: str, days: int = 30, outcome: str | None = None) -> list[tuple[date, int]]:
    """How many ``event`` events happened on each of the last ``days`` days (UTC), zeros included."""
    today = utcnow().date()
    start = datetime.combine(today - timedelta(days=days - 1), time.min, timezone.utc)
    query = db.select(AuditEvent.at).where(AuditEvent.event == event, AuditEvent.at >= start)
    if outcome:
        query = query.where(AuditEvent.outcome == outcome)
    counts: dict[date, int] = {}
    for (at,) in db.session.execute(query):
        counts[at.date()] = counts.get(at.date(), 0) + 1
    return [(today - timedelta(days=offset), counts.get(today - timedelta(days=offset), 0))
            for offset in range(days - 1, -1, -1)]


def mfa_adoption() -> tuple[int, int]:
    """(residents with a second factor, active residents)."""
    active = db.session.scalar(db.select(func.count()).select_from(User).where(User.status == "active")) or 0
    with_totp = db.select(TotpCredential.user_id).where(TotpCredential.confirmed_at.is_not(None))
    with_key = db.select(WebAuthnCredential.user_id)
    adopted = db.session.scalar(db.select(func.count()).select_from(User).where(
        User.status == "active",
        (User.id.in_(with_totp)) | (User.id.in_(with_key)) | (User.sms_second_factor.is_(True)))) or 0
    return adopted, active
