"""Checklist 63: sign counter and clone signal. With a stored count of 10, assertions counting 5
or 10 are refused (a cloned authenticator) and audited, 11 is accepted and stored; authenticators
without a counter (0 then 0, synced passkeys) keep working; the new count is stored atomically, so
a clone racing the original with the same count loses."""
from __future__ import annotations

import pytest
import webauthn
from sqlalchemy import update

from idp.extensions import db
from idp.models import AuditEvent, WebAuthnCredential
from idp.services import passkeys
from tests.support.passkeys_http import finish_sign_in, passwordless_options, signed_in_with_passkey


def _set_count(app, value: int) -> None:
    with app.app_context():
        db.session.execute(update(WebAuthnCredential).values(sign_count=value))
        db.session.commit()


def _stored(app) -> int:
    with app.app_context():
        return db.session.scalar(db.select(WebAuthnCredential.sign_count))


def _regressions(app) -> list[AuditEvent]:
    with app.app_context():
        return db.session.scalars(db.select(AuditEvent)
                                  .where(AuditEvent.event == "passkey.sign_count_regression")).all()


def _sign_in(app, key, count):
    browser = app.test_client()
    response = finish_sign_in(browser, key.get(passwordless_options(browser), sign_count=count))
    return response, browser


@pytest.mark.parametrize("presented", [5, 10])
def test_item_63_a_count_that_does_not_move_forward_is_refused_and_audited(app, presented):
    _, _, key = signed_in_with_passkey(app)
    _set_count(app, 10)
    response, browser = _sign_in(app, key, presented)
    assert response.status_code == 400 and browser.get("/account/").status_code == 302
    assert _stored(app) == 10
    [event] = _regressions(app)
    assert event.outcome == "failure" and event.detail["stored"] == 10 and event.detail["presented"] == presented


def test_item_63_a_higher_count_is_accepted_and_stored(app):
    _, _, key = signed_in_with_passkey(app)
    _set_count(app, 10)
    response, _ = _sign_in(app, key, 11)
    assert response.status_code == 200 and _stored(app) == 11 and not _regressions(app)


def test_item_63_authenticators_without_a_counter_keep_working(app):
    _, _, key = signed_in_with_passkey(app, backup_eligible=True)
    for _ in range(2):
        response, browser = _sign_in(app, key, 0)
        assert response.status_code == 200 and browser.get("/account/").status_code == 200
    assert _stored(app) == 0 and not _regressions(app)


def test_item_63_the_new_count_is_stored_atomically(app, monkeypatch):
    _, _, key = signed_in_with_passkey(app)
    _set_count(app, 10)
    real_verify = webauthn.verify_authentication_response

    def verify_while_a_clone_wins(**kwargs):
        verified = real_verify(**kwargs)
        _set_count(app, verified.new_sign_count)  # the clone's request stored the same count first
        return verified

    monkeypatch.setattr(passkeys.webauthn, "verify_authentication_response", verify_while_a_clone_wins)
    response, browser = _sign_in(app, key, 11)
    assert response.status_code == 400 and browser.get("/account/").status_code == 302
    assert len(_regressions(app)) == 1
