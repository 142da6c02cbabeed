"""Checklist 64: registration checks. Through the registration endpoint: a credential ID already
registered to another resident, a credential ID over 1023 bytes, a public-key algorithm that was
not offered, backup state set without backup eligibility, and a synced passkey on a staff account
are refused with a 400 and store nothing; BE, BS and the AAGUID of an accepted credential are
stored; an AAGUID on the city's allowlist lets staff use a synced passkey."""
from __future__ import annotations

import uuid

from sqlalchemy import func, update
from webauthn.helpers import encode_cbor

from idp.extensions import db
from idp.models import User, WebAuthnCredential
from tests.support.passkeys_http import add_passkey, registration_options, signed_in_with_passkey
from tests.support.soft_authenticator import BE, BS, SoftAuthenticator

AAGUID = uuid.UUID("ea9b8d66-4d01-1d21-3ce4-b6b48cb575d4")


class Custom(SoftAuthenticator):
    """A software authenticator whose flags, AAGUID and key algorithm the test chooses."""

    def __init__(self, *, set_flags=0, clear_flags=0, aaguid=bytes(16), alg=-7, **kwargs):
        super().__init__("localhost", "http://localhost", **kwargs)
        self.set_flags, self.clear_flags, self.aaguid, self.alg = set_flags, clear_flags, aaguid, alg

    def _auth_data(self, rp_id, flags, extra=b""):
        if extra:  # attested credential data: put our AAGUID in place of the zero one
            extra = self.aaguid + extra[16:]
        data = super()._auth_data(rp_id, flags, extra)
        flags_byte = (data[32] | self.set_flags) & ~self.clear_flags
        return data[:32] + bytes([flags_byte]) + data[33:]

    def _cose_key(self):
        numbers = self.key.public_key().public_numbers()
        return encode_cbor({1: 2, 3: self.alg, -1: 1, -2: numbers.x.to_bytes(32, "big"),
                            -3: numbers.y.to_bytes(32, "big")})


def _rows(app) -> int:
    with app.app_context():
        return db.session.scalar(db.select(func.count()).select_from(WebAuthnCredential))


def _refused(app, owner, key) -> None:
    before = _rows(app)
    response = add_passkey(owner, key.create(registration_options(owner)))
    assert response.status_code == 400, response.get_data(as_text=True)
    assert set(response.get_json()) == {"error"}
    assert _rows(app) == before


def test_item_64_a_credential_id_of_another_resident_is_refused(app):
    _, amara_id, amara_key = signed_in_with_passkey(app, email="amara@example.org")
    mallory, _, _ = signed_in_with_passkey(app, email="mallory@example.org")
    copy = Custom()
    copy.credential_id = amara_key.credential_id  # an authenticator answering with Amara's credential ID
    _refused(app, mallory, copy)
    with app.app_context():
        owner = db.session.scalar(db.select(WebAuthnCredential.user_id)
                                  .where(WebAuthnCredential.credential_id == amara_key.credential_id))
        assert owner == amara_id


def test_item_64_credential_ids_longer_than_1023_bytes_are_refused(app):
    owner, _, _ = signed_in_with_passkey(app)
    for length in (1024, 4000):
        key = Custom()
        key.credential_id = bytes([7]) * length
        _refused(app, owner, key)
    key = Custom()
    key.credential_id = bytes([7]) * 1023
    assert add_passkey(owner, key.create(registration_options(owner))).status_code == 200
    assert _rows(app) == 2


def test_item_64_an_algorithm_not_offered_is_refused(app):
    owner, _, _ = signed_in_with_passkey(app)
    for alg in (-8, -35, -36, -256, 0):  # EdDSA, ES384, ES512, unassigned, invalid; offered: -7, -257
        _refused(app, owner, Custom(alg=alg))


def test_item_64_backup_state_without_eligibility_is_refused(app):
    owner, _, _ = signed_in_with_passkey(app)
    _refused(app, owner, Custom(set_flags=BS, clear_flags=BE))


def test_item_64_backup_flags_and_aaguid_are_stored(app):
    owner, user_id, _ = signed_in_with_passkey(app)
    response = add_passkey(owner, Custom(set_flags=BE | BS, aaguid=AAGUID.bytes).create(registration_options(owner)))
    assert response.status_code == 200
    response = add_passkey(owner, Custom(set_flags=BE, aaguid=bytes(16)).create(registration_options(owner)))
    assert response.status_code == 200
    with app.app_context():
        rows = db.session.scalars(db.select(WebAuthnCredential).where(WebAuthnCredential.user_id == user_id)
                                  .order_by(WebAuthnCredential.id)).all()
        assert [(r.backup_eligible, r.backed_up) for r in rows] == [(False, False), (True, True), (True, False)]
        assert rows[1].aaguid == str(AAGUID)


def _make_staff(app, user_id) -> None:
    with app.app_context():
        db.session.execute(update(User).where(User.id == user_id).values(roles=["administrator"]))
        db.session.commit()


def test_item_64_staff_may_not_register_a_synced_passkey(app):
    owner, user_id, _ = signed_in_with_passkey(app)
    _make_staff(app, user_id)
    _refused(app, owner, Custom(set_flags=BE | BS, aaguid=AAGUID.bytes))
    device_bound = add_passkey(owner, Custom(aaguid=AAGUID.bytes).create(registration_options(owner)))
    assert device_bound.status_code == 200 and _rows(app) == 2


def test_item_64_an_allowlisted_aaguid_lets_staff_use_a_synced_passkey(app, monkeypatch):
    owner, user_id, _ = signed_in_with_passkey(app)
    _make_staff(app, user_id)
    monkeypatch.setattr(app.config["IDP_SETTINGS"], "staff_passkey_aaguids", (str(AAGUID),))
    response = add_passkey(owner, Custom(set_flags=BE | BS, aaguid=AAGUID.bytes).create(registration_options(owner)))
    assert response.status_code == 200 and _rows(app) == 2
    _refused(app, owner, Custom(set_flags=BE | BS, aaguid=uuid.uuid4().bytes))
