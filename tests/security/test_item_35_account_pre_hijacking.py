"""Checklist 35: Account pre-hijacking and unverified data. An attacker registers the victim's
address with a password of their own, never verifies it, signs in and adds data; the victim then
takes the account over through the mailbox (password reset): the attacker's password and sessions
must be gone and the attacker's additions discarded. Unverified accounts must not reach departments
or recovery, must expire after 7 days, and a change of address takes effect only once the new
address is confirmed, the old address being told with a link that cancels or undoes it."""
from __future__ import annotations

from datetime import timedelta
from urllib.parse import urlencode

from idp.extensions import db
from idp.models import User
from idp.models.types import utcnow
from tests.conftest import csrf_token
from tests.integration.test_signin_flows import PASSWORD, login, register
from tests.integration.test_signin_reset import ask_reset, submit_reset
from tests.support.links import open_link
from tests.support.oidc import authorize_params, make_client, pkce_pair, query_of
from tests.support.smtp import first_link

VICTIM = "thandi@example.org"
VICTIM_PASSWORD = "the victims own passphrase 2026"


def _attacker_pre_registers(app) -> object:
    """The attacker registers the victim's address (never verified) and stays signed in."""
    attacker = app.test_client()
    assert register(attacker, email=VICTIM, name="Mallory Attacker").status_code == 200
    assert login(attacker, email=VICTIM).status_code == 303
    with app.app_context():
        assert db.session.scalar(db.select(User.email_verified).where(User.email == VICTIM)) is False
    return attacker


def test_item_35_the_victims_reset_evicts_the_attacker(app, smtp_server):
    attacker = _attacker_pre_registers(app)
    victim = app.test_client()
    ask_reset(victim, email=VICTIM)
    link = first_link(smtp_server.wait_for(VICTIM, subject_contains="eset"))
    assert submit_reset(victim, link, password=VICTIM_PASSWORD).status_code == 303
    assert attacker.get("/account/").status_code == 302  # the attacker's session ended
    assert login(app.test_client(), email=VICTIM, password=PASSWORD).status_code == 401
    assert login(app.test_client(), email=VICTIM, password=VICTIM_PASSWORD).status_code == 303
    with app.app_context():
        assert db.session.scalar(db.select(db.func.count(User.id))) == 1
        assert db.session.scalar(db.select(User.email_verified).where(User.email == VICTIM)) is True


def test_item_35_registering_again_does_not_hand_the_victim_the_attackers_account(app, smtp_server):
    _attacker_pre_registers(app)
    victim = app.test_client()
    register(victim, email=VICTIM, name="Thandi Mokoena", password=VICTIM_PASSWORD)
    warning = smtp_server.wait_for(VICTIM, subject_contains="tried to register")
    assert "/forgot-password" in warning.as_string()  # the way in is the mailbox, not the attacker's password
    assert login(app.test_client(), email=VICTIM, password=VICTIM_PASSWORD).status_code == 401
    with app.app_context():
        assert db.session.scalar(db.select(User.name)) == "Mallory Attacker"  # nothing merged into it


def test_item_35_the_attackers_additions_are_discarded_on_takeover(app, smtp_server):
    attacker = _attacker_pre_registers(app)
    assert attacker.get("/account/").status_code == 200  # signed in to the unconfirmed account
    with app.app_context():
        user = db.session.scalar(db.select(User))
        user.phone_number, user.phone_verified_at = "+27821234567", utcnow()
        db.session.commit()
    victim = app.test_client()
    ask_reset(victim, email=VICTIM)
    submit_reset(victim, first_link(smtp_server.wait_for(VICTIM, subject_contains="eset")), password=VICTIM_PASSWORD)
    with app.app_context():
        user = db.session.scalar(db.select(User))
        assert user.phone_number is None and user.name != "Mallory Attacker" and user.email_verified
    assert attacker.get("/account/").status_code in (302, 303)  # the attacker's session ended
    assert login(app.test_client(), email=VICTIM, password=VICTIM_PASSWORD).status_code in (302, 303)


def test_item_35_an_unverified_account_cannot_reach_a_department(app):
    client_id, _ = make_client(app, first_party=True)
    attacker = _attacker_pre_registers(app)
    _, challenge = pkce_pair()
    answer = attacker.get("/authorize?" + urlencode(authorize_params(client_id, challenge)))
    assert answer.status_code == 403 and "Location" not in answer.headers  # no code, no redirect
    assert "Confirm your email address" in answer.get_data(as_text=True)
    silent = attacker.get("/authorize?" + urlencode(authorize_params(client_id, challenge, prompt="none")))
    assert silent.status_code == 302
    assert query_of(silent.headers["Location"])["error"] == "interaction_required"
    with app.app_context():
        user = db.session.scalar(db.select(User))
        user.email_verified = True  # the address's owner confirmed it
        db.session.commit()
    granted = attacker.get("/authorize?" + urlencode(authorize_params(client_id, challenge)))
    assert granted.status_code == 302 and "code" in query_of(granted.headers["Location"])


def test_item_35_an_unverified_registration_expires_after_7_days(app):
    _attacker_pre_registers(app)
    with app.app_context():
        db.session.scalar(db.select(User)).created_at = utcnow() - timedelta(days=7, minutes=1)
        db.session.commit()
    assert login(app.test_client(), email=VICTIM).status_code == 401
    victim = app.test_client()
    register(victim, email=VICTIM, name="Thandi Mokoena", password=VICTIM_PASSWORD)
    with app.app_context():
        assert db.session.scalar(db.select(User.name).where(User.email == VICTIM)) == "Thandi Mokoena"


def _change_email(app, http) -> None:
    page = http.get("/account/email")
    http.post("/account/email", data={"csrf_token": csrf_token(page.get_data(as_text=True)),
                                      "new_email": "amara.new@example.org", "current_password": PASSWORD})


def _report(http, link: str):
    page = open_link(http, link)
    assert page.status_code == 200
    return http.post(page.request.path, data={"csrf_token": csrf_token(page.get_data(as_text=True))})


def test_item_35_the_old_address_gets_a_revert_link(app, smtp_server):
    from tests.integration.test_signin_flows import make_user

    make_user(app)
    http = app.test_client()
    login(http)
    _change_email(app, http)
    notice = smtp_server.wait_for("amara@example.org", subject_contains="change")
    revert = first_link(notice)
    assert "/not-me/" in revert and "/forgot-password" not in revert
    confirm = first_link(smtp_server.wait_for("amara.new@example.org", subject_contains="Confirm"))
    with app.app_context():
        assert db.session.scalar(db.select(User.email)) == "amara@example.org"  # not changed yet
    assert _report(app.test_client(), revert).status_code == 200  # before the change: it is cancelled
    assert open_link(app.test_client(), confirm).status_code == 400
    with app.app_context():
        user = db.session.scalar(db.select(User))
        assert user.email == "amara@example.org" and user.status == "locked"
    assert smtp_server.wait_for("amara@example.org", subject_contains="eset")  # the way back in


def test_item_35_the_revert_link_undoes_a_change_already_made(app, smtp_server):
    from tests.integration.test_signin_flows import make_user

    make_user(app)
    http = app.test_client()
    login(http)
    _change_email(app, http)
    revert = first_link(smtp_server.wait_for("amara@example.org", subject_contains="change"))
    confirm = first_link(smtp_server.wait_for("amara.new@example.org", subject_contains="Confirm"))
    page = open_link(http, confirm)
    http.post(page.request.path, data={"csrf_token": csrf_token(page.get_data(as_text=True))})
    with app.app_context():
        assert db.session.scalar(db.select(User.email)) == "amara.new@example.org"  # the change happened
    assert _report(app.test_client(), revert).status_code == 200
    with app.app_context():
        user = db.session.scalar(db.select(User))
        assert user.email == "amara@example.org" and user.email_verified and user.status == "locked"
    assert http.get("/account/").status_code in (302, 303)  # the session that made the change ended


def _verification_page(app, smtp_server, browser):
    link = first_link(smtp_server.wait_for(VICTIM, subject_contains="Confirm"))
    page = open_link(browser, link)
    assert page.status_code == 200
    return page


def test_item_35_the_mailbox_owner_cannot_confirm_an_address_someone_else_registered_without_its_password(
        app, smtp_server):
    attacker = _attacker_pre_registers(app)
    victim = app.test_client()  # the victim's own phone, opening the mail
    page = _verification_page(app, smtp_server, victim)
    html = page.get_data(as_text=True)
    assert 'name="password"' in html and "/forgot-password" in html
    refused = victim.post(page.request.path, data={"csrf_token": csrf_token(html)})  # just pressing Confirm
    assert refused.status_code == 400 and "Enter your password" in refused.get_data(as_text=True)
    guessed = victim.post(page.request.path, data={"csrf_token": csrf_token(html), "password": "a guess at it 2026"})
    assert guessed.status_code == 400
    assert "not the password this account was registered with" in guessed.get_data(as_text=True)
    with app.app_context():
        assert db.session.scalar(db.select(User.email_verified).where(User.email == VICTIM)) is False
    # The way in is the page's "choose a new password": the reset discards the attacker's account.
    ask_reset(victim, email=VICTIM)
    submit_reset(victim, first_link(smtp_server.wait_for(VICTIM, subject_contains="eset")), password=VICTIM_PASSWORD)
    assert attacker.get("/account/").status_code in (302, 303)
    assert login(app.test_client(), email=VICTIM, password=PASSWORD).status_code == 401
    with app.app_context():
        user = db.session.scalar(db.select(User))
        assert user.email_verified and user.name != "Mallory Attacker"


def test_item_35_the_registrant_confirms_in_the_same_browser_with_a_button_and_elsewhere_with_the_password(
        app, smtp_server):
    same = app.test_client()
    assert register(same, email=VICTIM, name="Thandi Mokoena", password=VICTIM_PASSWORD).status_code == 200
    link = first_link(smtp_server.wait_for(VICTIM, subject_contains="Confirm"))
    other = app.test_client()  # the laptop registered, the phone opens the mail
    page = open_link(other, link)
    html = page.get_data(as_text=True)
    assert 'name="password"' in html
    done = other.post(page.request.path, data={"csrf_token": csrf_token(html), "password": VICTIM_PASSWORD})
    assert done.status_code == 303
    with app.app_context():
        assert db.session.scalar(db.select(User.email_verified).where(User.email == VICTIM)) is True


def test_item_35_a_verification_link_in_the_registering_browser_needs_only_the_button(app, smtp_server):
    same = app.test_client()
    register(same, email=VICTIM, name="Thandi Mokoena", password=VICTIM_PASSWORD)
    page = open_link(same, first_link(smtp_server.wait_for(VICTIM, subject_contains="Confirm")))
    html = page.get_data(as_text=True)
    assert 'name="password"' not in html
    assert same.post(page.request.path, data={"csrf_token": csrf_token(html)}).status_code == 303
    with app.app_context():
        assert db.session.scalar(db.select(User.email_verified).where(User.email == VICTIM)) is True
