"""A software WebAuthn authenticator (P-256, "none" attestation) for service-level tests: it
answers the server's options the way a browser and a security key would, and can be told to lie
(another origin or RP ID, no user verification, a rewound signature counter)."""
from __future__ import annotations

import hashlib
import json
import os
import struct

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from webauthn.helpers import base64url_to_bytes, bytes_to_base64url, encode_cbor

UP, UV, BE, BS, AT = 0x01, 0x04, 0x08, 0x10, 0x40


class SoftAuthenticator:
    """One credential per authenticator, created by :meth:`create`."""

    def __init__(self, rp_id: str, origin: str, *, backup_eligible: bool = False):
        self.rp_id, self.origin, self.backup_eligible = rp_id, origin, backup_eligible
        self.key = ec.generate_private_key(ec.SECP256R1())
        self.credential_id = os.urandom(32)
        self.user_handle = b""
        self.sign_count = 0

    def _auth_data(self, rp_id: str, flags: int, extra: bytes = b"") -> bytes:
        if self.backup_eligible:
            flags |= BE | BS
        return hashlib.sha256(rp_id.encode()).digest() + bytes([flags]) + struct.pack(">I", self.sign_count) + extra

    def _cose_key(self) -> bytes:
        numbers = self.key.public_key().public_numbers()
        return encode_cbor({1: 2, 3: -7, -1: 1, -2: numbers.x.to_bytes(32, "big"), -3: numbers.y.to_bytes(32, "big")})

    @staticmethod
    def _client_data(kind: str, challenge: str, origin: str) -> bytes:
        return json.dumps({"type": kind, "challenge": challenge, "origin": origin, "crossOrigin": False}).encode()

    def create(self, options_json: str, *, origin: str | None = None, rp_id: str | None = None,
               user_verified: bool = True, resident: bool = True) -> dict:
        """A registration response to ``navigator.credentials.create`` options."""
        options = json.loads(options_json)
        self.user_handle = base64url_to_bytes(options["user"]["id"])  # what a browser returns later
        client_data = self._client_data("webauthn.create", options["challenge"], origin or self.origin)
        attested = bytes(16) + struct.pack(">H", len(self.credential_id)) + self.credential_id + self._cose_key()
        flags = UP | AT | (UV if user_verified else 0)
        auth_data = self._auth_data(rp_id or self.rp_id, flags, attested)
        attestation = encode_cbor({"fmt": "none", "attStmt": {}, "authData": auth_data})
        raw_id = bytes_to_base64url(self.credential_id)
        return {"id": raw_id, "rawId": raw_id, "type": "public-key",
                "response": {"clientDataJSON": bytes_to_base64url(client_data),
                             "attestationObject": bytes_to_base64url(attestation), "transports": ["internal"]},
                "clientExtensionResults": {"credProps": {"rk": resident}}}

    def get(self, options_json: str, *, origin: str | None = None, rp_id: str | None = None,
            user_verified: bool = True, sign_count: int | None = None) -> dict:
        """An assertion for ``navigator.credentials.get`` options, signed with this credential."""
        options = json.loads(options_json)
        self.sign_count = self.sign_count + 1 if sign_count is None else sign_count
        client_data = self._client_data("webauthn.get", options["challenge"], origin or self.origin)
        auth_data = self._auth_data(rp_id or self.rp_id, UP | (UV if user_verified else 0))
        signature = self.key.sign(auth_data + hashlib.sha256(client_data).digest(), ec.ECDSA(hashes.SHA256()))
        raw_id = bytes_to_base64url(self.credential_id)
        return {"id": raw_id, "rawId": raw_id, "type": "public-key",
                "response": {"clientDataJSON": bytes_to_base64url(client_data),
                             "authenticatorData": bytes_to_base64url(auth_data),
                             "signature": bytes_to_base64url(signature),
                             "userHandle": bytes_to_base64url(self.user_handle)},
                "clientExtensionResults": {}}
