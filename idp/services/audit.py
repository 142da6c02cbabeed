"""Recording security events. Callers pass identifiers and outcomes, never secrets."""
from __future__ import annotations

import logging

from flask import has_request_context
from sqlalchemy import event as sqlalchemy_event
from sqlalchemy import insert
from sqlalchemy.engine import Engine
from sqlalchemy.exc import SQLAlchemyError

from idp.extensions import db
from idp.models import AuditEvent
from idp.models.types import utcnow
from idp.observability import count_event, request_id
from idp.store import StoreUnavailable

log = logging.getLogger("idp.audit")
_INSERT = insert(AuditEvent.__table__)  # built once: values come as parameters

# Keys that must never be stored in an event's detail, whatever a caller passes.
_FORBIDDEN = {"password", "secret", "token", "code", "client_secret", "refresh_token", "access_token"}
NOT_STORED = "audit.not_stored"  # counted when the trail could not take an event


def record(event: str, *, outcome: str = "success", user_id: int | None = None,
           actor_id: int | None = None, client_id: str | None = None,
           ip_address: str | None = None, commit: bool = True, **detail) -> None:
    """Add an audit event (committing by default, so it survives a later rollback).

    A plain INSERT, not an ORM object: token issuance writes one per token."""
    clean = {k: v for k, v in detail.items() if k not in _FORBIDDEN}
    if has_request_context():  # ties the event to the request's log lines
        clean.setdefault("request_id", request_id())
    try:
        db.session.connection().execute(_INSERT, dict(
            at=utcnow(), event=event, outcome=outcome, user_id=user_id, actor_id=actor_id, client_id=client_id,
            ip_address=ip_address, detail=clean))
        if commit:
            db.session.commit()
    except (SQLAlchemyError, StoreUnavailable):
        # The trail is down or the request's time budget ran out: the request fails (the caller's
        # work is refused or rolled back), and the event itself still reaches the log, never dropped
        # in silence (checklist 115).
        log.error("audit event=%s outcome=%s user=%s client=%s ip=%s NOT STORED: the audit trail refused it "
                  "or did not answer", event, outcome, user_id, client_id, ip_address)
        count_event(NOT_STORED, "error")
        raise
    log.info("audit event=%s outcome=%s user=%s client=%s ip=%s", event, outcome, user_id, client_id, ip_address)
    count_event(event, outcome)


REFUSED = "audit.change_refused"
_GUARD = "audit_events is append-only"  # the database's refusal (migration a34ad7274cbd)


@sqlalchemy_event.listens_for(Engine, "handle_error")
def _change_refused(context) -> None:
    """The database refused to change or delete an audit event: the attempt itself is logged (the
    idp.audit log, shipped off the database) and counted for the IdpAuditTrailTampering alert. Not
    stored: the refused transaction is about to roll back, and on SQLite it holds the write lock."""
    message = str(context.original_exception)
    if _GUARD in message:
        operation = next((op for op in ("DELETE", "UPDATE", "TRUNCATE") if f"{op} refused" in message), "change")
        log.warning("audit event=%s outcome=alert operation=%s", REFUSED, operation)
        count_event(REFUSED, "alert")
