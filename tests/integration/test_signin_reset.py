"""Forgotten password: emailed single-use link, sessions and tokens ended, no sign-in."""
from __future__ import annotations

import threading
from datetime import timedelta

from idp.extensions import db
from idp.models import ActionToken, AuditEvent, Token, User, UserSession
from idp.models.types import utcnow
from idp.services import DomainError, recovery, throttle
from idp.services import action_tokens as links
from tests.conftest import csrf_token, page_without_tokens
from tests.integration.test_signin_flows import PASSWORD, login, make_user, path_of
from tests.support.links import open_link
from tests.support.smtp import first_link

NEW_PASSWORD = "purple elephants dance at dawn"


def ask_reset(client, email="amara@example.org"):
    page = client.get("/forgot-password")
    return client.post("/forgot-password", data={"csrf_token": csrf_token(page.get_data(as_text=True)),
                                                  "email": email})


def submit_reset(client, link, password=NEW_PASSWORD, confirm=None):
    page = open_link(client, link)
    assert page.status_code == 200
    return client.post(page.request.path, data={"csrf_token": csrf_token(page.get_data(as_text=True)),
                                                "password": password, "confirm": confirm or password})


def add_token(app, user_id, client_id="billing"):
    with app.app_context():
        now = utcnow()
        row = Token(grant_id="g-" + client_id, client_id=client_id, user_id=user_id, scope="openid email",
                    access_token_digest=links.digest("at" + client_id + str(now)),
                    refresh_token_digest=links.digest("rt" + client_id + str(now)),
                    access_expires_at=now + timedelta(minutes=10), refresh_expires_at=now + timedelta(days=30))
        db.session.add(row)
        db.session.commit()
        return row.id


def test_reset_end_to_end(app, client, smtp_server):
    user_id = make_user(app)
    other = app.test_client()
    assert login(other).status_code == 303  # a session elsewhere
    token_id = add_token(app, user_id)
    limit = app.config["IDP_SETTINGS"].login_max_failures
    for attempt in range(limit - 2):
        login(client, password=f"wrong password {attempt}")

    known = ask_reset(client)
    unknown = ask_reset(client, "nobody@example.org")
    assert known.status_code == unknown.status_code == 200
    assert page_without_tokens(known) == page_without_tokens(unknown)
    link = first_link(smtp_server.wait_for("amara@example.org", subject_contains="Reset"))
    assert link.startswith("http://localhost/reset-password/")
    assert len(smtp_server.messages) == 1

    # GET twice: the link is not used up by looking at it.
    assert open_link(client, link).status_code == 200
    done = submit_reset(client, link)
    assert done.status_code == 303 and done.headers["Location"].endswith("/login")
    assert client.get("/account/").status_code == 302  # not signed in by the reset
    assert other.get("/account/").status_code == 302  # the other session ended
    with app.app_context():
        assert db.session.scalar(db.select(UserSession)).ended_at is not None
        assert db.session.get(Token, token_id).revoked_at is not None
        assert db.session.scalar(db.select(AuditEvent).where(AuditEvent.event == "password.reset",
                                                             AuditEvent.outcome == "success"))
        assert throttle.failures("login-account", "amara@example.org") == 0
    smtp_server.wait_for("amara@example.org", subject_contains="was changed")

    assert login(client, password=PASSWORD).status_code == 401
    assert login(client, password=NEW_PASSWORD).status_code == 303
    # Single use.
    again = client.get(path_of(link))
    assert again.status_code == 400 and "not valid or has expired" in again.get_data(as_text=True)


def test_newer_request_invalidates_older_link(app, client, smtp_server):
    make_user(app)
    ask_reset(client)
    first = first_link(smtp_server.wait_for("amara@example.org"))
    smtp_server.clear()
    ask_reset(client)
    second = first_link(smtp_server.wait_for("amara@example.org"))
    assert first != second
    assert client.get(path_of(first)).status_code == 400
    assert submit_reset(client, second).status_code == 303


def test_expired_link_refused(app, client, smtp_server):
    make_user(app)
    ask_reset(client)
    link = first_link(smtp_server.wait_for("amara@example.org"))
    with app.app_context():
        row = db.session.scalar(db.select(ActionToken))
        assert row.expires_at - row.created_at == timedelta(minutes=60)
        row.expires_at = utcnow() - timedelta(seconds=1)
        db.session.commit()
    assert client.get(path_of(link)).status_code == 400
    with app.app_context():
        assert recovery.reset_link_valid(link.rsplit("/", 1)[1]) is False


def test_weak_new_password_keeps_link_usable(app, client, smtp_server):
    make_user(app)
    ask_reset(client)
    link = first_link(smtp_server.wait_for("amara@example.org"))
    weak = submit_reset(client, link, password="short")
    assert weak.status_code == 400 and "at least 15 characters" in weak.get_data(as_text=True)
    mismatch = submit_reset(client, link, password=NEW_PASSWORD, confirm=NEW_PASSWORD + "x")
    assert mismatch.status_code == 400
    assert submit_reset(client, link).status_code == 303


def test_concurrent_double_submit_has_one_success(app, smtp_server):
    make_user(app)
    with app.test_request_context():
        user = db.session.scalar(db.select(User))
        raw = links.issue(user.id, links.RESET_PASSWORD, supersede=True)
    outcomes = []
    barrier = threading.Barrier(4)

    def attempt(i):
        with app.test_request_context():
            barrier.wait()
            try:
                recovery.reset_password(raw, f"{NEW_PASSWORD} {i}")
                outcomes.append("ok")
            except DomainError as exc:
                outcomes.append(exc.code)
            finally:
                db.session.remove()

    threads = [threading.Thread(target=attempt, args=(i,)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(outcomes) == ["invalid_link"] * 3 + ["ok"]


def test_reset_csrf_missing_changes_nothing(app, client, smtp_server):
    make_user(app)
    ask_reset(client)
    link = first_link(smtp_server.wait_for("amara@example.org"))
    response = client.post(path_of(link), data={"password": NEW_PASSWORD, "confirm": NEW_PASSWORD})
    assert response.status_code == 403
    page = open_link(client, link)
    assert page.status_code == 200  # still unused
    # The form's token-free address, with the token kept for this browser, wants CSRF just the same.
    response = client.post(page.request.path, data={"password": NEW_PASSWORD, "confirm": NEW_PASSWORD})
    assert response.status_code == 403
    assert open_link(client, link).status_code == 200  # still unused
    assert login(client).status_code == 303


def test_requested_mails_per_address_are_bounded(app, client, smtp_server):
    make_user(app)
    first = ask_reset(client)
    for _ in range(9):
        response = ask_reset(client)
    assert response.status_code == 200
    assert page_without_tokens(response) == page_without_tokens(first)
    smtp_server.wait_for("amara@example.org")
    import time

    time.sleep(0.3)
    assert len(smtp_server.messages) == links.REQUESTED_MAILS_PER_HOUR


def test_reset_confirms_the_address(app, client, smtp_server):
    user_id = make_user(app, verified=False)
    ask_reset(client)
    assert submit_reset(client, first_link(smtp_server.wait_for("amara@example.org"))).status_code == 303
    with app.app_context():
        assert db.session.get(User, user_id).email_verified
