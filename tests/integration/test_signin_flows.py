"""Registration, verification, sign-in, throttling and sign-out through the hosted pages."""
from __future__ import annotations

import re
from datetime import timedelta

import pytest

from idp.extensions import db
from idp.models import ActionToken, AuditEvent, User, UserSession
from idp.models.types import utcnow
from idp.services import accounts
from tests.conftest import blank_tokens, csrf_token, page_without_tokens
from tests.support.bot_challenge import answered
from tests.support.links import open_link
from tests.support.smtp import body_of, first_link

PASSWORD = "correct horse battery stapler"
COOKIE = "idp_session"


def _get_form(client, path):
    page = client.get(path)
    assert page.status_code == 200, page.status_code
    return csrf_token(page.get_data(as_text=True))


def register(client, email="amara@example.org", name="Amara Dlamini", password=PASSWORD, next_=""):
    token = _get_form(client, "/register")
    return client.post("/register", data={"csrf_token": token, "name": name, "email": email,
                                          "password": password, "next": next_})


def login(client, email="amara@example.org", password=PASSWORD, next_="", solve_challenge=True):
    """Sign in through the page; like a browser running its script, the bot challenge is answered
    unless ``solve_challenge`` is False."""
    page = client.get("/login" + (f"?next={next_}" if next_ else ""))
    assert page.status_code == 200, page.status_code
    html = page.get_data(as_text=True)
    return client.post("/login", data={"csrf_token": csrf_token(html), "email": email, "password": password,
                                       "next": next_, **(answered(html) if solve_challenge else {})})


def make_user(app, email="amara@example.org", password=PASSWORD, verified=True, name="Amara Dlamini"):
    with app.app_context():
        user = accounts.create_user(email, password, name=name, email_verified=verified)
        return user.id


def cookie(client):
    found = client.get_cookie(COOKIE)
    return found.value if found else None


def path_of(link: str) -> str:
    return re.sub(r"^https?://[^/]+", "", link)


def test_register_verify_and_sign_in_through_real_mail(app, client, smtp_server):
    response = register(client)
    assert response.status_code == 200
    assert "Check your email" in response.get_data(as_text=True)
    message = smtp_server.wait_for("amara@example.org", subject_contains="Confirm")
    link = first_link(message)
    assert link.startswith("http://localhost/verify-email/")
    with app.app_context():
        user = db.session.scalar(db.select(User).where(User.email == "amara@example.org"))
        assert user is not None and not user.email_verified
        stored = db.session.scalar(db.select(ActionToken))
        assert stored.purpose == "verify_email"
        assert link.rsplit("/", 1)[1] not in (stored.digest,)  # only the digest is stored
        assert db.session.scalar(db.select(AuditEvent).where(AuditEvent.event == "user.registered"))

    # GET does not use the link up (mail scanners); the POST does.
    page = open_link(client, link)
    assert page.status_code == 200 and "Confirm" in page.get_data(as_text=True)
    page = open_link(client, link)
    confirmed = client.post(page.request.path, data={"csrf_token": csrf_token(page.get_data(as_text=True))})
    assert confirmed.status_code == 303
    with app.app_context():
        assert db.session.scalar(db.select(User)).email_verified

    signed_in = login(client)
    assert signed_in.status_code == 303 and signed_in.headers["Location"] == "/account/"
    account = client.get("/account/")
    assert account.status_code == 200 and "amara@example.org" in account.get_data(as_text=True)

    # Single use: the same link now gives the generic page with a way to get a new one.
    again = client.get(path_of(link))
    assert again.status_code == 400
    assert "not valid or has expired" in again.get_data(as_text=True)
    assert "/verify-email/resend" in again.get_data(as_text=True)


def test_verify_link_expires(app, client, smtp_server):
    register(client)
    link = first_link(smtp_server.wait_for("amara@example.org"))
    with app.app_context():
        db.session.scalar(db.select(ActionToken)).expires_at = utcnow() - timedelta(seconds=1)
        db.session.commit()
    assert client.get(path_of(link)).status_code == 400
    page = client.get("/register")
    response = client.post(path_of(link), data={"csrf_token": csrf_token(page.get_data(as_text=True))})
    assert response.status_code == 400
    with app.app_context():
        assert not db.session.scalar(db.select(User)).email_verified


def test_duplicate_registration_answers_alike_and_warns_owner(app, client, smtp_server):
    make_user(app)
    first = register(client, email="new@example.org")
    duplicate = register(client, email="Amara@Example.org", name="Someone Else", password="another long passphrase here")
    assert duplicate.status_code == first.status_code == 200
    assert page_without_tokens(duplicate) == page_without_tokens(first)
    warning = smtp_server.wait_for("amara@example.org", subject_contains="tried to register")
    assert "/forgot-password" in body_of(warning)
    with app.app_context():
        assert db.session.scalar(db.select(db.func.count(User.id))) == 2


@pytest.mark.parametrize("password, reason", [
    ("short", "at least 15 characters"),
    ("Password12345678", "too easy to guess"),
    ("1qaz2wsx3edc4rfv", "too common"),
    ("aaaaaaaaaaaaaaaaaa", "too"),
    ("amara.dlamini@example.org1", "email address"),
    ("ecitizen2026!!!!", "too easy to guess"),
])
def test_register_refuses_bad_passwords_with_reason(app, client, smtp_server, password, reason):
    response = register(client, email="amara.dlamini@example.org", password=password)
    assert response.status_code == 400
    html = response.get_data(as_text=True)
    assert reason in html
    assert 'id="password-error"' in html and 'aria-describedby="password-hint password-error"' in html
    assert "Estimated strength" in html
    with app.app_context():
        assert db.session.scalar(db.select(db.func.count(User.id))) == 0
    assert smtp_server.messages == []


def test_register_bad_email_and_name_stores_nothing(app, client):
    response = register(client, email="not-an-email", name="")
    assert response.status_code == 400
    html = response.get_data(as_text=True)
    assert "Enter your name." in html and 'class="error-summary"' in html
    with app.app_context():
        assert db.session.scalar(db.select(db.func.count(User.id))) == 0


def _normalise(html: str, *values: str) -> str:
    html = blank_tokens(html)
    for value in values:
        html = html.replace(value, "EMAIL")
    return html


def test_login_unknown_and_wrong_password_look_identical(app, client):
    make_user(app)
    unknown = login(client, email="nobody@example.org", password="wrong password entirely")
    wrong = login(client, password="wrong password entirely")
    assert unknown.status_code == wrong.status_code == 401
    assert _normalise(unknown.get_data(as_text=True), "nobody@example.org") == \
        _normalise(wrong.get_data(as_text=True), "amara@example.org")
    assert "email address or password is not right" in wrong.get_data(as_text=True)
    with app.app_context():
        reasons = [e.detail["reason"] for e in db.session.scalars(
            db.select(AuditEvent).where(AuditEvent.event == "signin.failure").order_by(AuditEvent.id))]
    assert reasons == ["unknown_user", "bad_password"]


def test_deactivated_account_looks_like_wrong_password(app, client):
    make_user(app)
    with app.app_context():
        db.session.scalar(db.select(User)).status = "deactivated"
        db.session.commit()
    inactive = login(client)
    wrong = login(client, email="nobody@example.org")
    assert inactive.status_code == wrong.status_code
    assert _normalise(inactive.get_data(as_text=True), "amara@example.org") == \
        _normalise(wrong.get_data(as_text=True), "nobody@example.org")
    assert cookie(client) is None or client.get("/account/").status_code == 302


def test_throttling_engages_at_threshold_and_refuses_correct_password(app, client, monkeypatch):
    make_user(app)
    limit = app.config["IDP_SETTINGS"].login_max_failures
    for attempt in range(limit - 1):
        assert login(client, password=f"wrong password {attempt}").status_code == 401
    last = login(client, password="wrong password last")
    assert last.status_code == 429 and "Too many attempts" in last.get_data(as_text=True)

    hasher = app.extensions["idp.hasher"]
    calls = []
    original = hasher.verify
    monkeypatch.setattr(hasher, "verify", lambda *a: calls.append(1) or original(*a))
    refused = login(client)
    assert refused.status_code == 429
    assert calls == []  # the password was not even evaluated
    assert client.get("/account/").status_code == 302
    # Unknown addresses over the limit get the same answer (no enumeration).
    for attempt in range(limit):
        response = login(client, email="ghost@example.org", password=f"guess number {attempt}")
    assert response.status_code == 429
    assert _normalise(response.get_data(as_text=True), "ghost@example.org") == \
        _normalise(refused.get_data(as_text=True), "amara@example.org")


def test_successful_login_resets_the_counter(app, client):
    make_user(app)
    limit = app.config["IDP_SETTINGS"].login_max_failures
    for attempt in range(limit - 1):
        login(client, password=f"wrong password {attempt}")
    assert login(client).status_code == 303
    client.post("/logout", data={"csrf_token": csrf_token(client.get("/account/").get_data(as_text=True))})
    for attempt in range(limit - 1):
        assert login(client, password=f"wrong password {attempt}").status_code == 401
    assert login(client).status_code == 303


def test_session_rotates_at_login_and_old_cookie_is_anonymous_after_logout(app, client):
    make_user(app)
    client.get("/login")
    before = cookie(client)
    assert before
    assert login(client).status_code == 303
    after = cookie(client)
    assert after and after != before
    page = client.get("/account/")
    assert page.status_code == 200
    out = client.post("/logout", data={"csrf_token": csrf_token(page.get_data(as_text=True))})
    assert out.status_code == 303 and out.headers["Location"].endswith("/signed-out")
    with app.app_context():
        assert db.session.scalar(db.select(UserSession)).ended_at is not None
    client.set_cookie(COOKIE, after)  # replay the captured cookie
    replay = client.get("/account/")
    assert replay.status_code == 302 and "/login" in replay.headers["Location"]
    # The pre-login cookie never authenticates either (no fixation).
    client.set_cookie(COOKIE, before)
    assert client.get("/account/").status_code == 302


@pytest.mark.parametrize("target", ["//evil.example", "/\\evil.example", "https://evil.example/",
                                    "javascript:alert(1)", "https:evil.example", "evil.example",
                                    "/\t/evil.example", "/\r\nLocation: //evil"])
def test_open_redirect_next_values_are_refused(app, client, target):
    make_user(app)
    response = login(client, next_=target)
    assert response.status_code == 303
    assert response.headers["Location"] == "/account/"


def test_next_relative_path_is_followed_and_kept_in_form(app, client):
    make_user(app)
    target = "/authorize?client_id=abc&scope=openid+email&state=" + "x" * 1500
    page = client.get("/login", query_string={"next": target})
    html = page.get_data(as_text=True)
    assert 'name="next"' in html and "x" * 1500 in html
    assert "/register?next=" in html and "/forgot-password?next=" in html
    response = client.post("/login", data={"csrf_token": csrf_token(html), "email": "amara@example.org",
                                           "password": PASSWORD, "next": target})
    assert response.status_code == 303 and response.headers["Location"] == target


def test_next_is_escaped_in_the_page(client):
    page = client.get("/login", query_string={"next": '/"><svg onload=alert(1)>'})
    html = page.get_data(as_text=True)
    assert "<svg onload" not in html


def test_login_form_contract(client):
    html = client.get("/login").get_data(as_text=True)
    assert re.search(r'<input[^>]*autocomplete="username webauthn"[^>]*name="email"|<input[^>]*name="email"[^>]*autocomplete="username webauthn"', html)
    assert 'autocomplete="current-password"' in html
    assert '<label for="email"' in html and '<label for="password"' in html
    assert 'type="hidden"' in html and 'name="next"' in html


def test_csrf_missing_on_login_register_logout_changes_nothing(app, client, smtp_server):
    make_user(app)
    assert client.post("/login", data={"email": "amara@example.org", "password": PASSWORD}).status_code == 403
    assert client.get("/account/").status_code == 302
    response = client.post("/register", data={"name": "X Y", "email": "x@example.org", "password": PASSWORD})
    assert response.status_code == 403
    with app.app_context():
        assert db.session.scalar(db.select(db.func.count(User.id))) == 1
    assert login(client).status_code == 303
    assert client.post("/logout").status_code == 403
    assert client.get("/account/").status_code == 200


def test_rehash_on_login_when_parameters_change(app, client, monkeypatch):
    make_user(app)
    hasher = app.extensions["idp.hasher"]
    monkeypatch.setattr(hasher, "needs_rehash", lambda stored: True)
    with app.app_context():
        old = db.session.scalar(db.select(User)).password_hash
    assert login(client).status_code == 303
    with app.app_context():
        assert db.session.scalar(db.select(User)).password_hash != old


def test_unverified_resident_may_sign_in_and_resend(app, client, smtp_server):
    make_user(app, verified=False)
    assert login(client).status_code == 303
    page = client.get("/account/")
    html = page.get_data(as_text=True)
    assert "Please confirm your email address" in html
    resent = client.post("/account/verify-email/resend", data={"csrf_token": csrf_token(html)})
    assert resent.status_code == 303
    assert first_link(smtp_server.wait_for("amara@example.org")).startswith("http://localhost/verify-email/")


def test_public_resend_answers_alike(app, client, smtp_server):
    make_user(app, verified=False)
    token = _get_form(client, "/verify-email/resend")
    known = client.post("/verify-email/resend", data={"csrf_token": token, "email": "amara@example.org"})
    unknown = client.post("/verify-email/resend", data={"csrf_token": token, "email": "nobody@example.org"})
    assert known.status_code == unknown.status_code == 200
    assert page_without_tokens(known) == page_without_tokens(unknown)
    smtp_server.wait_for("amara@example.org")
    assert len(smtp_server.messages) == 1


def test_mail_links_use_the_issuer_not_the_host_header(app, client, smtp_server):
    # A foreign Host is refused outright (checklist 46); a known one still never shapes links.
    assert client.get("/register", headers={"Host": "evil.example"}).status_code == 400
    page = client.get("/register", headers={"Host": "LOCALHOST:80"})
    response = client.post("/register", data={"csrf_token": csrf_token(page.get_data(as_text=True)),
                                              "name": "Amara", "email": "amara@example.org",
                                              "password": PASSWORD}, headers={"Host": "LOCALHOST:80"})
    assert response.status_code == 200
    assert first_link(smtp_server.wait_for("amara@example.org")).startswith("http://localhost/")


def test_parallel_wrong_passwords_count_atomically_and_cap_evaluations(app, monkeypatch):
    import threading

    from idp.services import bot_challenge, signin, throttle

    make_user(app)
    limit = app.config["IDP_SETTINGS"].login_max_failures
    hasher = app.extensions["idp.hasher"]
    evaluated = []
    original = hasher.verify
    monkeypatch.setattr(hasher, "verify", lambda *a: evaluated.append(1) or original(*a))
    results = []
    barrier = threading.Barrier(30)

    def attempt(i):
        with app.test_request_context():
            puzzle = bot_challenge.issue()  # an attacker who solves the bot challenge: the counter is tested
            answer = bot_challenge.solve(puzzle.puzzle, puzzle.bits)
            barrier.wait()
            try:
                results.append(signin.authenticate("amara@example.org", f"wrong guess {i} here", f"10.0.0.{i}",
                                                   challenge=(puzzle.token, answer)))
            finally:
                db.session.remove()

    threads = [threading.Thread(target=attempt, args=(i,)) for i in range(30)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(results) == 30 and not any(r.ok for r in results)
    assert len(evaluated) == limit  # never more password checks than the limit, however they race
    with app.app_context():
        assert throttle.failures("login-account", "amara@example.org") == 30
        puzzle = bot_challenge.issue()
        assert signin.authenticate("amara@example.org", PASSWORD, "10.0.1.1",
                                   challenge=(puzzle.token, bot_challenge.solve(puzzle.puzzle, puzzle.bits))).throttled


def test_csrf_token_of_another_session_is_refused(app, client):
    make_user(app)
    attacker = app.test_client()
    foreign = csrf_token(attacker.get("/login").get_data(as_text=True))
    client.get("/login")
    response = client.post("/login", data={"csrf_token": foreign, "email": "amara@example.org", "password": PASSWORD})
    assert response.status_code == 403
    assert client.get("/account/").status_code == 302


def test_mail_server_down_gives_the_same_answer(app, client, monkeypatch):
    from idp.delivery.mail import MailError

    def refuse(*_a, **_k):
        raise MailError("down")

    monkeypatch.setattr(app.extensions["idp.mailer"], "send", refuse)
    make_user(app, email="taken@example.org")
    fresh = register(client, email="fresh@example.org")
    taken = register(client, email="taken@example.org")
    assert fresh.status_code == taken.status_code == 200
    assert page_without_tokens(fresh) == page_without_tokens(taken)
    with app.app_context():
        assert db.session.scalar(db.select(db.func.count(User.id))) == 2
