"""Checklist 82: lockout abuse resistance. An attacker fails sign-ins for a victim's account to lock
the victim out. The victim's own browser (one that has signed in to the account before) keeps its
own count and still signs in with the right password; a reset through the emailed link (a
verified channel) unlocks the account at once for any browser; the throttled answer says nothing
about whether the account exists. From half the failure limit, a browser new to the account must
solve the bot challenge first (the sign-in page's script does it unseen): a script that does not
is refused without a password check, and cannot push the account to its hard limit; the owner's
own browser is never challenged; the refusal reads the same for an account that does not exist."""
from __future__ import annotations

import re

from idp.extensions import db
from idp.models import AuditEvent
from tests.conftest import csrf_token, page_without_tokens
from tests.integration.test_signin_flows import login, make_user
from tests.support.links import open_link
from tests.support.smtp import body_of

WRONG = "not the password at all, sorry"
NEW_PASSWORD = "a brand new resident passphrase"


def _limit(app) -> int:
    return app.config["IDP_SETTINGS"].login_max_failures


def _attack(app, email="amara@example.org") -> None:
    """Strangers' browsers (no history with the account) use up its count."""
    for _ in range(_limit(app)):
        assert login(app.test_client(), email=email, password=WRONG).status_code in (401, 429)


def _own_browser(app):
    """The resident's browser: it signed in before (and signed out since)."""
    http = app.test_client()
    assert login(http).status_code == 303
    token = csrf_token(http.get("/account/").get_data(as_text=True))
    assert http.post("/logout", data={"csrf_token": token}).status_code == 303
    assert http.get("/account/").status_code != 200
    return http


def test_item_82_strangers_cannot_lock_the_owner_out_of_their_own_browser(app):
    make_user(app)
    own = _own_browser(app)
    _attack(app)
    assert login(app.test_client()).status_code == 429  # a stranger's browser, even with the password
    assert login(own).status_code == 303  # the owner's browser is not locked
    assert own.get("/account/").status_code == 200


def test_item_82_the_owners_browser_is_still_limited_on_its_own(app):
    make_user(app)
    own = _own_browser(app)
    for _ in range(_limit(app) - 1):
        assert login(own, password=WRONG).status_code == 401
    assert login(own, password=WRONG).status_code == 429
    assert login(own).status_code == 429  # its own count is spent now: the password is not checked
    with app.app_context():
        checked = db.session.scalar(db.select(db.func.count()).select_from(AuditEvent)
                                    .where(AuditEvent.event == "signin.failure",
                                           AuditEvent.detail["reason"].as_string() == "bad_password"))
        assert checked == _limit(app)


def test_item_82_a_reset_through_the_mailed_link_unlocks_the_account(app, client, smtp_server):
    make_user(app)
    _attack(app)
    assert login(app.test_client()).status_code == 429
    page = client.get("/forgot-password")
    client.post("/forgot-password", data={"csrf_token": csrf_token(page.get_data(as_text=True)),
                                          "email": "amara@example.org"})
    link = re.search(r"https?://\S+/reset-password/\S+", body_of(smtp_server.wait_for("amara@example.org"))).group(0)
    form = open_link(client, link)
    assert form.status_code == 200
    done = client.post(form.request.path, data={"csrf_token": csrf_token(form.get_data(as_text=True)),
                                                "password": NEW_PASSWORD, "confirm": NEW_PASSWORD})
    assert done.status_code == 303
    assert login(app.test_client(), password=NEW_PASSWORD).status_code == 303


def test_item_82_the_lockout_answer_does_not_reveal_the_account(app):
    make_user(app)
    _attack(app)
    _attack(app, email="nobody-here@example.org")
    known = login(app.test_client(), password=WRONG)
    unknown = login(app.test_client(), email="nobody-here@example.org", password=WRONG)
    assert known.status_code == unknown.status_code == 429
    assert page_without_tokens(known).replace("amara@example.org", "X") == \
        page_without_tokens(unknown).replace("nobody-here@example.org", "X")


def _bad_password_checks(app) -> int:
    with app.app_context():
        return db.session.scalar(db.select(db.func.count()).select_from(AuditEvent).where(
            AuditEvent.event == "signin.failure", AuditEvent.detail["reason"].as_string() == "bad_password"))


def test_item_82_a_bot_challenge_comes_before_the_hard_limit(app):
    make_user(app)
    own = _own_browser(app)
    assert login(app.test_client(), password=WRONG, solve_challenge=False).status_code == 401  # none asked yet
    for _ in range(_limit(app) // 2 - 1):
        login(app.test_client(), password=WRONG, solve_challenge=False)
    for _ in range(_limit(app)):  # a script that does not solve the challenge gets no further
        refused = login(app.test_client(), password=WRONG, solve_challenge=False)
        assert refused.status_code == 429 and "automatic check" in refused.get_data(as_text=True)
    assert _bad_password_checks(app) == _limit(app) // 2
    assert login(app.test_client(), solve_challenge=False).status_code == 429  # the right password, unchecked
    assert login(own, solve_challenge=False).status_code == 303  # the owner's browser is not challenged
    assert login(app.test_client()).status_code == 303  # a browser that solves it signs in
    with app.app_context():
        assert db.session.scalar(db.select(db.func.count()).select_from(AuditEvent).where(
            AuditEvent.detail["reason"].as_string() == "bot_challenge")) == _limit(app) + 1


def test_item_82_the_challenge_answer_does_not_reveal_the_account(app):
    make_user(app)
    for email in ("amara@example.org", "nobody-here@example.org"):
        for _ in range(_limit(app) // 2):
            login(app.test_client(), email=email, password=WRONG)
    known = login(app.test_client(), password=WRONG, solve_challenge=False)
    unknown = login(app.test_client(), email="nobody-here@example.org", password=WRONG, solve_challenge=False)
    assert known.status_code == unknown.status_code == 429
    assert page_without_tokens(known).replace("amara@example.org", "X") == \
        page_without_tokens(unknown).replace("nobody-here@example.org", "X")
