"""Checklist 81: one limiter per authenticator, enforced on every verification path. An attacker
who has the password (or a live session) guesses the second factor, the recovery codes, the
password again through prompt=login or a client secret at the token endpoint: every path counts
its tries against one per-account (per-client) counter, answers 429 once it is spent (even to the
right answer), and no fresh challenge, other page or other endpoint starts the count again.

The password at /login, the current password on the change-password page, SMS codes and the
account-link verifier are covered by the integration tests listed in SECURITY.md; reset and
verification links carry 256-bit tokens (nothing to guess), so they have no counter of their own."""
from __future__ import annotations

from urllib.parse import urlencode

from idp.extensions import db
from idp.models import UserSession
from tests.conftest import csrf_token
from tests.integration.test_pages_account import signed_in_client
from tests.integration.test_signin_flows import login
from tests.support.mfa import enrol_totp, form_token, totp_now
from tests.support.oidc import REDIRECT, authorize_params, make_client, pkce_pair


def _limit(app) -> int:
    """Password and client-secret tries per window."""
    return app.config["IDP_SETTINGS"].login_max_failures


def _otp_limit(app) -> int:
    """One-time-code tries per window (idp.services.otp_guard; the sign-in limit if unset)."""
    settings = app.config["IDP_SETTINGS"]
    return getattr(settings, "otp_max_failures", settings.login_max_failures)


def _post_code(client, path: str, code: str):
    return client.post(path, data={"csrf_token": form_token(client, path), "code": code})


def _signed_in(client) -> bool:
    return client.get("/account/").status_code == 200


def _enrolled(app):
    owner, user_id = signed_in_client(app)
    secret, codes = enrol_totp(owner)
    return user_id, secret, codes


def _password_then_challenge(app):
    attacker = app.test_client()
    response = login(attacker)
    assert response.status_code == 303 and response.headers["Location"] == "/login/second-factor"
    return attacker


def test_item_81_totp_guesses_are_limited_across_fresh_challenges(app):
    _, secret, _ = _enrolled(app)
    attacker = _password_then_challenge(app)
    for _ in range(_otp_limit(app)):
        assert _post_code(attacker, "/login/second-factor/app", "000000").status_code == 400
    # A new password sign-in (a fresh challenge) does not start the count again.
    attacker = _password_then_challenge(app)
    refused = _post_code(attacker, "/login/second-factor/app", totp_now(secret, 1))
    assert refused.status_code == 429
    assert "Too many attempts" in refused.get_data(as_text=True)
    assert not _signed_in(attacker)


def test_item_81_recovery_code_guesses_are_limited_and_do_not_burn_the_right_code(app):
    user_id, _, codes = _enrolled(app)
    attacker = _password_then_challenge(app)
    for guess in range(_otp_limit(app)):
        wrong = _post_code(attacker, "/login/second-factor/recovery", f"aaaaa-{guess:05d}"[:11])
        assert wrong.status_code == 400
    refused = _post_code(attacker, "/login/second-factor/recovery", codes[0])
    assert refused.status_code == 429 and not _signed_in(attacker)
    with app.app_context():
        from idp.models import RecoveryCode

        assert db.session.scalar(db.select(db.func.count()).select_from(RecoveryCode)
                                 .where(RecoveryCode.user_id == user_id, RecoveryCode.used_at.is_not(None))) == 0


def test_item_81_step_up_shares_the_totp_counter(app):
    """The step-up page is another way to the same authenticator: guesses there and at the sign-in
    challenge add up, and the spent limit refuses the right code at step-up too."""
    from idp.oidc.acr import ACR_MFA

    owner, user_id = signed_in_client(app)
    secret, _ = enrol_totp(owner)
    attacker = _password_then_challenge(app)
    half = _otp_limit(app) // 2
    for _ in range(half):
        assert _post_code(attacker, "/login/second-factor/app", "000000").status_code == 400
    started = owner.get("/login/step-up?" + urlencode({"acr": ACR_MFA, "next": "/account/"}))
    assert started.status_code == 303 and started.headers["Location"] == "/login/second-factor"
    for _ in range(_otp_limit(app) - half):
        assert _post_code(owner, "/login/second-factor/app", "000000").status_code == 400
    refused = _post_code(owner, "/login/second-factor/app", totp_now(secret, 1))
    assert refused.status_code == 429
    with app.app_context():
        live = db.session.scalars(db.select(UserSession).where(UserSession.user_id == user_id,
                                                                UserSession.ended_at.is_(None))).all()
        assert len(live) == 1 and "otp" not in (live[0].amr or [])


def test_item_81_prompt_login_reauth_uses_the_sign_in_counter(app):
    """prompt=login sends a signed-in resident to the same sign-in page and counter: the spent
    limit refuses even the right password, and no code is issued."""
    client_id, _ = make_client(app)
    owner, _ = signed_in_client(app)
    _, challenge = pkce_pair()
    params = authorize_params(client_id, challenge, prompt="login")
    response = owner.get("/authorize?" + urlencode(params))
    assert response.status_code in (302, 303)
    assert response.headers["Location"].startswith("/login")
    next_url = "/authorize?" + urlencode(params)
    for _ in range(_limit(app) - 1):
        assert login(owner, password="not the password at all!!", next_=next_url).status_code == 401
    assert login(owner, password="not the password at all!!", next_=next_url).status_code == 429
    refused = login(owner, next_=next_url)
    assert refused.status_code == 429
    assert not refused.headers.get("Location", "").startswith(REDIRECT)


def _token_call(client, client_id, secret, path="/token"):
    data = {"grant_type": "client_credentials"} if path == "/token" else {"token": "x" * 40}
    return client.post(path, data=data, auth=(client_id, secret))


def test_item_81_client_secret_guesses_are_limited_on_every_endpoint(app, client):
    client_id, secret = make_client(app)
    endpoints = ("/token", "/revoke", "/introspect")
    for n in range(_limit(app)):
        assert _token_call(client, client_id, "wrong-" + "x" * 40, endpoints[n % 3]).status_code == 401
    for path in ("/token", "/revoke", "/introspect"):
        refused = _token_call(client, client_id, secret, path)
        assert refused.status_code == 429, path
        assert refused.get_json()["error"] == "invalid_client"
        assert int(refused.headers["Retry-After"]) > 0
        assert "access_token" not in refused.get_data(as_text=True)
    # Another address (the department's own server) is not locked out by the attacker's guesses.
    elsewhere = app.test_client()
    ok = elsewhere.post("/token", data={"grant_type": "client_credentials"}, auth=(client_id, secret),
                        environ_base={"REMOTE_ADDR": "10.9.8.7"})
    assert ok.status_code == 200, ok.get_data(as_text=True)


def test_item_81_the_limit_is_shown_on_the_page(app):
    _enrolled(app)
    attacker = _password_then_challenge(app)
    for _ in range(_otp_limit(app) + 1):
        last = _post_code(attacker, "/login/second-factor/app", "000000")
    html = last.get_data(as_text=True)
    assert last.status_code == 429 and "Try again in" in html
    assert csrf_token(html)  # the page is the usual form, with its explanation
