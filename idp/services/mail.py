"""Composing and sending the IdP's messages to residents."""
from __future__ import annotations

from flask import render_template

from idp.services import mail_queue


def send_template(to: str, subject: str, template: str, *, link: str | None = None, expires_at=None,
                  **context) -> None:
    """Render ``templates/mail/<template>.txt`` and queue it for delivery (see mail_queue); the link
    goes to the console only in outbox (development) mode. A message is not sent after ``expires_at``."""
    body = render_template(f"mail/{template}.txt", link=link, **context)
    mail_queue.enqueue(to, subject, body, console_link=link, expires_at=expires_at)
