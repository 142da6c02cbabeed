"""Checklist 114: process crash mid-flow. A worker dies (SIGKILL) just before or just after each
database commit of: issuing a code, issuing tokens for a code, rotating a refresh token, resetting a
password, registering a passkey and linking a municipal account. After the crash the invariants
hold (a code yields tokens at most once, at most one live refresh token per family, a reset link is
used up exactly when the password changed, a passkey is fully registered or absent, a link exists at
most once) and the client's retry gets the original success or a clean error, never a second set of
tokens.

Every commit point is visited in-process (the crash point raises instead of killing, which leaves the
database exactly as a killed worker would); a real ``idp serve`` worker is SIGKILLed at the token
endpoint on PostgreSQL and Redis."""
from __future__ import annotations

import json
import re
import secrets
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from sqlalchemy import create_engine, func, text

from idp import crash_points
from idp.extensions import db
from idp.models import AccountLink, ActionToken, MunicipalAccount, Token, User, WebAuthnCredential
from idp.services import accounts, action_tokens
from tests.conftest import csrf_token, migrated_app
from tests.support.databases import postgres_admin_url, redis_url
from tests.support.links import open_link
from tests.support.oidc import REDIRECT, authorize_params, exchange, get_code, make_client, pkce_pair, query_of
from tests.support.register import add_account, with_check_digit
from tests.support.server import IdpServer
from tests.support.soft_authenticator import SoftAuthenticator

PASSWORD = "a long enough resident passphrase"


class Crash(BaseException):
    """The worker died here (raised instead of SIGKILL so one test process can visit every point)."""


@pytest.fixture(scope="module")
def crash_app(tmp_path_factory, smtp_server):
    tmp = tmp_path_factory.mktemp("crash")
    crash_file = tmp / "crash-point"
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(crash_points.ENV_VAR, str(crash_file))

        def die():
            raise Crash()

        patch.setattr(crash_points, "die", die)
        with migrated_app(tmp, smtp_server.port) as app:
            app.extensions["test.crash_file"] = crash_file
            try:
                yield app
            finally:
                app.extensions["idp.store"].flush()


def _visit_every_commit(app, endpoint: str, prepare, step, check) -> int:
    """For each commit of a request to ``endpoint`` (before it, then after it), prepare fresh state,
    run ``step`` armed to crash there, and ``check(state, crashed)``; returns the points visited."""
    crash_file = app.extensions["test.crash_file"]
    visited = 0
    for phase in ("before", "after"):
        for n in range(1, 15):
            state = prepare()
            crash_file.write_text(f"{phase} {endpoint} {n}")
            try:
                state["first"] = step(state)
                crashed = False
            except Crash:
                crashed = True
            crash_file.unlink(missing_ok=True)
            check(state, crashed)
            if not crashed:
                break
            visited += 1
    assert visited >= 2, f"no commit of {endpoint} was reached"
    return visited


_serial = iter(range(10**6))


def _resident(app):
    """A fresh signed-in resident: (browser, user id, email)."""
    email = f"crash{next(_serial)}@example.org"
    with app.app_context():
        user_id = accounts.create_user(email, PASSWORD, name="Crash Test", email_verified=True).id
    browser = app.test_client()
    page = browser.get("/login").get_data(as_text=True)
    signed_in = browser.post("/login", data={"email": email, "password": PASSWORD, "next": "/account/",
                                             "csrf_token": csrf_token(page)})
    assert signed_in.status_code == 303
    return browser, user_id, email


def _live_tokens(app, **where) -> list[Token]:
    with app.app_context():
        query = db.select(Token).where(Token.revoked_at.is_(None))
        for column, value in where.items():
            query = query.where(getattr(Token, column) == value)
        return list(db.session.scalars(query))


def _no_code_issued_tokens_twice(app) -> None:
    with app.app_context():
        doubled = db.session.execute(db.select(Token.code_id).where(Token.code_id.is_not(None))
                                     .group_by(Token.code_id).having(func.count() > 1)).all()
    assert doubled == []


# --- OIDC ---------------------------------------------------------------------------------------

def test_item_114_crash_while_issuing_a_code(crash_app):
    app = crash_app
    client_id, secret = make_client(app)
    browser, _, _ = _resident(app)
    get_code(browser, client_id, pkce_pair()[1])  # consent given once

    def prepare():
        verifier, challenge = pkce_pair()
        return {"verifier": verifier, "challenge": challenge}

    def step(state):
        return browser.get("/authorize", query_string=authorize_params(client_id, state["challenge"]))

    def check(state, crashed):
        response = step(state) if crashed else state["first"]  # the browser tries again
        code = query_of(response.headers["Location"])["code"]
        assert exchange(browser, client_id, secret, code, state["verifier"]).status_code == 200
        again = exchange(browser, client_id, secret, code, state["verifier"])
        assert again.status_code == 400 and again.get_json()["error"] == "invalid_grant"
        _no_code_issued_tokens_twice(app)

    _visit_every_commit(app, "oidc.authorize", prepare, step, check)


def test_item_114_crash_while_issuing_tokens_for_a_code(crash_app):
    app = crash_app
    client_id, secret = make_client(app)
    browser, _, _ = _resident(app)

    def prepare():
        verifier, challenge = pkce_pair()
        return {"verifier": verifier, "code": get_code(browser, client_id, challenge)}

    def step(state):
        return exchange(browser, client_id, secret, state["code"], state["verifier"])

    def check(state, crashed):
        if not crashed:
            assert state["first"].status_code == 200
            return
        retry = step(state)
        assert retry.status_code in (200, 400)
        with app.app_context():
            code_id = db.session.scalar(text("SELECT id FROM authorization_codes ORDER BY id DESC LIMIT 1"))
        live = _live_tokens(app, code_id=code_id)
        if retry.status_code == 200:  # the first attempt left nothing: the retry is the original success
            assert len(live) == 1 and browser.get("/userinfo", headers={
                "Authorization": "Bearer " + retry.get_json()["access_token"]}).status_code == 200
        else:  # a clean error; whatever the lost response carried is revoked, never a second set
            assert retry.get_json()["error"] == "invalid_grant" and live == []
        _no_code_issued_tokens_twice(app)

    _visit_every_commit(app, "oidc.token", prepare, step, check)


def test_item_114_crash_while_rotating_a_refresh_token(crash_app):
    app = crash_app
    client_id, secret = make_client(app)
    browser, _, _ = _resident(app)

    def prepare():
        verifier, challenge = pkce_pair()
        tokens = exchange(browser, client_id, secret, get_code(browser, client_id, challenge), verifier).get_json()
        return {"refresh": tokens["refresh_token"]}

    def step(state):
        return browser.post("/token", data={"grant_type": "refresh_token", "refresh_token": state["refresh"]},
                            auth=(client_id, secret))

    def check(state, crashed):
        with app.app_context():
            grant_id = db.session.scalar(db.select(Token.grant_id).order_by(Token.id.desc()).limit(1))
        retry = step(state) if crashed else state["first"]
        live_refresh = [t for t in _live_tokens(app, grant_id=grant_id)
                        if t.refresh_token_digest and t.rotated_at is None]
        assert len(live_refresh) <= 1  # one family never forks
        if retry.status_code == 200:
            assert len(live_refresh) == 1
            assert live_refresh[0].refresh_token_digest == action_tokens.digest(retry.get_json()["refresh_token"])
        else:
            assert retry.status_code == 400 and retry.get_json()["error"] == "invalid_grant"

    _visit_every_commit(app, "oidc.token", prepare, step, check)


# --- password reset, passkey registration, account linking -----------------------------------

def test_item_114_crash_while_resetting_a_password(crash_app):
    app = crash_app

    def prepare():
        _, user_id, _ = _resident(app)
        with app.app_context():
            raw = action_tokens.issue(user_id, action_tokens.RESET_PASSWORD)
        browser = app.test_client()
        page = open_link(browser, f"/reset-password/{raw}")
        return {"user_id": user_id, "raw": raw, "browser": browser, "csrf": csrf_token(page.get_data(as_text=True)),
                "form": page.request.path, "password": "new passphrase " + secrets.token_hex(8)}

    def step(state):
        return state["browser"].post(state["form"], data={
            "csrf_token": state["csrf"], "password": state["password"], "confirm": state["password"]})

    def state_of(state):
        with app.app_context():
            used = db.session.scalar(db.select(ActionToken.used_at).where(
                ActionToken.digest == action_tokens.digest(state["raw"]))) is not None
            user = db.session.get(User, state["user_id"])
            changed = app.extensions["idp.hasher"].verify(user.password_hash, state["password"])
        return used, changed

    def check(state, crashed):
        used, changed = state_of(state)
        assert used == changed  # the link is used up exactly when the password changed
        if crashed:
            retry = step(state)
            assert retry.status_code in (200, 303, 400)
            assert state_of(state) == (True, True) if retry.status_code == 303 else used
        else:
            assert state["first"].status_code == 303 and (used, changed) == (True, True)

    _visit_every_commit(app, "auth.reset_password", prepare, step, check)


def _post_json(browser, path, body=None):
    token = csrf_token(browser.get("/login").get_data(as_text=True))
    return browser.post(path, json=body, headers={"X-CSRFToken": token})


def test_item_114_crash_while_registering_a_passkey(crash_app):
    app = crash_app

    def prepare():
        browser, user_id, _ = _resident(app)
        key = SoftAuthenticator("localhost", "http://localhost")
        options = _post_json(browser, "/account/security/passkeys/options").get_data(as_text=True)
        return {"browser": browser, "user_id": user_id, "key": key, "credential": key.create(options)}

    def step(state):
        return _post_json(state["browser"], "/account/security/passkeys", {"credential": state["credential"],
                                                                            "name": "Phone"})

    def rows(state):
        with app.app_context():
            return list(db.session.scalars(db.select(WebAuthnCredential).where(
                WebAuthnCredential.user_id == state["user_id"])))

    def check(state, crashed):
        found = rows(state)
        assert len(found) <= 1
        assert all(r.public_key and r.credential_id and r.name for r in found)  # never half-registered
        if not crashed:
            assert state["first"].status_code == 200 and len(found) == 1
            return
        if not found:  # absent: registering again works and gives exactly one
            options = _post_json(state["browser"], "/account/security/passkeys/options").get_data(as_text=True)
            again = _post_json(state["browser"], "/account/security/passkeys",
                               {"credential": state["key"].create(options), "name": "Phone"})
            assert again.status_code == 200 and len(rows(state)) == 1

    _visit_every_commit(app, "mfa.add_passkey", prepare, step, check)


def test_item_114_crash_while_linking_an_account(crash_app):
    app = crash_app

    def prepare():
        browser, user_id, _ = _resident(app)
        number = add_account(app, with_check_digit(f"5{next(_serial):08d}"), pin="2468")
        page = browser.get("/account/municipal/link").get_data(as_text=True)
        return {"browser": browser, "user_id": user_id, "number": number, "csrf": csrf_token(page)}

    def step(state):
        return state["browser"].post("/account/municipal/link", data={
            "csrf_token": state["csrf"], "account_number": state["number"], "proof_kind": "linking_pin", "proof": "2468",
            "role": "owner"})

    def links(state):
        with app.app_context():
            return db.session.scalar(db.select(func.count()).select_from(AccountLink).join(
                MunicipalAccount, MunicipalAccount.id == AccountLink.account_id).where(
                AccountLink.user_id == state["user_id"], MunicipalAccount.account_number == state["number"]))

    def check(state, crashed):
        assert links(state) <= 1
        if crashed:
            retry = step(state)
            assert retry.status_code in (303, 400) and links(state) == 1
        else:
            assert state["first"].status_code == 303 and links(state) == 1

    _visit_every_commit(app, "municipal.link", prepare, step, check)


# --- a real worker killed with SIGKILL (PostgreSQL and Redis) ------------------------------------

@pytest.fixture(scope="module")
def killable_server(tmp_path_factory, smtp_server):
    if not (postgres_admin_url() and redis_url(2)):
        pytest.skip("needs IDP_TEST_DATABASE_URL and IDP_TEST_REDIS_URL (a worker's state must outlive it)")
    tmp = tmp_path_factory.mktemp("killed")
    server = IdpServer(tmp, smtp_port=smtp_server.port,
                       extra_env={crash_points.ENV_VAR: str(tmp / "crash-point")}).start()
    server.crash_file = tmp / "crash-point"
    try:
        yield server
    finally:
        server.stop()


def _server_tokens(server, email):
    server.cli("users", "create", "--email", email, "--password", PASSWORD, "--verified-email")
    created = json.loads(server.cli("clients", "create", "--name", "Billing", "--redirect-uri", REDIRECT,
                                    "--scope", "openid email offline_access", "--grant-type", "authorization_code",
                                    "--grant-type", "refresh_token", "--first-party", "--json").stdout)
    browser = requests.Session()
    page = browser.get(server.url + "/login", timeout=10).text
    browser.post(server.url + "/login", data={"csrf_token": csrf_token(page), "email": email, "password": PASSWORD,
                                              "next": "/account/"}, allow_redirects=False, timeout=10)
    return browser, created["client_id"], created["client_secret"]


def _server_code(server, browser, client_id):
    verifier, challenge = pkce_pair()
    authorized = browser.get(server.url + "/authorize", params=authorize_params(client_id, challenge, scope="openid email offline_access"),
                             allow_redirects=False, timeout=10)
    assert authorized.status_code == 302, authorized.text[:300]
    query = parse_qs(urlsplit(authorized.headers["Location"]).query)
    assert "code" in query, authorized.headers["Location"]
    return query["code"][0], verifier


def _kill_at(server, point: str, send):
    server.crash_file.write_text(point)
    with pytest.raises(requests.ConnectionError):
        send()
    assert not server.crash_file.exists()  # the worker died at the armed point
    assert server.process.poll() is None  # the master lives on and starts a new worker


def test_item_114_sigkilled_worker_after_token_commit_never_yields_two_token_sets(killable_server):
    server = killable_server
    browser, client_id, secret = _server_tokens(server, "killed-token@example.org")
    code, verifier = _server_code(server, browser, client_id)
    form = {"grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT, "code_verifier": verifier}

    def redeem():
        return requests.post(server.url + "/token", data=form, auth=(client_id, secret), timeout=20)

    _kill_at(server, "after oidc.token 2", redeem)  # the code is used and the tokens stored; no answer
    retry = redeem()
    assert retry.status_code == 400 and retry.json()["error"] == "invalid_grant"
    engine = create_engine(server.database_url.replace("postgresql://", "postgresql+psycopg://", 1))
    with engine.connect() as conn:
        rows = conn.execute(text("SELECT revoked_at FROM tokens t JOIN authorization_codes c ON t.code_id = c.id"
                                 " WHERE c.client_id = :c"), {"c": client_id}).all()
    engine.dispose()
    assert len(rows) <= 1 and all(r.revoked_at is not None for r in rows)  # the lost response's tokens are dead


def test_item_114_sigkilled_worker_before_refresh_commit_keeps_the_old_refresh_token(killable_server):
    server = killable_server
    browser, client_id, secret = _server_tokens(server, "killed-refresh@example.org")
    code, verifier = _server_code(server, browser, client_id)
    first = requests.post(server.url + "/token", data={"grant_type": "authorization_code", "code": code,
                                                       "redirect_uri": REDIRECT, "code_verifier": verifier},
                          auth=(client_id, secret), timeout=20).json()

    def refresh():
        return requests.post(server.url + "/token", data={"grant_type": "refresh_token",
                                                          "refresh_token": first["refresh_token"]},
                             auth=(client_id, secret), timeout=20)

    _kill_at(server, "before oidc.token 1", refresh)  # the rotation's transaction dies uncommitted
    retry = refresh()
    assert retry.status_code == 200, retry.text  # the client's retry is the original success
    again = refresh()
    assert again.status_code == 400 and again.json()["error"] == "invalid_grant"
    assert re.match(r"^[\w-]+$", retry.json()["refresh_token"])
