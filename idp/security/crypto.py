"""Secrets at rest: AES-GCM under keys derived (HKDF) from IDP_SECRET_KEY, one key per purpose,
and keyed digests for high-entropy values that are looked up rather than decrypted."""
from __future__ import annotations

import base64
import hashlib
import hmac
import os

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from flask import current_app


def _secret() -> bytes:
    return current_app.config["IDP_SETTINGS"].secret_key.encode()


def _aead(purpose: str) -> AESGCM:
    key = HKDF(algorithm=hashes.SHA256(), length=32, salt=b"ecitizen-passport",
               info=purpose.encode()).derive(_secret())
    return AESGCM(key)


def seal(data: bytes, purpose: str) -> str:
    """Encrypt ``data`` for storage; ``purpose`` separates keys and binds the ciphertext to its use."""
    nonce = os.urandom(12)
    return base64.b64encode(nonce + _aead(purpose).encrypt(nonce, data, purpose.encode())).decode()


def unseal(blob: str, purpose: str) -> bytes:
    """Decrypt what :func:`seal` produced for the same purpose (raises on tampering)."""
    raw = base64.b64decode(blob)
    return _aead(purpose).decrypt(raw[:12], raw[12:], purpose.encode())


def keyed_digest(value: str, purpose: str) -> str:
    """HMAC-SHA256 of ``value`` under the server secret, hex; for random codes stored only as digests."""
    return hmac.new(_secret(), purpose.encode() + b":" + value.encode(), hashlib.sha256).hexdigest()
