"""Token signing keys: generated on first use, kept in the database with the private part
encrypted (AES-GCM under a key derived from IDP_SECRET_KEY), loaded once per process.

Rotation by any instance is noticed through a version marker in the shared store, checked at
most every few seconds, so no request loads keys from the database in the steady state."""
from __future__ import annotations

import json
import secrets
import threading
import time
from dataclasses import dataclass
from datetime import datetime, timedelta

from flask import current_app
from joserfc.jwk import ECKey, RSAKey

from idp.extensions import db
from idp.models import SigningKey
from idp.models.types import utcnow
from idp.security import crypto

CACHE = "idp.key_cache"
VERSION_KEY = "keys:version"
CHECK_EVERY = 5.0
# The only algorithms any JWT we verify may use (ours and departments' assertions); never none/HS*.
JWS_ALGORITHMS = ("RS256", "ES256")
_lock = threading.Lock()


@dataclass
class KeyRing:
    """The current signing key and every public key still published."""

    signing: RSAKey | ECKey
    signing_kid: str
    alg: str
    public_keys: dict[str, RSAKey | ECKey]
    jwks_json: str
    version: str
    checked_at: float
    next_change: datetime | None = None  # when a key starts signing or leaves the JWKS


def _encrypt(data: bytes) -> str:
    return crypto.seal(data, "signing-key")


def _decrypt(blob: str) -> bytes:
    return crypto.unseal(blob, "signing-key")


def create_key(alg: str | None = None, *, immediate: bool = False) -> SigningKey:
    """Generate a new signing key. It is published in the JWKS at once but signs only after
    ``IDP_KEY_PREPUBLISH_SECONDS`` (longer than departments cache the JWKS); the key it replaces
    keeps signing until then and stays published until every token it signed has expired.

    ``immediate`` (the first key, or an emergency rotation after a compromise): the new key signs at
    once and every older key is withdrawn from the JWKS at once, so tokens they signed stop verifying.
    """
    settings = current_app.config["IDP_SETTINGS"]
    alg = (alg or settings.signing_alg).upper()
    kid = secrets.token_urlsafe(12)
    if alg == "ES256":
        key = ECKey.generate_key("P-256", parameters={"kid": kid, "use": "sig", "alg": alg}, private=True)
    else:
        key = RSAKey.generate_key(2048, parameters={"kid": kid, "use": "sig", "alg": alg}, private=True)
    now = utcnow()
    rows = list(db.session.scalars(db.select(SigningKey)))
    if not any(row.state(now) == "signing" for row in rows):
        immediate = True  # nothing signs yet: no department can hold a token to verify
    activates = now if immediate else now + timedelta(seconds=settings.key_prepublish_seconds)
    # Old keys stay published until every token they signed has expired.
    keep = timedelta(seconds=max(settings.id_token_lifetime, settings.access_token_lifetime) + 300)
    for old in rows:
        if old.retired_at is None or old.retired_at > activates:
            old.retired_at = activates
            old.publish_until = activates + keep
        if immediate:
            old.retired_at = min(old.retired_at, now)
            old.publish_until = now
    record = SigningKey(kid=kid, alg=alg, private_key_encrypted=_encrypt(key.as_pem(private=True)),
                        public_jwk=key.as_dict(private=False), created_at=now, activates_at=activates)
    db.session.add(record)
    db.session.commit()
    current_app.extensions["idp.store"].set(VERSION_KEY, kid, 10 * 365 * 86400)
    current_app.extensions.pop(CACHE, None)
    return record


def _load() -> KeyRing:
    now = utcnow()
    rows = list(db.session.scalars(db.select(SigningKey).order_by(SigningKey.created_at)))
    current = [r for r in rows if r.state(now) == "signing"]
    if not current:
        create_key()
        return _load()
    signing_row = current[-1]
    published = [r for r in rows if r.state(now) in ("pending", "signing", "published")]
    public = {}
    for row in published:
        cls = ECKey if row.alg == "ES256" else RSAKey
        public[row.kid] = cls.import_key(row.public_jwk)
    signing_cls = ECKey if signing_row.alg == "ES256" else RSAKey
    signing = signing_cls.import_key(_decrypt(signing_row.private_key_encrypted),
                                     parameters={"kid": signing_row.kid, "alg": signing_row.alg})
    jwks = {"keys": [dict(row.public_jwk, kid=row.kid, alg=row.alg, use="sig") for row in reversed(published)]}
    version = current_app.extensions["idp.store"].get(VERSION_KEY) or signing_row.kid
    changes = [t for r in rows for t in (r.activates_at, r.retired_at, r.publish_until) if t is not None and t > now]
    return KeyRing(signing, signing_row.kid, signing_row.alg, public, json.dumps(jwks), version, time.monotonic(),
                   min(changes) if changes else None)


def _fresh(ring: KeyRing | None) -> KeyRing | None:
    """``ring`` unless a pre-published key has started signing or a retired key has left the JWKS since."""
    if ring is not None and ring.next_change is not None and utcnow() >= ring.next_change:
        return None
    return ring


def keyring() -> KeyRing:
    """The cached key ring, reloaded when another process has rotated the keys."""
    ring: KeyRing | None = _fresh(current_app.extensions.get(CACHE))
    if ring is not None and time.monotonic() - ring.checked_at < CHECK_EVERY:
        return ring
    with _lock:
        ring = _fresh(current_app.extensions.get(CACHE))
        if ring is not None:
            marker = current_app.extensions["idp.store"].get(VERSION_KEY)
            if marker in (None, ring.version):
                ring.checked_at = time.monotonic()
                return ring
        ring = _load()
        current_app.extensions[CACHE] = ring
        return ring


def rotate(*, immediate: bool = False) -> SigningKey:
    """Publish a new key that signs after the pre-publication time (see :func:`create_key`)."""
    return create_key(immediate=immediate)


def list_keys() -> list[SigningKey]:
    """Every signing key, newest first (public metadata only is shown from these)."""
    return list(db.session.scalars(db.select(SigningKey).order_by(SigningKey.created_at.desc())))
