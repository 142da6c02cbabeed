"""Checklist 42: a reset request reveals nothing and changes nothing. Existing and unknown
addresses get the same status, page, headers and cookie shape; the request neither locks the
account nor touches its password, status, sessions or sign-in counters; and with the mail server
down the existing address still gets exactly the answer an unknown one gets (mail is queued)."""
from __future__ import annotations

from idp.extensions import db
from idp.models import OutboundMail, User, UserSession
from idp.services import throttle
from tests.conftest import csrf_token, migrated_app, page_without_tokens
from tests.integration.test_signin_flows import PASSWORD, login, make_user
from tests.support.smtp import free_port


def _ask(client, email):
    page = client.get("/forgot-password")
    return client.post("/forgot-password", data={"csrf_token": csrf_token(page.get_data(as_text=True)),
                                                  "email": email})


def _shape(response):
    cookies = sorted(h.split("=", 1)[0] for h in response.headers.getlist("Set-Cookie"))
    headers = sorted(k for k, _ in response.headers if k not in ("Set-Cookie", "X-Request-ID",
                                                                 "Content-Security-Policy", "Content-Length"))
    return response.status_code, headers, cookies, page_without_tokens(response)


def test_item_42_existing_and_unknown_addresses_look_the_same(app):
    make_user(app)
    known = _ask(app.test_client(), "amara@example.org")
    unknown = _ask(app.test_client(), "nobody@example.org")
    assert known.status_code == 200
    assert _shape(known) == _shape(unknown)


def test_item_42_request_does_not_alter_the_account(app):
    make_user(app)
    signed_in = app.test_client()
    assert login(signed_in).status_code == 303
    columns = (User.password_hash, User.status, User.lock_reason, User.email_verified, User.password_changed_at)
    with app.app_context():
        before = tuple(db.session.execute(db.select(*columns)).one())
    for _ in range(3):
        assert _ask(app.test_client(), "amara@example.org").status_code == 200
    with app.app_context():
        assert tuple(db.session.execute(db.select(*columns)).one()) == before
        assert before[1:4] == ("active", None, True)
        assert throttle.failures("login-account", "amara@example.org") == 0
        assert db.session.scalar(db.select(db.func.count()).select_from(UserSession)
                                 .where(UserSession.ended_at.is_(None))) == 1
    assert signed_in.get("/account/").status_code == 200
    assert login(app.test_client(), password=PASSWORD).status_code == 303


def test_item_42_smtp_failure_gives_the_unknown_address_answer(tmp_path, sms_gateway):
    dead_port = free_port()  # nothing listens there: every delivery fails
    with migrated_app(tmp_path, dead_port) as down:
        make_user(down)
        known = _ask(down.test_client(), "amara@example.org")
        unknown = _ask(down.test_client(), "nobody@example.org")
        assert known.status_code == unknown.status_code == 200
        assert _shape(known) == _shape(unknown)
        with down.app_context():  # the mail waits in the queue instead of failing the page
            assert db.session.scalar(db.select(OutboundMail.recipient)) == "amara@example.org"
