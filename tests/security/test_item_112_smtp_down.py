"""Checklist 112: SMTP down. A password reset asked for while the mail server is down gets exactly
the answer it gets when the server is up (and the same for an unknown address: no enumeration); the
mail waits in the durable queue (sealed, not in clear) and, when SMTP returns, exactly one mail per
request is delivered however often delivery is retried. A link that expired while waiting is not
sent stale: a message carrying a link is given up, not sent, once the link has expired."""
from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import update

from idp.cli.mail import mail
from idp.extensions import db
from idp.models import ActionToken, OutboundMail
from idp.models.types import utcnow
from idp.services import delivery_worker
from tests.conftest import blank_tokens, csrf_token, migrated_app
from tests.support.oidc import make_user
from tests.support.smtp import SmtpServer, body_of, free_port

EMAIL = "resident@example.org"


def _ask_reset(client, email):
    page = client.get("/forgot-password")
    return client.post("/forgot-password", data={"email": email, "csrf_token": csrf_token(page.get_data(as_text=True))})


def _rows(app):
    with app.app_context():
        return list(db.session.scalars(db.select(OutboundMail)))


@pytest.fixture
def smtp_down_app(tmp_path):
    port = free_port()  # nothing listens here yet
    with migrated_app(tmp_path, port) as app:
        try:
            yield app, port
        finally:
            app.extensions["idp.store"].flush()


def test_item_112_reset_with_smtp_down_answers_as_usual_and_delivers_exactly_once(smtp_down_app):
    app, port = smtp_down_app
    make_user(app, email=EMAIL)
    known = _ask_reset(app.test_client(), EMAIL)
    unknown = _ask_reset(app.test_client(), "nobody@example.org")
    assert known.status_code == unknown.status_code
    assert blank_tokens(known.get_data(as_text=True)) == blank_tokens(unknown.get_data(as_text=True))
    assert "Traceback" not in known.get_data(as_text=True)
    delivery_worker.wait_idle(app)
    [row] = _rows(app)
    assert row.sent_at is None and row.recipient == EMAIL and "reset-password" not in row.content_sealed

    runner = app.test_cli_runner()
    server = SmtpServer(port).start()
    try:
        assert runner.invoke(mail, ["retry"]).exit_code == 0
        assert runner.invoke(mail, ["retry"]).exit_code == 0  # retried again: nothing sent twice
        delivery_worker.wait_idle(app)
        message = server.wait_for(EMAIL)
        assert "/reset-password/" in body_of(message)
        assert [m["To"] for m in server.messages] == [EMAIL]
    finally:
        server.stop()


def test_item_112_an_expired_link_is_not_sent_stale(smtp_down_app):
    app, port = smtp_down_app
    make_user(app, email=EMAIL)
    _ask_reset(app.test_client(), EMAIL)
    delivery_worker.wait_idle(app)
    with app.app_context():  # the outage outlasted the link's lifetime
        assert abs(_rows(app)[0].expires_at - db.session.scalar(db.select(ActionToken.expires_at))) < timedelta(seconds=5)
        db.session.execute(update(ActionToken).values(expires_at=utcnow() - timedelta(minutes=1)))
        db.session.execute(update(OutboundMail).values(expires_at=utcnow() - timedelta(minutes=1)))
        db.session.commit()
    server = SmtpServer(port).start()
    try:
        app.test_cli_runner().invoke(mail, ["retry"])
        delivery_worker.wait_idle(app)
        assert server.messages == []
        (row,) = _rows(app)
        assert row.sent_at is None and row.gave_up_at is not None and "expired" in row.last_error
    finally:
        server.stop()
