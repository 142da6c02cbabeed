"""Checklist 60: WebAuthn challenge and origin integrity. Through the HTTP endpoints: challenges are
at least 16 random bytes kept only server-side; a captured assertion is replayed; a challenge is
used in another browser session or for the other ceremony; the clientData `type` is swapped; the
origin is https://evil.tld, another scheme, a sibling subdomain; the rpIdHash names another RP ID.
Every one is refused with a 400, no one is signed in and no credential is stored."""
from __future__ import annotations

import base64
import json

import pytest
from sqlalchemy import func

from idp.extensions import db
from idp.models import UserSession, WebAuthnCredential
from tests.support.passkeys_http import (
    add_passkey,
    challenge_of,
    finish_sign_in,
    passwordless_options,
    registration_options,
    signed_in_with_passkey,
)
from tests.support.soft_authenticator import SoftAuthenticator


def _b64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _live_sessions(app) -> int:
    with app.app_context():
        return db.session.scalar(db.select(func.count()).select_from(UserSession).where(UserSession.ended_at.is_(None)))


def _credentials(app) -> int:
    with app.app_context():
        return db.session.scalar(db.select(func.count()).select_from(WebAuthnCredential))


def _refused_sign_in(app, response, sessions_before):
    assert response.status_code == 400, response.get_data(as_text=True)
    assert "redirect" not in response.get_json()
    assert _live_sessions(app) == sessions_before


def test_item_60_challenges_are_random_server_side_and_fresh(app):
    client, _, _ = signed_in_with_passkey(app)
    seen = set()
    for _ in range(3):
        for options in (passwordless_options(app.test_client()), registration_options(client)):
            raw = _b64(challenge_of(options))
            assert len(raw) >= 16
            seen.add(raw)
    assert len(seen) == 6
    browser = app.test_client()
    options = passwordless_options(browser)
    cookie = browser.get_cookie("idp_session") or next(iter(browser._cookies.values()))
    assert challenge_of(options) not in cookie.value and len(cookie.value) < 200  # an opaque id only


def test_item_60_a_captured_assertion_cannot_be_replayed(app):
    _, _, key = signed_in_with_passkey(app)
    victim = app.test_client()
    captured = key.get(passwordless_options(victim))
    assert finish_sign_in(victim, captured).status_code == 200
    sessions = _live_sessions(app)
    attacker = app.test_client()
    _refused_sign_in(app, finish_sign_in(attacker, captured), sessions)  # no flow in this session
    passwordless_options(attacker)  # a fresh flow of its own does not make the old challenge good
    _refused_sign_in(app, finish_sign_in(attacker, captured), sessions)
    _refused_sign_in(app, finish_sign_in(victim, captured), sessions)  # nor in the victim's browser


def test_item_60_a_challenge_works_only_in_the_session_that_asked_for_it(app):
    owner, _, key = signed_in_with_passkey(app)
    victim, attacker = app.test_client(), app.test_client()
    victim_options = passwordless_options(victim)
    passwordless_options(attacker)
    sessions = _live_sessions(app)
    _refused_sign_in(app, finish_sign_in(attacker, key.get(victim_options)), sessions)
    # Registration too: options fetched in one browser of the resident, answered from another.
    other_browser = app.test_client()
    assert finish_sign_in(other_browser, key.get(passwordless_options(other_browser))).status_code == 200
    assert other_browser.get("/account/security").status_code == 200
    options = registration_options(owner)
    before = _credentials(app)
    stolen = SoftAuthenticator("localhost", "http://localhost").create(options)
    assert add_passkey(other_browser, stolen).status_code == 400
    assert _credentials(app) == before


def test_item_60_a_registration_challenge_does_not_sign_in_and_vice_versa(app):
    owner, _, key = signed_in_with_passkey(app)
    browser = app.test_client()
    passwordless_options(browser)
    sessions = _live_sessions(app)
    _refused_sign_in(app, finish_sign_in(browser, key.get(registration_options(owner))), sessions)
    # An assertion challenge offered to the registration endpoint.
    before = _credentials(app)
    options = json.loads(registration_options(owner))
    options["challenge"] = challenge_of(passwordless_options(owner))
    fresh = SoftAuthenticator("localhost", "http://localhost")
    assert add_passkey(owner, fresh.create(json.dumps(options))).status_code == 400
    assert _credentials(app) == before


@pytest.mark.parametrize("ceremony", ["get", "create"])
def test_item_60_a_swapped_client_data_type_is_refused(app, monkeypatch, ceremony):
    owner, _, key = signed_in_with_passkey(app)
    original = SoftAuthenticator._client_data
    swapped = {"webauthn.get": "webauthn.create", "webauthn.create": "webauthn.get"}
    monkeypatch.setattr(SoftAuthenticator, "_client_data",
                        staticmethod(lambda kind, challenge, origin: original(swapped[kind], challenge, origin)))
    if ceremony == "get":
        browser = app.test_client()
        options = passwordless_options(browser)
        _refused_sign_in(app, finish_sign_in(browser, key.get(options)), _live_sessions(app))
    else:
        before = _credentials(app)
        other = SoftAuthenticator("localhost", "http://localhost")
        assert add_passkey(owner, other.create(registration_options(owner))).status_code == 400
        assert _credentials(app) == before


ORIGINS = ["https://evil.tld", "https://localhost", "http://localhost:5000", "http://accounts.localhost",
           "http://localhost.evil.tld", "null", "localhost"]


def test_item_60_a_foreign_origin_is_refused_at_sign_in_and_registration(app):
    owner, _, key = signed_in_with_passkey(app)
    for origin in ORIGINS:
        browser = app.test_client()
        options = passwordless_options(browser)
        _refused_sign_in(app, finish_sign_in(browser, key.get(options, origin=origin)), _live_sessions(app))
        other = SoftAuthenticator("localhost", "http://localhost")
        assert add_passkey(owner, other.create(registration_options(owner), origin=origin)).status_code == 400, origin
    assert _credentials(app) == 1


def test_item_60_an_rp_id_hash_for_another_rp_is_refused(app):
    owner, _, key = signed_in_with_passkey(app)
    for rp_id in ("evil.tld", "sub.localhost", "LOCALHOST", "localhost."):
        browser = app.test_client()
        options = passwordless_options(browser)
        _refused_sign_in(app, finish_sign_in(browser, key.get(options, rp_id=rp_id)), _live_sessions(app))
        other = SoftAuthenticator("localhost", "http://localhost")
        assert add_passkey(owner, other.create(registration_options(owner), rp_id=rp_id)).status_code == 400, rp_id
    assert _credentials(app) == 1


def test_item_60_cross_origin_client_data_is_refused(app, monkeypatch):
    _, _, key = signed_in_with_passkey(app)
    original = SoftAuthenticator._client_data

    def cross_origin(kind, challenge, origin):
        data = json.loads(original(kind, challenge, origin))
        data.update(crossOrigin=True, topOrigin="https://evil.tld")
        return json.dumps(data).encode()

    monkeypatch.setattr(SoftAuthenticator, "_client_data", staticmethod(cross_origin))
    browser = app.test_client()
    options = passwordless_options(browser)
    _refused_sign_in(app, finish_sign_in(browser, key.get(options)), _live_sessions(app))
