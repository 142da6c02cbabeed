"""Sending mail: SMTP when configured, otherwise a local outbox folder of ``.eml`` files."""
from __future__ import annotations

import logging
import smtplib
import time
import uuid
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from pathlib import Path

log = logging.getLogger("idp.mail")


class MailError(Exception):
    """The message could not be handed to the mail server."""


class SmtpMailer:
    """Delivers through an SMTP server (STARTTLS and login when configured)."""

    def __init__(self, host: str, port: int, username: str | None, password: str | None,
                 starttls: bool, sender: str, timeout: float = 10.0):
        self.host, self.port, self.username, self.password = host, port, username, password
        self.starttls, self.sender, self.timeout = starttls, sender, timeout

    def send(self, message: EmailMessage, *, console_link: str | None = None) -> None:
        try:
            with smtplib.SMTP(self.host, self.port, timeout=self.timeout) as smtp:
                if self.starttls:
                    smtp.starttls()
                if self.username:
                    smtp.login(self.username, self.password or "")
                smtp.send_message(message)
        except (OSError, smtplib.SMTPException) as exc:
            log.warning("mail delivery failed: %s", type(exc).__name__)
            raise MailError("the mail server did not accept the message") from exc


class OutboxMailer:
    """Writes each message to ``outbox_dir`` and prints where (development and demo)."""

    def __init__(self, outbox_dir: str, sender: str):
        self.outbox = Path(outbox_dir)
        self.sender = sender

    def send(self, message: EmailMessage, *, console_link: str | None = None) -> None:
        self.outbox.mkdir(parents=True, exist_ok=True)
        path = self.outbox / f"{time.strftime('%Y%m%d-%H%M%S')}-{uuid.uuid4().hex[:8]}.eml"
        path.write_bytes(bytes(message))
        line = f"[outbox] mail to {message['To']}: {message['Subject']} ({path})"
        if console_link:
            line += f"\n[outbox]   link: {console_link}"
        print(line, flush=True)


def build_message(sender: str, to: str, subject: str, body: str) -> EmailMessage:
    """A plain-text message with the headers mail servers expect."""
    message = EmailMessage()
    message["From"] = sender
    message["To"] = to
    message["Subject"] = subject
    message["Date"] = formatdate(localtime=False)
    message["Message-ID"] = make_msgid(domain="ecitizen-passport")
    message["Auto-Submitted"] = "auto-generated"
    message.set_content(body)
    return message


def make_mailer(settings):
    """The mailer the configuration asks for."""
    if settings.smtp_host:
        return SmtpMailer(settings.smtp_host, settings.smtp_port, settings.smtp_username,
                          settings.smtp_password, settings.smtp_starttls, settings.mail_from)
    return OutboxMailer(settings.outbox_dir, settings.mail_from)
