"""Checklist 40: hashing DoS. 10 kB and 1 MB passwords sent to every form that takes a password
(sign-in, sign-up, reset, change, re-authentication) are refused with 400 before any argon2 work
(the documented maximum is 1,024 characters of input, 256 for a new password), nothing is stored;
and a burst of concurrent maximum-length hashes never runs more than IDP_MAX_CONCURRENT_HASHES at
once, so argon2 memory × concurrency stays bounded."""
from __future__ import annotations

import threading
import time

import pytest

from idp.extensions import db
from idp.models import ActionToken, User
from idp.services import action_tokens as links
from idp.web.forms import MAX_PASSWORD_INPUT
from tests.conftest import csrf_token
from tests.integration.test_signin_flows import PASSWORD, login, make_user
from tests.support.links import open_link

SIZES = [10 * 1024, 1024 * 1024]


class _Spy:
    """Counts calls into argon2 (hash or verify) on the app's hasher."""

    def __init__(self, argon2_hasher):
        self.inner, self.calls = argon2_hasher, 0

    def __getattr__(self, name):
        target = getattr(self.inner, name)
        if name in ("hash", "verify"):
            def counted(*args, **kwargs):
                self.calls += 1
                return target(*args, **kwargs)
            return counted
        return target


@pytest.fixture
def argon2_calls(app, monkeypatch):
    hasher = app.extensions["idp.hasher"]
    spy = _Spy(hasher._ph)
    monkeypatch.setattr(hasher, "_ph", spy)
    return spy


def _post(client, path, data, token_from=None):
    page = client.get(token_from or path)
    return client.post(path, data={"csrf_token": csrf_token(page.get_data(as_text=True)), **data})


@pytest.mark.parametrize("size", SIZES)
def test_item_40_huge_password_at_sign_in_is_400_without_hashing(app, client, argon2_calls, size):
    make_user(app)
    argon2_calls.calls = 0
    response = _post(client, "/login", {"email": "amara@example.org", "password": "p" * size})
    assert response.status_code == 400
    assert argon2_calls.calls == 0
    assert "p" * 200 not in response.get_data(as_text=True)


@pytest.mark.parametrize("size", SIZES)
def test_item_40_huge_password_at_sign_up_is_400_and_nothing_stored(app, client, argon2_calls, smtp_server, size):
    response = _post(client, "/register", {"name": "Amara", "email": "amara@example.org", "password": "p" * size})
    assert response.status_code == 400 and argon2_calls.calls == 0
    with app.app_context():
        assert db.session.scalar(db.select(db.func.count(User.id))) == 0
    assert smtp_server.messages == []


@pytest.mark.parametrize("size", SIZES)
def test_item_40_huge_password_at_reset_is_400_and_link_still_unused(app, client, argon2_calls, size):
    user_id = make_user(app)
    with app.app_context():
        raw = links.issue(user_id, links.RESET_PASSWORD)
    argon2_calls.calls = 0
    page = open_link(client, f"/reset-password/{raw}")
    assert page.status_code == 200
    response = client.post(page.request.path, data={"csrf_token": csrf_token(page.get_data(as_text=True)),
                                                    "password": "p" * size, "confirm": "p" * size})
    assert response.status_code == 400 and argon2_calls.calls == 0
    with app.app_context():
        assert db.session.scalar(db.select(ActionToken.used_at)) is None


@pytest.mark.parametrize("field", ["current_password", "password"])
def test_item_40_huge_password_at_change_is_400_without_hashing(app, client, argon2_calls, field):
    make_user(app)
    assert login(client).status_code == 303
    with app.app_context():
        before = db.session.scalar(db.select(User.password_hash))
    argon2_calls.calls = 0
    data = {"current_password": PASSWORD, "password": "new pass phrase ok", "confirm": "new pass phrase ok"}
    data[field] = "p" * (1024 * 1024)
    if field == "password":
        data["confirm"] = data["password"]
    response = _post(client, "/account/password", data)
    assert response.status_code == 400 and argon2_calls.calls == 0
    with app.app_context():
        assert db.session.scalar(db.select(User.password_hash)) == before


def test_item_40_just_over_the_input_limit_is_refused_and_the_limit_itself_is_checked(app, client, argon2_calls):
    make_user(app)
    argon2_calls.calls = 0
    over = _post(client, "/login", {"email": "amara@example.org", "password": "p" * (MAX_PASSWORD_INPUT + 1)})
    assert over.status_code == 400 and argon2_calls.calls == 0
    at_limit = _post(app.test_client(), "/login", {"email": "amara@example.org", "password": "p" * MAX_PASSWORD_INPUT})
    assert at_limit.status_code == 401 and argon2_calls.calls == 1  # a real (wrong) attempt


def test_item_40_concurrent_max_length_hashes_are_bounded_by_the_semaphore(app):
    hasher = app.extensions["idp.hasher"]
    limit = app.config["IDP_SETTINGS"].max_concurrent_hashes
    inner = hasher._ph
    lock = threading.Lock()
    state = {"now": 0, "peak": 0}

    class Counting:
        def __getattr__(self, name):
            return getattr(inner, name)

        def verify(self, *args):
            with lock:
                state["now"] += 1
                state["peak"] = max(state["peak"], state["now"])
            try:
                time.sleep(0.02)  # keep each slot busy long enough for the others to pile up
                return inner.verify(*args)
            finally:
                with lock:
                    state["now"] -= 1

    hasher._ph = Counting()
    try:
        stored = inner.hash("q" * 256)
        results = []
        threads = [threading.Thread(target=lambda: results.append(hasher.verify(stored, "q" * MAX_PASSWORD_INPUT)))
                   for _ in range(limit * 6)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
    finally:
        hasher._ph = inner
    assert len(results) == limit * 6 and not any(results)
    assert state["peak"] == limit  # saturated, never exceeded
