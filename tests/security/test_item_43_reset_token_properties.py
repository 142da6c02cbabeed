"""Checklist 43: reset token properties. The emailed token carries at least 128 bits (256 from
``secrets``), only its SHA-256 digest is stored, it is bound to the one account it was issued for,
works once (a second use gets the generic invalid-link page), lives 30–60 minutes, and stops working
when a newer link is issued or when the password or the email address changes by any other path."""
from __future__ import annotations

import base64
import hashlib
from datetime import timedelta

from sqlalchemy import text

from idp.extensions import db
from idp.models import ActionToken, User
from idp.services import action_tokens as links
from tests.conftest import csrf_token
from tests.integration.test_signin_flows import PASSWORD, login, make_user, path_of
from tests.support.links import open_link
from tests.support.smtp import first_link

NEW = "purple elephants dance at dawn"
INVALID = "not valid"  # words of the generic invalid-link page


def _request_link(client, smtp_server, email="amara@example.org"):
    page = client.get("/forgot-password")
    client.post("/forgot-password", data={"csrf_token": csrf_token(page.get_data(as_text=True)), "email": email})
    message = smtp_server.wait_for(email, subject_contains="Reset")
    smtp_server.clear()
    return path_of(first_link(message))


def _submit(client, path, password=NEW):
    page = open_link(client, path)
    if page.status_code != 200:
        return page
    return client.post(page.request.path, data={"csrf_token": csrf_token(page.get_data(as_text=True)),
                                                "password": password, "confirm": password})


def _assert_invalid(response):
    assert response.status_code == 400
    assert "reset" in response.get_data(as_text=True).lower()
    assert 'name="password"' not in response.get_data(as_text=True)


def test_item_43_token_is_long_random_and_stored_only_as_a_digest(app, client, smtp_server):
    make_user(app)
    raws = [_request_link(client, smtp_server).rsplit("/", 1)[1] for _ in range(2)]
    for raw in raws:
        assert len(base64.urlsafe_b64decode(raw + "=" * (-len(raw) % 4))) * 8 >= 128
    assert raws[0] != raws[1]
    with app.app_context():
        rows = db.session.scalars(db.select(ActionToken).order_by(ActionToken.id)).all()
        assert [r.digest for r in rows] == [hashlib.sha256(r.encode()).hexdigest() for r in raws]
        with db.engine.connect() as conn:
            dump = repr(conn.execute(text("SELECT * FROM action_tokens")).all())
    for raw in raws:
        assert raw not in dump


def test_item_43_lifetime_is_between_30_and_60_minutes_and_expiry_is_enforced(app, client, smtp_server):
    make_user(app)
    path = _request_link(client, smtp_server)
    with app.app_context():
        row = db.session.scalar(db.select(ActionToken))
        assert timedelta(minutes=30) <= row.expires_at - row.created_at <= timedelta(minutes=60)
        row.expires_at = row.created_at  # an hour later
        db.session.commit()
    _assert_invalid(client.get(path))


def test_item_43_token_is_bound_to_its_account(app, client, smtp_server):
    make_user(app)
    other_id = make_user(app, email="sipho@example.org", name="Sipho Mthembu")
    path = _request_link(client, smtp_server)
    assert _submit(client, path).status_code == 303
    with app.app_context():
        other = db.session.get(User, other_id)
        assert app.extensions["idp.hasher"].verify(other.password_hash, PASSWORD)
    assert login(app.test_client(), email="sipho@example.org", password=NEW).status_code == 401


def test_item_43_second_use_is_the_generic_invalid_link(app, client, smtp_server):
    make_user(app)
    path = _request_link(client, smtp_server)
    assert _submit(client, path).status_code == 303
    _assert_invalid(_submit(app.test_client(), path, password="another fine passphrase"))
    assert login(app.test_client(), password=NEW).status_code == 303


def test_item_43_newer_link_invalidates_the_older(app, client, smtp_server):
    make_user(app)
    older = _request_link(client, smtp_server)
    newer = _request_link(client, smtp_server)
    _assert_invalid(_submit(client, older))
    assert _submit(client, newer).status_code == 303


def test_item_43_password_change_invalidates_outstanding_links(app, client, smtp_server):
    make_user(app)
    path = _request_link(client, smtp_server)
    assert login(client).status_code == 303
    token = csrf_token(client.get("/account/password").get_data(as_text=True))
    changed = client.post("/account/password", data={"csrf_token": token, "current_password": PASSWORD,
                                                      "password": "a brand new phrase for my account",
                                                      "confirm": "a brand new phrase for my account"})
    assert changed.status_code == 303
    _assert_invalid(_submit(app.test_client(), path))
    assert login(app.test_client(), password="a brand new phrase for my account").status_code == 303


def test_item_43_email_change_invalidates_outstanding_links(app, client, smtp_server):
    make_user(app)
    path = _request_link(client, smtp_server)
    assert login(client).status_code == 303
    token = csrf_token(client.get("/account/email").get_data(as_text=True))
    asked = client.post("/account/email", data={"csrf_token": token, "current_password": PASSWORD,
                                                 "new_email": "amara.new@example.org"})
    assert asked.status_code == 200, asked.get_data(as_text=True)[:300]
    page = open_link(client, first_link(smtp_server.wait_for("amara.new@example.org", subject_contains="Confirm")))
    assert page.status_code == 200
    done = client.post(page.request.path, data={"csrf_token": csrf_token(page.get_data(as_text=True))})
    assert done.status_code == 303
    _assert_invalid(_submit(app.test_client(), path))
    assert login(app.test_client(), email="amara.new@example.org").status_code == 303


def test_item_43_staff_email_correction_invalidates_outstanding_links(app, client, smtp_server):
    from idp.services import support

    user_id = make_user(app)
    staff_id = make_user(app, email="clerk@capetown.gov.za", name="Help Desk Clerk")
    path = _request_link(client, smtp_server)
    with app.app_context():
        support.change_email(db.session.get(User, staff_id), db.session.get(User, user_id),
                             "amara.fixed@example.org", "Typo at registration, ID checked")
    _assert_invalid(_submit(app.test_client(), path))


def test_item_43_invalidate_leaves_other_purposes_alone(app):
    user_id = make_user(app, verified=False)
    with app.app_context():
        verify = links.issue(user_id, links.VERIFY_EMAIL, data={"email": "amara@example.org"})
        reset = links.issue(user_id, links.RESET_PASSWORD)
        links.invalidate(user_id, links.RESET_PASSWORD)
        assert links.peek(reset, links.RESET_PASSWORD) is None
        assert links.peek(verify, links.VERIFY_EMAIL) is not None
