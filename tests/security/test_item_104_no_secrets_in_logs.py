"""Checklist 104: no secrets in logs. Drive sign-up, sign-in (wrong and right canary password), the
authenticator step, a password reset, the code, token, refresh, userinfo, introspection and
revocation endpoints with canary values, and grep every log record at DEBUG level (all loggers,
libraries included): no password, code, token, session id, client secret, TOTP code or full
municipal account number appears."""
from __future__ import annotations

import logging

from idp.extensions import db
from idp.models import TotpCredential, User
from idp.models.types import utcnow
from idp.services import action_tokens, totp
from tests.conftest import csrf_token
from tests.support.links import open_link
from tests.support.mfa import post_form, totp_now
from tests.support.oidc import exchange, get_code, login, make_client, make_user, pkce_pair
from tests.support.register import add_account, with_check_digit

CANARY_PASSWORD = "Canary-Pw-7f3e9a1c-long-enough"
CANARY_NEW_PASSWORD = "Canary-Pw-new-4b2d8e6f-long-enough"


def _session_id(browser) -> str:
    cookie = browser.get_cookie("idp_session")
    return cookie.value if cookie else ""


def test_item_104_no_canary_reaches_any_log_record(app, client, caplog):
    caplog.set_level(logging.DEBUG)
    secrets_seen: list[str] = []
    client_id, client_secret = make_client(app)
    secrets_seen.append(client_secret)
    make_user(app, email="canary@example.org", password=CANARY_PASSWORD)

    wrong = client.get("/login")
    client.post("/login", data={"email": "canary@example.org", "password": CANARY_PASSWORD + "x",
                                "csrf_token": csrf_token(wrong.get_data(as_text=True)), "next": "/account/"})
    login(client, email="canary@example.org", password=CANARY_PASSWORD)
    secrets_seen.append(_session_id(client))

    verifier, challenge = pkce_pair()
    code = get_code(client, client_id, challenge)
    tokens = exchange(client, client_id, client_secret, code, verifier).get_json()
    refreshed = client.post("/token", data={"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]},
                            auth=(client_id, client_secret)).get_json()
    client.get("/userinfo", headers={"Authorization": "Bearer " + refreshed["access_token"]})
    client.post("/introspect", data={"token": refreshed["access_token"]}, auth=(client_id, client_secret))
    client.post("/revoke", data={"token": refreshed["refresh_token"]}, auth=(client_id, client_secret))
    exchange(client, client_id, client_secret, code, verifier)  # a replay is logged: not its code
    secrets_seen += [code, verifier, tokens["access_token"], tokens["refresh_token"], tokens["id_token"],
                     refreshed["access_token"], refreshed["refresh_token"]]

    account = add_account(app, with_check_digit("712345678"), pin="9753")
    post_form(client, "/account/municipal/link", {"account_number": account, "proof_kind": "linking_pin",
                                                  "proof": "9753", "role": "owner"})
    post_form(client, "/account/municipal/link", {"account_number": account, "proof_kind": "linking_pin",
                                                  "proof": "1111", "role": "owner"})
    secrets_seen.append(account)

    with app.app_context():
        user = db.session.scalar(db.select(User).where(User.email == "canary@example.org"))
        secret = totp.begin_enrolment(user)
        db.session.scalar(db.select(TotpCredential)).confirmed_at = utcnow()
        db.session.commit()
        reset = action_tokens.issue(user.id, action_tokens.RESET_PASSWORD)
    second = app.test_client()
    login(second, email="canary@example.org", password=CANARY_PASSWORD)
    otp = totp_now(secret)
    post_form(second, "/login/second-factor/app", {"code": "000000"})
    post_form(second, "/login/second-factor/app", {"code": otp})
    secrets_seen += [secret, otp, _session_id(second), reset]

    resetter = app.test_client()
    page = open_link(resetter, f"/reset-password/{reset}")
    secrets_seen.append(_session_id(resetter))  # the session that now keeps the reset token
    resetter.post(page.request.path, data={"csrf_token": csrf_token(page.get_data(as_text=True)),
                                           "password": CANARY_NEW_PASSWORD, "confirm": CANARY_NEW_PASSWORD})
    resetter.get(f"/reset-password/{reset}")  # the used link, logged as a failure
    secrets_seen.append(CANARY_NEW_PASSWORD)

    logged = "\n".join(r.getMessage() + " " + str(r.__dict__.get("args")) for r in caplog.records)
    assert caplog.records, "nothing was logged: the test would prove nothing"
    leaks = [value[:6] + "…" for value in secrets_seen if value and value in logged]
    assert leaks == []
    assert "Canary-Pw" not in logged
