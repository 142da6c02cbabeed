"""Checklist 86: rate-limit store unavailable. When the store that holds the throttling counters
cannot count (Redis down or failing while the rest still answers), every limited action fails
closed: 503 with Retry-After, the password or secret is never checked, no session, token, mail or
text message comes out of it, and no stack trace is shown. (Item 110 covers the whole store
being down; here only the counters fail.)"""
from __future__ import annotations

import pytest

from idp.extensions import db
from idp.models import UserSession
from idp.store import StoreUnavailable
from tests.conftest import csrf_token
from tests.integration.test_signin_flows import make_user
from tests.support.oidc import make_client

PASSWORD = "a long enough resident passphrase"


@pytest.fixture
def counters_down(app, monkeypatch):
    """The store answers reads and writes of sessions, but counting fails."""
    store = app.extensions["idp.store"]

    def refuse(*_args, **_kwargs):
        raise StoreUnavailable("counter store unreachable")

    monkeypatch.setattr(store, "incr", refuse)
    checked = []
    hasher = app.extensions["idp.hasher"]
    real_verify = hasher.verify
    monkeypatch.setattr(hasher, "verify", lambda *a, **k: checked.append(1) or real_verify(*a, **k))
    return checked


def _assert_closed(response) -> None:
    assert response.status_code == 503
    assert int(response.headers["Retry-After"]) > 0
    body = response.get_data(as_text=True)
    assert "Traceback" not in body and "StoreUnavailable" not in body


def test_item_86_sign_in_fails_closed_without_checking_the_password(app, client, counters_down):
    make_user(app)
    page = client.get("/login")
    response = client.post("/login", data={"csrf_token": csrf_token(page.get_data(as_text=True)),
                                           "email": "amara@example.org", "password": PASSWORD, "next": ""})
    _assert_closed(response)
    assert counters_down == []  # the password was never checked
    assert "Location" not in response.headers
    with app.app_context():
        assert db.session.scalar(db.select(db.func.count()).select_from(UserSession)) == 0


def test_item_86_mail_requests_fail_closed_and_send_nothing(app, client, smtp_server, counters_down):
    make_user(app, verified=False)
    for path in ("/forgot-password", "/verify-email/resend"):
        page = client.get(path)
        response = client.post(path, data={"csrf_token": csrf_token(page.get_data(as_text=True)),
                                           "email": "amara@example.org"})
        _assert_closed(response)
    from idp.services import delivery_worker

    delivery_worker.wait_idle(app)
    assert smtp_server.messages == []


def test_item_86_client_authentication_fails_closed(app, client, counters_down):
    client_id, _ = make_client(app)
    response = client.post("/token", data={"grant_type": "client_credentials"},
                           auth=(client_id, "a wrong secret that must be counted"))
    assert response.status_code == 503
    assert "access_token" not in response.get_data(as_text=True)
