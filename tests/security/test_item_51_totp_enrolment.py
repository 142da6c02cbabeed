"""Checklist 51: TOTP enrolment. Starting enrolment from a stale session, or from a session that
has not shown the resident's existing second factor, is refused and stores nothing; the seed is
160 bits, different every time, sealed in the database with a key held outside it, never in logs,
audit records or mail, and not shown again once the app is set up; starting again or enrolling
anew makes the old seed worthless; the resident is told."""
from __future__ import annotations

import base64
import logging
from datetime import timedelta

import pyotp
from sqlalchemy import func, update

from idp.extensions import db
from idp.models import AuditEvent, OutboundMail, TotpCredential, UserSession
from idp.models.types import utcnow
from idp.oidc.acr import ACR_PASSWORD
from idp.security import crypto
from idp.services import totp
from tests.integration.test_pages_account import signed_in_client
from tests.integration.test_signin_flows import login
from tests.support.mfa import enrol_totp, form_token, post_form, secret_from_page, totp_now
from tests.support.passkeys_http import signed_in_with_passkey, stepped_up


def _rows(app) -> int:
    with app.app_context():
        return db.session.scalar(db.select(func.count()).select_from(TotpCredential))


def _start(client):
    return post_form(client, "/account/security/app/start", token_from="/account/security")


def _pending_secret(client) -> str:
    assert _start(client).status_code == 303
    return secret_from_page(client.get("/account/security/app").get_data(as_text=True))


def test_item_51_a_stale_session_must_sign_in_again(app):
    client, user_id = signed_in_client(app)
    with app.app_context():
        db.session.execute(update(UserSession).values(auth_time=utcnow() - timedelta(minutes=11)))
        db.session.commit()
    response = _start(client)
    assert response.status_code == 303 and response.headers["Location"].startswith("/login")
    assert client.get("/account/security/app").status_code == 303
    assert _rows(app) == 0


def test_item_51_a_session_below_the_accounts_highest_level_must_step_up(app):
    owner, user_id, _ = signed_in_with_passkey(app)
    with app.app_context():  # as after a sign-in on a trusted browser: the password alone
        db.session.execute(update(UserSession).values(acr=ACR_PASSWORD, amr=["pwd"]))
        db.session.commit()
    response = _start(owner)
    assert response.status_code == 303 and response.headers["Location"].startswith("/login/step-up")
    assert owner.get("/account/security/app").status_code == 303
    assert _rows(app) == 0


def test_item_51_the_seed_is_160_random_bits_sealed_and_never_logged(app, smtp_server, caplog):
    caplog.set_level(logging.DEBUG)
    client, user_id = signed_in_client(app)
    seeds = {_pending_secret(client) for _ in range(3)}
    assert len(seeds) == 3
    for seed in seeds:
        assert len(base64.b32decode(seed)) * 8 >= 160
    secret, _ = enrol_totp(client)
    with app.app_context():
        row = db.session.scalar(db.select(TotpCredential))
        assert secret not in row.secret_encrypted and row.confirmed_at is not None
        assert crypto.unseal(row.secret_encrypted, totp.PURPOSE).decode() == secret  # sealed with the app key
        stored = " ".join(str(e.detail) for e in db.session.scalars(db.select(AuditEvent)))
        stored += " ".join(str(vars(m)) for m in db.session.scalars(db.select(OutboundMail)))
    assert secret not in stored
    spaced = " ".join(secret[i:i + 4] for i in range(0, len(secret), 4))
    logged = "\n".join(record.getMessage() for record in caplog.records)
    assert secret not in logged and spaced not in logged and "otpauth://" not in logged
    notice = smtp_server.wait_for("amara@example.org", subject_contains="sign-in method was added")
    assert secret not in str(notice)
    # Once set up, the seed is shown nowhere any more.
    assert client.get("/account/security/app").status_code == 303
    assert secret not in client.get("/account/security").get_data(as_text=True)


def test_item_51_the_enrolment_page_is_not_cached(app):
    client, _ = signed_in_client(app)
    _start(client)
    page = client.get("/account/security/app")
    assert "no-store" in page.headers.get("Cache-Control", "")


def test_item_51_starting_again_voids_the_pending_seed(app):
    client, user_id = signed_in_client(app)
    first = _pending_secret(client)
    second = _pending_secret(client)
    assert first != second
    wrong = client.post("/account/security/app", data={"csrf_token": form_token(client, "/account/security/app"),
                                                       "code": pyotp.TOTP(first).now()})
    assert wrong.status_code == 400
    with app.app_context():
        assert db.session.scalar(db.select(TotpCredential.confirmed_at)) is None


def test_item_51_enrolling_anew_voids_the_old_seed_at_sign_in(app):
    client, user_id = signed_in_client(app)
    old, _ = enrol_totp(client)
    stepped_up(app, user_id)
    assert post_form(client, "/account/security/app/remove", token_from="/account/security").status_code == 303
    new, _ = enrol_totp(client)
    assert new != old
    with app.app_context():
        db.session.execute(update(TotpCredential).values(last_used_step=0))
        db.session.commit()
    browser = app.test_client()
    login(browser)
    refused = browser.post("/login/second-factor/app",
                           data={"csrf_token": form_token(browser, "/login/second-factor/app"), "code": totp_now(old)})
    assert refused.status_code == 400 and browser.get("/account/").status_code == 302
