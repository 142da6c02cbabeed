"""Checklist 62: the credential belongs to the user. Through the HTTP endpoints: resident B's
passkey is offered as the second factor of resident A's sign-in; A's discoverable credential comes
with B's user handle; an unregistered credential is offered. All are refused with one and the
same generic answer (no enumeration of registered credentials), nobody is signed in, and the
cross-account attempt is audited."""
from __future__ import annotations

from sqlalchemy import func

from idp.extensions import db
from idp.models import AuditEvent, User, UserSession
from tests.integration.test_signin_flows import login
from tests.support.passkeys_http import finish_sign_in, passwordless_options, post_json, signed_in_with_passkey
from tests.support.soft_authenticator import SoftAuthenticator


def _live(app) -> int:
    with app.app_context():
        return db.session.scalar(db.select(func.count()).select_from(UserSession).where(UserSession.ended_at.is_(None)))


def _second_factor_options(browser) -> str:
    assert login(browser, email="amara@example.org").headers["Location"] == "/login/second-factor"
    return post_json(browser, "/login/passkey/options").get_data(as_text=True)


def test_item_62_another_residents_passkey_is_no_second_factor(app):
    signed_in_with_passkey(app, email="amara@example.org")
    _, mallory_id, mallory_key = signed_in_with_passkey(app, email="mallory@example.org")
    browser = app.test_client()
    options = _second_factor_options(browser)
    sessions = _live(app)
    response = post_json(browser, "/login/passkey", {"credential": mallory_key.get(options)})
    assert response.status_code == 400 and _live(app) == sessions
    assert browser.get("/account/").status_code == 302
    with app.app_context():
        assert db.session.scalars(db.select(AuditEvent).where(AuditEvent.event == "passkey.used",
                                                              AuditEvent.outcome == "failure")).all()


def test_item_62_user_handle_must_be_the_credential_owners(app):
    _, _, amara_key = signed_in_with_passkey(app, email="amara@example.org")
    _, mallory_id, _ = signed_in_with_passkey(app, email="mallory@example.org")
    with app.app_context():
        amara_key.user_handle = db.session.get(User, mallory_id).sub.encode()  # claims to be Mallory's
    browser = app.test_client()
    sessions = _live(app)
    response = finish_sign_in(browser, amara_key.get(passwordless_options(browser)))
    assert response.status_code == 400 and _live(app) == sessions
    with app.app_context():
        assert db.session.scalars(db.select(AuditEvent).where(AuditEvent.event == "passkey.used",
                                                              AuditEvent.outcome == "failure")).all()


def test_item_62_unknown_wrong_owner_and_bad_signature_answer_alike(app):
    signed_in_with_passkey(app, email="amara@example.org")
    _, _, mallory_key = signed_in_with_passkey(app, email="mallory@example.org")
    unknown = SoftAuthenticator("localhost", "http://localhost")
    answers = []
    browser = app.test_client()
    answers.append(finish_sign_in(browser, unknown.get(passwordless_options(browser))))
    other = app.test_client()
    answers.append(post_json(other, "/login/passkey", {"credential": mallory_key.get(_second_factor_options(other))}))
    forged = app.test_client()
    credential = mallory_key.get(passwordless_options(forged))
    credential["response"]["signature"] = credential["response"]["signature"][::-1]
    answers.append(finish_sign_in(forged, credential))
    assert {a.status_code for a in answers} == {400}
    assert len({a.get_data() for a in answers}) == 1, [a.get_data() for a in answers]
    assert b"registered" not in answers[0].get_data() and b"another account" not in answers[1].get_data()
