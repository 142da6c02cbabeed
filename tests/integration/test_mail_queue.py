"""With the mail server down, nothing is lost: sign-up still succeeds, the message waits in the
persistent queue (sealed), is retried with backoff, shows to staff, and `idp mail retry` delivers it
once the server is back."""
from __future__ import annotations

from datetime import timedelta

from sqlalchemy import update

from idp.cli.mail import mail
from idp.extensions import db
from idp.models import OutboundMail
from idp.models.types import utcnow
from idp.services import delivery_worker, mail_queue
from tests.conftest import migrated_app
from tests.integration.test_signin_flows import register
from tests.support.smtp import SmtpServer, body_of, free_port


def _rows(app):
    with app.app_context():
        return list(db.session.scalars(db.select(OutboundMail).order_by(OutboundMail.id)))


def test_mail_waits_while_the_server_is_down_and_is_delivered_after(tmp_path):
    port = free_port()  # nothing listens here yet
    with migrated_app(tmp_path, port) as app:
        try:
            client = app.test_client()
            response = register(client, email="sipho@example.org")
            assert response.status_code == 200 and "Check your email" in response.get_data(as_text=True)
            delivery_worker.wait_idle(app)
            [row] = _rows(app)
            assert row.sent_at is None and row.attempts == 1 and row.next_attempt_at > utcnow()
            assert "verify-email" not in row.content_sealed and row.recipient == "sipho@example.org"

            runner = app.test_cli_runner()
            status = runner.invoke(mail, ["status"])
            assert "waiting: 1, failing: 1, given up: 0" in status.output
            still_down = runner.invoke(mail, ["retry"])
            assert still_down.exit_code == 1 and "sent: 0, failed: 1" in still_down.output

            server = SmtpServer(port).start()  # the port the IdP was configured with
            try:
                delivered = runner.invoke(mail, ["retry"])
                assert delivered.exit_code == 0 and "sent: 1, failed: 0" in delivered.output
                message = server.wait_for("sipho@example.org", subject_contains="Confirm")
                assert "/verify-email/" in body_of(message)
            finally:
                server.stop()
            [row] = _rows(app)
            assert row.sent_at is not None and row.attempts == 3
        finally:
            app.extensions["idp.store"].flush()


def test_backoff_grows_and_a_message_is_given_up_at_last_and_can_be_requeued(tmp_path):
    with migrated_app(tmp_path, free_port()) as app:
        try:
            with app.test_request_context():
                message_id = mail_queue.enqueue("x@example.org", "Hello", "body")
            delivery_worker.wait_idle(app)
            delays = []
            with app.app_context():
                for _ in range(len(mail_queue.BACKOFF) - 1):  # the delivery thread made the first attempt
                    db.session.execute(update(OutboundMail).values(next_attempt_at=utcnow() - timedelta(seconds=1)))
                    db.session.commit()
                    before = utcnow()
                    assert mail_queue.deliver(message_id) is False
                    row = db.session.get(OutboundMail, message_id)
                    if row.next_attempt_at is not None:
                        delays.append(round((row.next_attempt_at - before).total_seconds()))
                assert delays == list(mail_queue.BACKOFF[1:-1])  # growing pauses, then it gives up
                row = db.session.get(OutboundMail, message_id)
                assert row.gave_up_at is not None and row.attempts == len(mail_queue.BACKOFF)
                assert mail_queue.state().given_up == 1
                assert mail_queue.deliver(message_id) is None  # not due any more
                assert mail_queue.requeue() == 1 and mail_queue.state().waiting == 1
        finally:
            app.extensions["idp.store"].flush()


def test_a_message_is_claimed_once(app):
    with app.test_request_context():
        message_id = mail_queue.enqueue("claim@example.org", "Hello", "body")
    delivery_worker.wait_idle(app)
    with app.app_context():
        assert mail_queue.deliver(message_id) is None  # already sent by the delivery thread
        db.session.execute(update(OutboundMail).values(sent_at=None, next_attempt_at=utcnow()))
        db.session.commit()
        assert mail_queue._claim(message_id) is True
        assert mail_queue._claim(message_id) is False  # a second worker finds it taken
