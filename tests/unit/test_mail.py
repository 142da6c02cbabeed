"""Mail adapters: the outbox writes .eml files and prints the link; SMTP delivers to a real
server; an unreachable server is a MailError."""
import email
import email.policy

import pytest

from idp.config import load_settings
from idp.delivery.mail import (
    MailError,
    OutboxMailer,
    SmtpMailer,
    build_message,
    make_mailer,
)
from tests.support.smtp import body_of, free_port

SENDER = "eCitizen Passport <no-reply@example.gov.za>"


def _message(to="lindiwe@example.org"):
    return build_message(SENDER, to, "Confirm your email", "Open https://id.example/verify?t=abc to confirm.")


def test_build_message_has_the_expected_headers():
    message = _message()
    assert message["From"] == SENDER
    assert message["To"] == "lindiwe@example.org"
    assert message["Date"] and message["Message-ID"]
    assert message["Auto-Submitted"] == "auto-generated"


def test_outbox_writes_an_eml_and_prints_the_link(tmp_path, capsys):
    mailer = OutboxMailer(str(tmp_path / "outbox"), SENDER)
    mailer.send(_message(), console_link="https://id.example/verify?t=abc")
    files = list((tmp_path / "outbox").glob("*.eml"))
    assert len(files) == 1
    parsed = email.message_from_bytes(files[0].read_bytes(), policy=email.policy.default)
    assert parsed["Subject"] == "Confirm your email"
    assert "verify?t=abc" in body_of(parsed)
    out = capsys.readouterr().out
    assert "lindiwe@example.org" in out
    assert "link: https://id.example/verify?t=abc" in out
    assert str(files[0]) in out


def test_outbox_keeps_every_message(tmp_path, capsys):
    mailer = OutboxMailer(str(tmp_path / "outbox"), SENDER)
    for n in range(3):
        mailer.send(_message(f"r{n}@example.org"))
    assert len(list((tmp_path / "outbox").glob("*.eml"))) == 3
    assert "link:" not in capsys.readouterr().out


def test_smtp_delivers_to_a_real_server(smtp_server):
    mailer = SmtpMailer("127.0.0.1", smtp_server.port, None, None, starttls=False, sender=SENDER)
    mailer.send(_message("sipho@example.org"))
    received = smtp_server.wait_for("sipho@example.org")
    assert received["Subject"] == "Confirm your email"
    assert "verify?t=abc" in body_of(received)


def test_smtp_down_is_a_mail_error(caplog):
    mailer = SmtpMailer("127.0.0.1", free_port(), None, None, starttls=False, sender=SENDER, timeout=2)
    with pytest.raises(MailError):
        mailer.send(_message())


def test_smtp_without_starttls_support_is_a_mail_error(smtp_server):
    # The test server offers no STARTTLS: asking for it must fail rather than send in clear text.
    mailer = SmtpMailer("127.0.0.1", smtp_server.port, None, None, starttls=True, sender=SENDER, timeout=5)
    with pytest.raises(MailError):
        mailer.send(_message("clear@example.org"))
    assert not [m for m in smtp_server.messages if "clear@example.org" in str(m["To"])]


def test_make_mailer_follows_the_settings(tmp_path):
    base = {"IDP_INSTANCE_PATH": str(tmp_path), "IDP_SECRET_KEY": "k" * 40}
    assert isinstance(make_mailer(load_settings(base)), OutboxMailer)
    smtp = make_mailer(load_settings({**base, "IDP_SMTP_HOST": "mail.example.gov.za", "IDP_SMTP_PORT": "2525"}))
    assert isinstance(smtp, SmtpMailer) and smtp.port == 2525 and smtp.starttls is True
