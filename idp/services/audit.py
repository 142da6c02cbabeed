"""Recording security events. Callers pass identifiers and outcomes, never secrets."""
from __future__ import annotations

import logging

from flask import has_request_context

from idp.extensions import db
from idp.models import AuditEvent
from idp.observability import count_event, request_id

log = logging.getLogger("idp.audit")

# Keys that must never be stored in an event's detail, whatever a caller passes.
_FORBIDDEN = {"password", "secret", "token", "code", "client_secret", "refresh_token", "access_token"}


def record(event: str, *, outcome: str = "success", user_id: int | None = None,
           actor_id: int | None = None, client_id: str | None = None,
           ip_address: str | None = None, commit: bool = True, **detail) -> AuditEvent:
    """Add an audit event (committing by default, so it survives a later rollback)."""
    clean = {k: v for k, v in detail.items() if k not in _FORBIDDEN}
    if has_request_context():  # ties the event to the request's log lines
        clean.setdefault("request_id", request_id())
    entry = AuditEvent(event=event, outcome=outcome, user_id=user_id, actor_id=actor_id,
                       client_id=client_id, ip_address=ip_address, detail=clean)
    db.session.add(entry)
    if commit:
        db.session.commit()
    log.info("audit event=%s outcome=%s user=%s client=%s ip=%s", event, outcome, user_id, client_id, ip_address)
    count_event(event, outcome)
    return entry
