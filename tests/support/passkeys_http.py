"""Driving the passkey ceremonies through the HTTP endpoints (as passkeys.js does) with the
software authenticator of tests/support/soft_authenticator.py."""
from __future__ import annotations

import json

from tests.conftest import csrf_token
from tests.integration.test_signin_flows import login, make_user
from tests.support.soft_authenticator import SoftAuthenticator

RP_ID, ORIGIN = "localhost", "http://localhost"


def token(client) -> str:
    """This browser session's CSRF token (the one passkeys.js sends as X-CSRFToken)."""
    return csrf_token(client.get("/login").get_data(as_text=True))


def post_json(client, path: str, body=None, *, raw: bytes | None = None):
    headers = {"X-CSRFToken": token(client)}
    if raw is not None:
        return client.post(path, data=raw, headers={**headers, "Content-Type": "application/json"})
    return client.post(path, json=body, headers=headers)


def registration_options(client) -> str:
    response = post_json(client, "/account/security/passkeys/options")
    assert response.status_code == 200, response.status_code
    return response.get_data(as_text=True)


def add_passkey(client, credential, name: str = "My phone"):
    return post_json(client, "/account/security/passkeys", {"credential": credential, "name": name})


def signed_in_with_passkey(app, email: str = "amara@example.org", **key_options):
    """A signed-in browser whose resident registered a passkey through the pages:
    (browser, user id, authenticator)."""
    client = app.test_client()
    user_id = make_user(app, email=email)
    assert login(client, email=email).status_code == 303
    key = SoftAuthenticator(RP_ID, ORIGIN, **key_options)
    response = add_passkey(client, key.create(registration_options(client)))
    assert response.status_code == 200, response.get_data(as_text=True)
    stepped_up(app, user_id)
    return client, user_id, key


def stepped_up(app, user_id: int) -> None:
    """As after showing the second factor: the resident's sessions may change factors again."""
    from sqlalchemy import update

    from idp.extensions import db
    from idp.models import UserSession
    from idp.oidc.acr import ACR_MFA

    with app.app_context():
        db.session.execute(update(UserSession).where(UserSession.user_id == user_id)
                           .values(acr=ACR_MFA, amr=["hwk", "mfa", "pwd"]))
        db.session.commit()


def passwordless_options(client) -> str:
    response = post_json(client, "/login/passkey/options?mode=passwordless")
    assert response.status_code == 200
    return response.get_data(as_text=True)


def finish_sign_in(client, credential):
    return post_json(client, "/login/passkey", {"credential": credential, "next": "/account/"})


def challenge_of(options_json: str) -> str:
    return json.loads(options_json)["challenge"]
