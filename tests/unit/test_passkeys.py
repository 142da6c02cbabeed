"""WebAuthn verification at the service level, with a software authenticator: what py_webauthn
checks (origin, RP ID, signature) and what it leaves to us (single-use expiring challenges, the
credential bound to the account, user verification for passwordless, counter regressions)."""
from __future__ import annotations

import json

import pytest

from idp.extensions import db
from idp.models import AuditEvent, User, WebAuthnCredential
from idp.services import DomainError, accounts, passkeys
from tests.support.soft_authenticator import SoftAuthenticator

PASSWORD = "a long enough resident passphrase"


@pytest.fixture
def rc(app):
    """A request context (the service reads settings and the store from the app)."""
    with app.test_request_context():
        yield app


def resident(email="amara@example.org") -> User:
    return accounts.create_user(email, PASSWORD, name="Amara Dlamini", email_verified=True)


def registered(user, **kwargs) -> tuple[SoftAuthenticator, WebAuthnCredential]:
    key = SoftAuthenticator("localhost", "http://localhost", **kwargs)
    row = passkeys.register(user, key.create(passkeys.registration_options(user)), "My phone")
    return key, row


def refused(code, call, *args, **kwargs):
    with pytest.raises(DomainError) as info:
        call(*args, **kwargs)
    assert info.value.code == code, info.value.code


def test_register_then_use_as_second_factor_and_alone(rc):
    user = resident()
    key, row = registered(user)
    assert row.name == "My phone" and row.discoverable and not row.backup_eligible and row.sign_count == 0
    result = passkeys.authenticate("f1", key.get(passkeys.authentication_options("f1", user)), user)
    assert result.user.id == user.id and result.amr == ["hwk", "user"] and result.user_verified
    alone = passkeys.authenticate("f2", key.get(passkeys.authentication_options("f2")))
    assert alone.user.id == user.id
    assert db.session.get(WebAuthnCredential, row.id).sign_count == 2


def test_a_synced_passkey_is_a_software_key(rc):
    user = resident()
    key, row = registered(user, backup_eligible=True)
    assert row.backup_eligible
    assert passkeys.authenticate("f", key.get(passkeys.authentication_options("f", user)), user).amr == ["swk", "user"]


def test_wrong_origin_or_rp_id_is_refused_at_registration_and_sign_in(rc):
    user = resident()
    phishing = SoftAuthenticator("localhost", "http://localhost")
    refused("webauthn_failed", passkeys.register, user,
            phishing.create(passkeys.registration_options(user), origin="https://id.capetown.gov.za.evil.example"),
            "Phish")
    refused("webauthn_failed", passkeys.register, user,
            phishing.create(passkeys.registration_options(user), rp_id="evil.example"), "Phish")
    assert passkeys.list_for(user) == []
    key, _ = registered(user)
    refused("webauthn_failed", passkeys.authenticate, "a",
            key.get(passkeys.authentication_options("a", user), origin="http://evil.example"), user)
    refused("webauthn_failed", passkeys.authenticate, "b",
            key.get(passkeys.authentication_options("b", user), rp_id="evil.example"), user)


def test_a_challenge_works_once(rc):
    user = resident()
    key, _ = registered(user)
    options = passkeys.authentication_options("flow", user)
    passkeys.authenticate("flow", key.get(options), user)
    refused("challenge_expired", passkeys.authenticate, "flow", key.get(options), user)
    options = passkeys.registration_options(user)
    second = SoftAuthenticator("localhost", "http://localhost")
    passkeys.register(user, second.create(options), "Key two")
    refused("challenge_expired", passkeys.register, user, SoftAuthenticator("localhost", "http://localhost").create(options), "Three")


def test_an_expired_challenge_is_refused(rc):
    user = resident()
    key, _ = registered(user)
    options = passkeys.authentication_options("late", user)
    rc.extensions["idp.store"].delete("webauthn:auth:late")  # what the store's 5-minute expiry does
    refused("challenge_expired", passkeys.authenticate, "late", key.get(options), user)


def test_the_credential_must_belong_to_the_account_signing_in(rc):
    owner, other = resident(), resident("other@example.org")
    key, _ = registered(owner)
    registered(other)
    refused("wrong_account", passkeys.authenticate, "x", key.get(passkeys.authentication_options("x", other)), other)
    refused("unknown_credential", passkeys.authenticate, "y",
            SoftAuthenticator("localhost", "http://localhost").get(passkeys.authentication_options("y")))


def test_passwordless_needs_user_verification_but_a_second_factor_does_not(rc):
    user = resident()
    key, _ = registered(user)
    refused("webauthn_failed", passkeys.authenticate, "p", key.get(passkeys.authentication_options("p"),
                                                                     user_verified=False))
    # Options made for passwordless asked for verification: naming the resident afterwards does not waive it.
    refused("webauthn_failed", passkeys.authenticate, "q", key.get(passkeys.authentication_options("q"),
                                                                     user_verified=False), user)
    second = passkeys.authenticate("s", key.get(passkeys.authentication_options("s", user), user_verified=False), user)
    assert not second.user_verified


def test_a_counter_regression_is_refused_and_audited(rc):
    user = resident()
    key, row = registered(user)
    passkeys.authenticate("1", key.get(passkeys.authentication_options("1", user), sign_count=7), user)
    refused("webauthn_failed", passkeys.authenticate, "2",
            key.get(passkeys.authentication_options("2", user), sign_count=3), user)
    event = db.session.scalar(db.select(AuditEvent).where(AuditEvent.event == "passkey.sign_count_regression"))
    assert event is not None and event.user_id == user.id and event.detail["presented"] == 3
    assert db.session.get(WebAuthnCredential, row.id).sign_count == 7


def test_the_same_authenticator_cannot_register_twice_and_is_excluded(rc):
    user = resident()
    key, row = registered(user)
    second, _ = registered(user)
    options = passkeys.registration_options(user)
    excluded = {c["id"] for c in json.loads(options)["excludeCredentials"]}
    assert excluded == {key.create(options)["id"], second.create(options)["id"]}
    refused("already_registered", passkeys.register, user, key.create(options), "Again")
    assert [r.id for r in passkeys.list_for(user)] == [_.id, row.id]  # newest first, nothing added
    other = resident("other@example.org")
    assert json.loads(passkeys.registration_options(other))["excludeCredentials"] == []
    refused("already_registered", passkeys.register, other, key.create(passkeys.registration_options(other)), "Mine")


def test_options_ask_for_what_each_use_needs(rc):
    user = resident()
    key, row = registered(user)
    created = json.loads(passkeys.registration_options(user))
    assert created["rp"] == {"id": "localhost", "name": "eCitizen Passport"}
    assert created["user"]["name"] == user.email and created["user"]["displayName"] == "Amara Dlamini"
    assert created["authenticatorSelection"]["residentKey"] == "preferred"
    assert [p["alg"] for p in created["pubKeyCredParams"]] == [-7, -257]
    second = json.loads(passkeys.authentication_options("2fa", user))
    assert second["userVerification"] == "preferred"
    assert [c["id"] for c in second["allowCredentials"]] == [key.create(json.dumps(created))["id"]]
    alone = json.loads(passkeys.authentication_options("alone"))
    assert alone["userVerification"] == "required" and alone["allowCredentials"] == []
    stored = json.loads(rc.extensions["idp.store"].get("webauthn:auth:alone"))
    assert stored == {"challenge": alone["challenge"], "user_id": None}


def test_a_credential_may_arrive_as_json_text(rc):
    user = resident()
    key = SoftAuthenticator("localhost", "http://localhost")
    row = passkeys.register(user, json.dumps(key.create(passkeys.registration_options(user))), "  Work   laptop ")
    assert row.name == "Work laptop" and row.transports == ["internal"]
    result = passkeys.authenticate("t", json.dumps(key.get(passkeys.authentication_options("t", user))), user)
    assert result.credential.id == row.id and result.credential.last_used_at is not None


def test_challenges_are_kept_for_the_ttl(rc, monkeypatch):
    user = resident()
    key, _ = registered(user)
    seen = []
    store = rc.extensions["idp.store"]
    real_set = store.set
    monkeypatch.setattr(store, "set", lambda k, v, ttl: (seen.append((k, ttl)), real_set(k, v, ttl)))
    passkeys.registration_options(user)
    options = passkeys.authentication_options("ttl", user)
    assert seen == [(f"webauthn:reg:{user.id}:", passkeys.CHALLENGE_TTL), ("webauthn:auth:ttl", passkeys.CHALLENGE_TTL)]
    store.delete("webauthn:auth:ttl")  # what the expiry does when CHALLENGE_TTL has passed
    refused("challenge_expired", passkeys.authenticate, "ttl", key.get(options), user)


def test_names_are_required_and_bounded(rc):
    user = resident()
    key = SoftAuthenticator("localhost", "http://localhost")
    refused("invalid_name", passkeys.register, user, key.create(passkeys.registration_options(user)), "   ")
    refused("invalid_name", passkeys.register, user, key.create(passkeys.registration_options(user)), "x" * 65)


def test_a_resident_removes_only_their_own(rc):
    owner, other = resident(), resident("other@example.org")
    _, row = registered(owner)
    assert not passkeys.remove(other, row.id)
    assert passkeys.remove(owner, row.id)
    assert passkeys.list_for(owner) == []


def test_a_locked_account_cannot_use_its_passkey(rc):
    user = resident()
    key, _ = registered(user)
    user.status = "locked"
    db.session.commit()
    refused("webauthn_failed", passkeys.authenticate, "l", key.get(passkeys.authentication_options("l")))
