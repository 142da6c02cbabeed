"""Secrets at rest: AES-GCM under keys derived (HKDF) from IDP_SECRET_KEY, one key per purpose,
and keyed digests for high-entropy values that are looked up rather than decrypted.

After a rotation of IDP_SECRET_KEY the old secrets listed in IDP_SECRET_KEY_FALLBACKS still open
what they sealed and still match the digests they made; new data always uses IDP_SECRET_KEY."""
from __future__ import annotations

import base64
import hashlib
import hmac
import os

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from flask import current_app


def _secret() -> bytes:
    return current_app.config["IDP_SETTINGS"].secret_key.encode()


def _secrets() -> list[bytes]:
    """The current secret, then the rotated-out ones still accepted."""
    settings = current_app.config["IDP_SETTINGS"]
    return [settings.secret_key.encode(), *(key.encode() for key in settings.secret_key_fallbacks)]


def _aead(purpose: str, secret: bytes | None = None) -> AESGCM:
    key = HKDF(algorithm=hashes.SHA256(), length=32, salt=b"ecitizen-passport",
               info=purpose.encode()).derive(secret or _secret())
    return AESGCM(key)


def seal(data: bytes, purpose: str) -> str:
    """Encrypt ``data`` for storage; ``purpose`` separates keys and binds the ciphertext to its use."""
    nonce = os.urandom(12)
    return base64.b64encode(nonce + _aead(purpose).encrypt(nonce, data, purpose.encode())).decode()


def unseal(blob: str, purpose: str) -> bytes:
    """Decrypt what :func:`seal` produced for the same purpose (raises on tampering)."""
    raw = base64.b64decode(blob)
    *earlier, last = _secrets()  # the current secret first, then the fallbacks
    for secret in earlier:
        try:
            return _aead(purpose, secret).decrypt(raw[:12], raw[12:], purpose.encode())
        except InvalidTag:
            continue
    return _aead(purpose, last).decrypt(raw[:12], raw[12:], purpose.encode())


def keyed_digest(value: str, purpose: str, secret: bytes | None = None) -> str:
    """HMAC-SHA256 of ``value`` under the server secret, hex; for random codes stored only as digests."""
    return hmac.new(secret or _secret(), purpose.encode() + b":" + value.encode(), hashlib.sha256).hexdigest()


def keyed_digests(value: str, purpose: str) -> list[str]:
    """:func:`keyed_digest` under the current secret and each fallback: what a stored digest may be."""
    return [keyed_digest(value, purpose, secret) for secret in _secrets()]
