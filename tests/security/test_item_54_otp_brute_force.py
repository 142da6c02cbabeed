"""Checklist 54: OTP brute force is bounded on every path. Wrong authenticator-app and recovery
codes are guessed at sign-in, at step-up, at the confirmation that removing a factor asks for, and
from several sessions at once: one limiter per resident and authenticator throttles after 5 tries
in 5 minutes (the right code is then refused too and is not even checked), blocks the
authenticator after at most 100 wrong codes in a row until it is replaced, and counts 100
parallel guesses atomically."""
from __future__ import annotations

import threading

import pytest
from sqlalchemy import update

from idp.extensions import db
from idp.models import AuditEvent, RecoveryCode, TotpCredential, User, UserSession
from idp.services import DomainError, Throttled, recovery_codes, throttle, totp
from tests.integration.test_pages_account import signed_in_client
from tests.integration.test_signin_flows import login
from tests.support.mfa import enrol_totp, form_token, post_form, totp_now

APP = "/login/second-factor/app"
RECOVERY = "/login/second-factor/recovery"


def _fresh_steps(app, user_id):
    """Let the current code be used again (as if 30 seconds had passed) without touching counters."""
    with app.app_context():
        db.session.execute(update(TotpCredential).where(TotpCredential.user_id == user_id).values(last_used_step=0))
        db.session.commit()


def _window_passes(app, user_id, kind="totp"):
    """The 5-minute window ends: its counter in the store expires (the database's count does not)."""
    with app.app_context():
        throttle.reset(f"otp:{kind}", str(user_id))


def _submit(client, path, code):
    return client.post(path, data={"csrf_token": form_token(client, path), "code": code})


def _totp_row(app, user_id) -> TotpCredential | None:
    with app.app_context():
        return db.session.scalar(db.select(TotpCredential).where(TotpCredential.user_id == user_id))


def _events(app, name) -> int:
    with app.app_context():
        return len(db.session.scalars(db.select(AuditEvent).where(AuditEvent.event == name)).all())


def _enrolled(app):
    client, user_id = signed_in_client(app)
    secret, codes = enrol_totp(client)
    _fresh_steps(app, user_id)
    return client, user_id, secret, codes


def test_item_54_login_throttles_after_five_wrong_codes_and_refuses_the_right_one(app):
    _, user_id, secret, _ = _enrolled(app)
    attacker = app.test_client()
    assert login(attacker).headers["Location"] == "/login/second-factor"
    for guess in ("000000", "111111", "222222", "333333", "444444"):
        assert _submit(attacker, APP, guess).status_code == 400
    refused = _submit(attacker, APP, totp_now(secret))
    assert refused.status_code == 429
    assert "Too many" in refused.get_data(as_text=True)
    assert attacker.get("/account/").status_code == 302  # still not signed in
    assert _totp_row(app, user_id).last_used_step == 0  # the right code was never even compared
    assert _events(app, "mfa.throttled") >= 1
    # A new session (the same attacker with the password again) is counted against the same limit.
    again = app.test_client()
    login(again)
    assert _submit(again, APP, totp_now(secret)).status_code == 429
    # When the window has passed, the resident gets in.
    _window_passes(app, user_id)
    assert _submit(again, APP, totp_now(secret)).status_code == 303
    assert _totp_row(app, user_id).failed_attempts == 0  # a right code ends the run of failures


def test_item_54_step_up_login_and_remove_confirmation_share_one_count(app):
    client, user_id, secret, _ = _enrolled(app)
    # Removing the app from a password-only session asks for the second factor first (step-up).
    asked = post_form(client, "/account/security/app/remove", token_from="/account/security")
    assert asked.status_code == 303 and asked.headers["Location"].startswith("/login/step-up")
    assert client.get(asked.headers["Location"]).headers["Location"] == "/login/second-factor"
    for guess in ("000000", "111111", "222222"):
        assert _submit(client, APP, guess).status_code == 400
    elsewhere = app.test_client()  # meanwhile, guesses at sign-in in another browser
    login(elsewhere)
    for guess in ("555555", "666666"):
        assert _submit(elsewhere, APP, guess).status_code == 400
    assert _submit(client, APP, totp_now(secret)).status_code == 429
    assert _submit(elsewhere, APP, totp_now(secret)).status_code == 429
    assert _totp_row(app, user_id) is not None  # nothing was removed
    with app.app_context():
        record = db.session.scalar(db.select(UserSession).where(UserSession.user_id == user_id,
                                                                UserSession.ended_at.is_(None)))
        assert "otp" not in (record.amr or [])  # the step-up did not happen


def test_item_54_recovery_codes_are_throttled_like_the_app(app):
    _, user_id, _, codes = _enrolled(app)
    attacker = app.test_client()
    login(attacker)
    for i in range(5):
        assert _submit(attacker, RECOVERY, f"aaaaa-bbbbb-cccc{i + 2}").status_code == 400
    assert _submit(attacker, RECOVERY, codes[0]).status_code == 429
    assert attacker.get("/account/").status_code == 302
    with app.app_context():
        assert db.session.scalar(db.select(db.func.count()).select_from(RecoveryCode)
                                 .where(RecoveryCode.user_id == user_id, RecoveryCode.used_at.is_not(None))) == 0


def test_item_54_a_hundred_wrong_codes_in_a_row_block_the_authenticator(app):
    limit = app.config["IDP_SETTINGS"].otp_lockout_failures
    assert limit <= 100
    _, user_id, secret, codes = _enrolled(app)
    with app.test_request_context():
        user = db.session.get(User, user_id)
        for i in range(limit):  # many windows, five wrong codes each, never a right one
            if i % 5 == 0:
                _window_passes(app, user_id)
            assert totp.verify(user, f"{i:06d}" if f"{i:06d}" != totp_now(secret) else "999999") is False
        _window_passes(app, user_id)
        with pytest.raises(Throttled) as blocked:
            totp.verify(user, totp_now(secret))
        assert blocked.value.code == "authenticator_locked"
    assert _totp_row(app, user_id).last_used_step == 0
    assert _events(app, "mfa.authenticator_locked") == 1
    # Through the pages too: the right code is refused, the other methods still work.
    browser = app.test_client()
    login(browser)
    assert _submit(browser, APP, totp_now(secret)).status_code == 429
    assert _submit(browser, RECOVERY, codes[0]).status_code == 303
    # Replacing the app (remove, set up again) is what unblocks it.
    with app.test_request_context():
        user = db.session.get(User, user_id)
        totp.remove(user)
        new_secret = totp.begin_enrolment(user)
        assert totp.confirm_enrolment(user, totp_now(new_secret))
        db.session.execute(update(TotpCredential).values(last_used_step=0))
        db.session.commit()
        assert totp.verify(user, totp_now(new_secret)) is True


def test_item_54_consecutive_means_in_a_row(app):
    _, user_id, secret, _ = _enrolled(app)
    with app.test_request_context():
        user = db.session.get(User, user_id)
        for _ in range(3):
            assert totp.verify(user, "000000") is False
        assert _totp_row(app, user_id).failed_attempts == 3
        assert totp.verify(user, totp_now(secret)) is True
        assert _totp_row(app, user_id).failed_attempts == 0


def test_item_54_recovery_code_block_lifts_only_with_a_new_set(app):
    _, user_id, _, codes = _enrolled(app)
    limit = app.config["IDP_SETTINGS"].otp_lockout_failures
    with app.app_context():
        db.session.execute(update(User).where(User.id == user_id).values(recovery_code_failures=limit))
        db.session.commit()
    with app.test_request_context():
        user = db.session.get(User, user_id)
        with pytest.raises(Throttled) as blocked:
            recovery_codes.use(user, codes[0])
        assert blocked.value.code == "authenticator_locked"
        assert recovery_codes.remaining(user) == 10  # the right code was not spent
        fresh = recovery_codes.generate(user)
        assert recovery_codes.use(user, fresh[0]) is True


def test_item_54_parallel_guesses_are_counted_atomically(app, monkeypatch):
    _, user_id, secret, _ = _enrolled(app)
    allowed = app.config["IDP_SETTINGS"].otp_max_failures
    sqlite = app.config["IDP_SETTINGS"].database_url.startswith("sqlite")
    guesses = 30 if sqlite else 100  # SQLite serialises writers; PostgreSQL takes the full hundred
    compared = []
    original = totp._accept
    monkeypatch.setattr(totp, "_accept", lambda found, code: compared.append(code) or original(found, code))
    outcomes = []
    barrier = threading.Barrier(guesses)

    def guess(i):
        with app.test_request_context():
            barrier.wait()
            try:
                user = db.session.get(User, user_id)
                outcomes.append(totp.verify(user, f"{i:06d}" if f"{i:06d}" != totp_now(secret) else "999999"))
            except DomainError as exc:
                outcomes.append(exc.code)
            finally:
                db.session.remove()

    threads = [threading.Thread(target=guess, args=(i,)) for i in range(guesses)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(outcomes) == guesses
    assert len(compared) == allowed  # never more codes compared than the limit, however they race
    assert outcomes.count(False) == allowed and outcomes.count("too_many_tries") == guesses - allowed
    assert _totp_row(app, user_id).failed_attempts == allowed
    with app.test_request_context():
        with pytest.raises(Throttled):
            totp.verify(db.session.get(User, user_id), totp_now(secret))
