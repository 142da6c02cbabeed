"""Checklist 49: a password reset never bypasses the second factor and steps cannot be skipped.
On an account with an authenticator app, a completed reset leaves the browser signed out, keeps the
app enrolled, and the new password alone only reaches the second-factor step (no session, no code
for a department); the set-new-password endpoint refuses calls without a valid reset link, links of
other flows (verification, email change, "this wasn't me"), and a second-factor step reached
without the password step."""
from __future__ import annotations

from urllib.parse import urlencode

import pytest

from idp.extensions import db
from idp.models import TotpCredential, UserSession
from idp.services import action_tokens as links
from tests.conftest import csrf_token
from tests.integration.test_signin_flows import PASSWORD, login, make_user
from tests.support.mfa import enrol_totp, totp_now
from tests.support.oidc import authorize_params, make_client, pkce_pair

NEW = "purple elephants dance at dawn"


def _post_reset(http, path, password=NEW):
    page = http.get(path)
    token = csrf_token(page.get_data(as_text=True)) if page.status_code == 200 else \
        csrf_token(http.get("/forgot-password").get_data(as_text=True))
    return http.post(path, data={"csrf_token": token, "password": password, "confirm": password})


def _live_sessions(app) -> int:
    with app.app_context():
        return db.session.scalar(db.select(db.func.count()).select_from(UserSession)
                                 .where(UserSession.ended_at.is_(None)))


def test_item_49_reset_on_a_totp_account_still_requires_the_second_factor(app, client):
    user_id = make_user(app)
    client_id, _ = make_client(app, first_party=True)
    assert login(client).status_code in (302, 303)
    secret, _codes = enrol_totp(client)
    with app.app_context():
        path = "/reset-password/" + links.issue(user_id, links.RESET_PASSWORD)
    assert _post_reset(client, path).status_code == 303
    assert client.get("/account/").status_code == 302  # not signed in by the reset
    assert _live_sessions(app) == 0
    with app.app_context():
        assert db.session.scalar(db.select(TotpCredential).where(TotpCredential.user_id == user_id)) is not None

    attacker = app.test_client()
    first = login(attacker, password=NEW)
    assert first.status_code == 303 and first.headers["Location"] == "/login/second-factor"
    assert attacker.get("/account/").status_code == 302
    assert _live_sessions(app) == 0
    _, challenge = pkce_pair()
    response = attacker.get("/authorize?" + urlencode(authorize_params(client_id, challenge, prompt="none")))
    assert response.status_code == 302 and "error=login_required" in response.headers["Location"]
    assert "code=" not in response.headers["Location"]
    # With the app's code the sign-in completes: the factor still works after the reset.
    page = attacker.get("/login/second-factor/app")
    done = attacker.post("/login/second-factor/app", data={"csrf_token": csrf_token(page.get_data(as_text=True)),
                                                          "code": totp_now(secret, 1)})
    assert done.status_code == 303 and attacker.get("/account/").status_code == 200
    assert secret and PASSWORD


@pytest.mark.parametrize("purpose, data", [
    (links.VERIFY_EMAIL, {"email": "amara@example.org"}),
    (links.CHANGE_EMAIL, {"email": "new@example.org", "old": "amara@example.org"}),
    (links.NOT_ME, {"event": "new_device", "factor": {}}),
])
def test_item_49_tokens_of_other_flows_cannot_set_a_password(app, client, purpose, data):
    user_id = make_user(app)
    with app.app_context():
        raw = links.issue(user_id, purpose, data=data)
    response = _post_reset(client, f"/reset-password/{raw}")
    assert response.status_code in (400, 403)
    assert login(app.test_client(), password=NEW).status_code == 401
    assert login(app.test_client(), password=PASSWORD).status_code == 303


@pytest.mark.parametrize("path", ["/reset-password/", "/reset-password/x", "/reset-password/" + "A" * 43,
                                  "/reset-password/../account/password"])
def test_item_49_set_new_password_without_a_verified_link_is_refused(app, client, path):
    make_user(app)
    response = _post_reset(client, path)
    assert response.status_code in (400, 403, 404)
    assert login(app.test_client(), password=NEW).status_code == 401


def test_item_49_second_factor_steps_without_the_password_step_are_refused(app, client):
    make_user(app)
    token = csrf_token(client.get("/login").get_data(as_text=True))
    for path in ("/login/second-factor/app", "/login/second-factor/recovery", "/login/second-factor/sms"):
        response = client.post(path, data={"csrf_token": token, "code": "123456"})
        assert response.status_code in (302, 303, 400)
        assert response.status_code == 400 or response.headers["Location"].startswith("/login")
    assert client.get("/account/").status_code == 302
    assert _live_sessions(app) == 0
