"""Checklist 66: malformed ceremony input. The passkey sign-in and registration endpoints receive
bodies that are not JSON or not objects, credentials with wrong JSON types, invalid base64url,
clientDataJSON that is not JSON, truncated and deeply nested CBOR, a 10 MB attestationObject and
oversized side fields: every one gets a clear 400 with a generic JSON error (never a 500 or a
traceback), nothing is stored and no one is signed in, and the endpoints keep working."""
from __future__ import annotations

import base64
import copy

import pytest
from sqlalchemy import func

from idp.extensions import db
from idp.models import UserSession, WebAuthnCredential
from tests.support.passkeys_http import (
    finish_sign_in,
    passwordless_options,
    post_json,
    registration_options,
    signed_in_with_passkey,
)
from tests.support.soft_authenticator import SoftAuthenticator


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _set(path: tuple, value):
    def change(credential: dict) -> dict:
        changed = copy.deepcopy(credential)
        target = changed
        for key in path[:-1]:
            target = target[key]
        target[path[-1]] = value
        return changed
    return change


def _cut(path: tuple, keep: int):
    def change(credential: dict) -> dict:
        changed = copy.deepcopy(credential)
        changed[path[0]][path[1]] = changed[path[0]][path[1]][:keep]
        return changed
    return change


COMMON = {
    "rawId-int": _set(("rawId",), 123),
    "rawId-list": _set(("rawId",), ["a"]),
    "rawId-bad-b64": _set(("rawId",), "!!!***"),
    "id-and-rawId-null": lambda c: {**_set(("rawId",), None)(c), "id": None},
    "type-object": _set(("type",), {"x": 1}),
    "response-list": _set(("response",), []),
    "response-string": _set(("response",), "response"),
    "response-empty": _set(("response",), {}),
    "clientData-int": _set(("response", "clientDataJSON"), 5),
    "clientData-bad-b64": _set(("response", "clientDataJSON"), "%%%"),
    "clientData-not-json": _set(("response", "clientDataJSON"), _b64(b"\xff\xfe not json")),
    "clientData-json-list": _set(("response", "clientDataJSON"), _b64(b"[1, 2]")),
    "clientData-wrong-types": _set(("response", "clientDataJSON"),
                                   _b64(b'{"type": 1, "challenge": [], "origin": {}}')),
    "extensions-list": _set(("clientExtensionResults",), []),
}
SIGN_IN = {
    **COMMON,
    "authData-truncated": _cut(("response", "authenticatorData"), 10),
    "authData-int": _set(("response", "authenticatorData"), 7),
    "signature-null": _set(("response", "signature"), None),
    "signature-bad-b64": _set(("response", "signature"), "@@"),
    "userHandle-int": _set(("response", "userHandle"), 7),
}
REGISTRATION = {
    **COMMON,
    "attestation-bad-b64": _set(("response", "attestationObject"), "!!not base64!!"),
    "attestation-not-cbor": _set(("response", "attestationObject"), _b64(b"\xff\x00\x1f")),
    "attestation-truncated": _cut(("response", "attestationObject"), 30),
    "attestation-deeply-nested": _set(("response", "attestationObject"), _b64(b"\x81" * 50_000 + b"\x00")),
    "attestation-cbor-not-map": _set(("response", "attestationObject"), _b64(b"\x83\x01\x02\x03")),
    "attestation-huge-length": _set(("response", "attestationObject"), _b64(b"\x5b" + b"\xff" * 8)),
    "transports-int": _set(("response", "transports"), 5),
    "transports-objects": _set(("response", "transports"), [{"a": 1}, None, 5]),
    "credProps-int": _set(("clientExtensionResults",), {"credProps": 5}),
}
NOT_A_CREDENTIAL = [b"not json", b"[]", b'"text"', b"null", b"{", b'{"credential": "{"}', b'{"credential": []}',
                    b'{"credential": 5}', b'{"credential": null}', b'{"credential": {}}']


def _count(app, model, *where) -> int:
    with app.app_context():
        return db.session.scalar(db.select(func.count()).select_from(model).where(*where))


def _clear_400(response, label=""):
    assert response.status_code == 400, (label, response.status_code, response.get_data(as_text=True)[:300])
    body = response.get_json()
    assert isinstance(body, dict) and set(body) == {"error"}, label
    text = response.get_data(as_text=True)
    assert "Traceback" not in text and "Exception" not in text and "Error(" not in text, label


@pytest.fixture
def resident(app):
    return signed_in_with_passkey(app)


def test_item_66_malformed_assertions_get_a_clear_400(app, resident):
    _, _, key = resident
    for label, change in SIGN_IN.items():
        browser = app.test_client()
        credential = change(key.get(passwordless_options(browser)))
        _clear_400(finish_sign_in(browser, credential), label)
        assert _count(app, UserSession, UserSession.ended_at.is_(None)) == 1, label  # only the resident's own
        assert browser.get("/account/").status_code == 302, label
    browser = app.test_client()
    assert finish_sign_in(browser, key.get(passwordless_options(browser))).status_code == 200  # still works


def test_item_66_malformed_registrations_get_a_clear_400_and_store_nothing(app, resident):
    owner, _, _ = resident
    for label, change in REGISTRATION.items():
        fresh = SoftAuthenticator("localhost", "http://localhost")
        credential = change(fresh.create(registration_options(owner)))
        _clear_400(post_json(owner, "/account/security/passkeys", {"credential": credential, "name": "Key"}), label)
        assert _count(app, WebAuthnCredential) == 1, label
    again = SoftAuthenticator("localhost", "http://localhost")
    ok = post_json(owner, "/account/security/passkeys",
                   {"credential": again.create(registration_options(owner)), "name": "Key"})
    assert ok.status_code == 200 and _count(app, WebAuthnCredential) == 2


def test_item_66_bodies_that_are_not_credentials_get_a_clear_400(app, resident):
    owner, _, _ = resident
    for raw in NOT_A_CREDENTIAL:
        browser = app.test_client()
        passwordless_options(browser)
        _clear_400(post_json(browser, "/login/passkey", raw=raw), raw)
        registration_options(owner)
        _clear_400(post_json(owner, "/account/security/passkeys", raw=raw), raw)
    assert _count(app, WebAuthnCredential) == 1
    assert _count(app, UserSession, UserSession.ended_at.is_(None)) == 1


def test_item_66_ten_megabyte_fields_are_refused_unread(app, resident):
    owner, _, key = resident
    for field in ("attestationObject", "clientDataJSON"):
        fresh = SoftAuthenticator("localhost", "http://localhost")
        credential = _set(("response", field), "A" * (10 * 1024 * 1024))(fresh.create(registration_options(owner)))
        _clear_400(post_json(owner, "/account/security/passkeys", {"credential": credential, "name": "Key"}), field)
    assert _count(app, WebAuthnCredential) == 1
    browser = app.test_client()
    credential = _set(("response", "authenticatorData"), "A" * (10 * 1024 * 1024))(
        key.get(passwordless_options(browser)))
    _clear_400(finish_sign_in(browser, credential), "authenticatorData")
    assert browser.get("/account/").status_code == 302


def test_item_66_oversized_side_fields_are_not_stored(app, resident):
    owner, user_id, _ = resident
    fresh = SoftAuthenticator("localhost", "http://localhost")
    credential = fresh.create(registration_options(owner))
    credential["response"]["transports"] = ["usb" * 200] * 50 + ["internal"]
    response = post_json(owner, "/account/security/passkeys", {"credential": credential, "name": "N" * 5000})
    _clear_400(response)  # a 5000-character name is refused with a reason
    credential = fresh.create(registration_options(owner))
    credential["response"]["transports"] = ["usb" * 200] * 50 + ["internal"]
    assert post_json(owner, "/account/security/passkeys", {"credential": credential, "name": "Key"}).status_code == 200
    with app.app_context():
        row = db.session.scalars(db.select(WebAuthnCredential).where(WebAuthnCredential.user_id == user_id)
                                 .order_by(WebAuthnCredential.id.desc())).first()
        assert row.transports == ["internal"]  # only transports WebAuthn defines
