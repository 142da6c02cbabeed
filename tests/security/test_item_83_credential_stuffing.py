"""Checklist 83: credential stuffing. Leaked email/password pairs are tried against many accounts,
one password each, first from one address, then from rotating addresses. The per-IP limit stops
the first. For the second, from IDP_LOGIN_GLOBAL_MAX_FAILURES failures in the window every browser
new to the account it signs in to must solve the bot challenge (a script that does not is refused
without a password check, while a resident's browser solves it unseen and signs in); from twice
that, new browsers are refused outright. Residents on browsers they have signed in with before
keep signing in throughout (100 % in this run). A right password that is on a leaked-password list
signs nobody in: a reset link is mailed."""
from __future__ import annotations

import pytest

from idp.extensions import db
from idp.models import AuditEvent, UserSession
from idp.services import accounts
from tests.conftest import csrf_token, empty_tables_and_store, migrated_app
from tests.support.bot_challenge import answered
from tests.support.smtp import body_of

IP_LIMIT = 5
GLOBAL_LIMIT = 50  # the smallest the setting allows
PASSWORD = "a long enough resident passphrase"
LEAKED = "iloveyou"


@pytest.fixture(scope="module")
def stuffed_app(tmp_path_factory, smtp_server):
    with migrated_app(tmp_path_factory.mktemp("item83"), smtp_server.port, IDP_IP_MAX_FAILURES=str(IP_LIMIT),
                      IDP_LOGIN_GLOBAL_MAX_FAILURES=str(GLOBAL_LIMIT)) as application:
        yield application


@pytest.fixture
def stuffed(stuffed_app):
    yield stuffed_app
    empty_tables_and_store(stuffed_app)


def _resident(app, email: str, password: str = PASSWORD) -> int:
    with app.app_context():
        return accounts.create_user(email, password, name="Resident", email_verified=True).id


def _sign_in(http, email: str, password: str, ip: str, solve: bool = True):
    """A sign-in from ``ip``; the bot challenge answered as the page's script would, unless ``solve`` is False."""
    environ = {"REMOTE_ADDR": ip}
    html = http.get("/login", environ_base=environ).get_data(as_text=True)
    return http.post("/login", environ_base=environ, data={
        "csrf_token": csrf_token(html), "email": email, "password": password, "next": "",
        **(answered(html) if solve else {})})


def _password_checks(app) -> int:
    with app.app_context():
        return db.session.scalar(db.select(db.func.count()).select_from(AuditEvent)
                                 .where(AuditEvent.event == "signin.failure",
                                        AuditEvent.detail["reason"].as_string().in_(["bad_password",
                                                                                     "unknown_user"]))) or 0


def test_item_83_one_address_trying_many_accounts_is_stopped(stuffed):
    _resident(stuffed, "real@example.org")
    for n in range(IP_LIMIT):
        _sign_in(stuffed.test_client(), f"leaked{n}@example.org", "leaked password 1234", "198.51.100.9")
    # A hit from the list (the right pair) is refused too: the address has used up its tries.
    hit = _sign_in(stuffed.test_client(), "real@example.org", PASSWORD, "198.51.100.9")
    assert hit.status_code == 429
    assert _password_checks(stuffed) == IP_LIMIT
    assert _sign_in(stuffed.test_client(), "real@example.org", PASSWORD, "198.51.100.10").status_code == 303


def test_item_83_rotating_addresses_trip_the_global_limit_but_known_browsers_sign_in(stuffed):
    residents = [f"resident{n}@example.org" for n in range(5)]
    browsers = {}
    for n, email in enumerate(residents):
        _resident(stuffed, email)
        http = stuffed.test_client()
        assert _sign_in(http, email, PASSWORD, f"192.0.2.{n + 1}").status_code == 303
        token = csrf_token(http.get("/account/").get_data(as_text=True))
        http.post("/logout", data={"csrf_token": token})
        browsers[email] = http
    _resident(stuffed, "target@example.org")
    for n in range(GLOBAL_LIMIT):  # each guess from a new address, below every per-IP limit
        _sign_in(stuffed.test_client(), f"victim{n}@example.org", "leaked password 1234",
                 f"203.0.{n // 200}.{n % 200 + 1}")
    checks = _password_checks(stuffed)
    assert checks == GLOBAL_LIMIT
    # The surge is on: a script that does not solve the bot challenge is refused unchecked...
    for n, (email, password) in enumerate([("target@example.org", PASSWORD), ("victim999@example.org", "leaked 1")]):
        refused = _sign_in(stuffed.test_client(), email, password, f"203.0.9.{n + 1}", solve=False)
        assert refused.status_code == 429 and "automatic check" in refused.get_data(as_text=True)
    assert _password_checks(stuffed) == checks
    # ...while a resident's browser new to the account solves it and signs in.
    assert _sign_in(stuffed.test_client(), "target@example.org", PASSWORD, "203.0.9.3").status_code == 303
    for n in range(GLOBAL_LIMIT):  # the stuffing goes on, solving the challenge too
        _sign_in(stuffed.test_client(), f"more{n}@example.org", "leaked password 1234", f"203.1.{n // 200}.{n % 200 + 1}")
    checks = _password_checks(stuffed)
    assert checks == 2 * GLOBAL_LIMIT
    # At twice the limit, browsers new to the account are refused, solved challenge or not.
    hit = _sign_in(stuffed.test_client(), "target@example.org", PASSWORD, "203.0.9.4")
    assert hit.status_code == 429 and "Too many attempts" in hit.get_data(as_text=True)
    assert _password_checks(stuffed) == checks
    # Every resident on a browser they used before still signs in, unchallenged.
    signed_in = sum(_sign_in(http, email, PASSWORD, "192.0.2.200", solve=False).status_code == 303
                    for email, http in browsers.items())
    assert signed_in / len(browsers) >= 0.99


def test_item_83_a_leaked_password_forces_a_reset_instead_of_signing_in(stuffed, smtp_server):
    user_id = _resident(stuffed, "legacy@example.org")
    with stuffed.app_context():  # an account from before the password policy: set the hash directly
        from idp.models import User

        db.session.get(User, user_id).password_hash = stuffed.extensions["idp.hasher"].hash(LEAKED)
        db.session.commit()
    http = stuffed.test_client()
    response = _sign_in(http, "legacy@example.org", LEAKED, "192.0.2.50")
    assert response.status_code == 200
    assert "leaked passwords" in response.get_data(as_text=True)
    assert http.get("/account/").status_code != 200
    with stuffed.app_context():
        assert db.session.scalar(db.select(db.func.count()).select_from(UserSession)) == 0
        assert db.session.scalar(db.select(db.func.count()).select_from(AuditEvent)
                                 .where(AuditEvent.event == "signin.leaked_password")) == 1
    mail = smtp_server.wait_for("legacy@example.org")
    assert "/reset-password/" in body_of(mail)
    assert LEAKED not in body_of(mail)
    # A wrong password for that account gets the usual answer: nothing tells the password was leaked.
    wrong = _sign_in(stuffed.test_client(), "legacy@example.org", "iloveyou2", "192.0.2.51")
    assert wrong.status_code == 401 and "leaked passwords" not in wrong.get_data(as_text=True)


@pytest.mark.parametrize("value", ["10", "0", "many", "2000000"])
def test_item_83_the_global_limit_setting_is_validated(value):
    from idp.config import ConfigError, load_settings

    with pytest.raises(ConfigError) as refused:
        load_settings({"IDP_LOGIN_GLOBAL_MAX_FAILURES": value, "IDP_SECRET_KEY": "k" * 40})
    assert [p for p in refused.value.problems if p.startswith("IDP_LOGIN_GLOBAL_MAX_FAILURES:")]
