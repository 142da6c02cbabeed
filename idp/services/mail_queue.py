"""The persistent mail queue: every message is stored (sealed) before anything is sent, delivered
by the background delivery thread (idp.services.delivery_worker) right away, and retried with backoff when the mail server is down, so a
page never waits for SMTP and no message is lost. ``idp mail retry`` delivers what is due now.

Any number of processes can deliver: a message is claimed with one conditional UPDATE (it moves
its next attempt into the future) before it is sent, so two workers never send the same one."""
from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import timedelta

from flask import current_app
from sqlalchemy import func, update

from idp.delivery.mail import MailError, build_message
from idp.extensions import db
from idp.models import OutboundMail
from idp.models.types import utcnow
from idp.security import crypto
from idp.services import delivery_worker

PURPOSE = "mail-queue"
BACKOFF = (30, 120, 600, 1800, 3600, 3 * 3600, 6 * 3600, 12 * 3600)  # seconds after each failure
LEASE = timedelta(minutes=5)  # a claimed message is not claimed again for this long


def enqueue(to: str, subject: str, body: str, *, console_link: str | None = None, expires_at=None) -> int:
    """Store a message for delivery (committed) and wake this process's delivery thread; a message
    with ``expires_at`` (its link's end) is given up rather than sent after that time."""
    content = json.dumps({"body": body, "link": console_link})
    row = OutboundMail(recipient=to[:254], subject=subject[:300], content_sealed=crypto.seal(content.encode(), PURPOSE),
                       next_attempt_at=utcnow(), expires_at=expires_at)
    db.session.add(row)
    db.session.commit()
    delivery_worker.wake("mail", row.id)
    return row.id


def _claim(message_id: int) -> bool:
    return delivery_worker.claim(OutboundMail, message_id, OutboundMail.sent_at, LEASE)


def deliver(message_id: int) -> bool | None:
    """Send one due message: True sent, False failed (rescheduled or given up), None not due or taken."""
    if not _claim(message_id):
        return None
    row = db.session.get(OutboundMail, message_id)
    if row.expires_at is not None and row.expires_at <= utcnow():
        row.gave_up_at, row.last_error = utcnow(), "its link expired before it could be sent"
        db.session.commit()
        return False
    content = json.loads(crypto.unseal(row.content_sealed, PURPOSE))
    settings = current_app.config["IDP_SETTINGS"]
    message = build_message(settings.mail_from, row.recipient, row.subject, content["body"])
    error = ""
    try:
        current_app.extensions["idp.mailer"].send(message, console_link=content.get("link"))
    except MailError as exc:
        error = str(exc)
    return delivery_worker.record_outcome(row, "sent_at", error, BACKOFF, f"mail {row.id}")


def deliver_due(limit: int = 500) -> tuple[int, int]:
    """Attempt every message that is due; returns (sent, failed)."""
    return delivery_worker.deliver_each(delivery_worker.due(OutboundMail, OutboundMail.sent_at, limit), deliver)


def make_due_now() -> int:
    """Bring every waiting message's next attempt forward to now (``idp mail retry``)."""
    count = db.session.execute(update(OutboundMail).where(OutboundMail.sent_at.is_(None),
                                                          OutboundMail.gave_up_at.is_(None))
                               .values(next_attempt_at=utcnow())).rowcount
    db.session.commit()
    return count


def requeue(message_id: int | None = None) -> int:
    """Make given-up messages (or one) due again; returns how many."""
    stmt = update(OutboundMail).where(OutboundMail.sent_at.is_(None), OutboundMail.gave_up_at.is_not(None))
    if message_id is not None:
        stmt = stmt.where(OutboundMail.id == message_id)
    count = db.session.execute(stmt.values(gave_up_at=None, attempts=0, next_attempt_at=utcnow())).rowcount
    db.session.commit()
    return count


@dataclass(frozen=True)
class QueueState:
    waiting: int
    failing: int
    given_up: int
    oldest_waiting_at: object


def state() -> QueueState:
    """What staff see: messages waiting, those that already failed at least once, and those given up."""
    pending = (OutboundMail.sent_at.is_(None), OutboundMail.gave_up_at.is_(None))
    count = lambda *where: db.session.scalar(db.select(func.count()).select_from(OutboundMail).where(*where)) or 0  # noqa: E731
    oldest = db.session.scalar(db.select(func.min(OutboundMail.created_at)).where(*pending))
    return QueueState(count(*pending), count(*pending, OutboundMail.attempts > 0),
                      count(OutboundMail.gave_up_at.is_not(None)), oldest)


def problems(limit: int = 50) -> list[OutboundMail]:
    """Messages that failed at least once and are not sent, newest first (no content)."""
    return list(db.session.scalars(db.select(OutboundMail).where(OutboundMail.sent_at.is_(None), OutboundMail.attempts > 0)
                                   .order_by(OutboundMail.created_at.desc()).limit(limit)))


delivery_worker.register("mail", deliver, deliver_due)
