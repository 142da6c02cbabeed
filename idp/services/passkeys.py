"""Passkeys and security keys (WebAuthn, via py_webauthn): registering them, and using one as a
second factor or alone (discoverable credentials, user verification required).

py_webauthn checks signatures, origin and RP ID; this module adds what it leaves to us: challenges
kept server-side, single-use (popped) and expiring, the credential bound to the account signing in,
and a signature-counter regression refused and audited (a sign of a cloned key)."""
from __future__ import annotations

import json
from dataclasses import dataclass
from urllib.parse import urlsplit

import webauthn
from flask import current_app
from flask_babel import gettext as _
from sqlalchemy.exc import IntegrityError
from webauthn.helpers import base64url_to_bytes, bytes_to_base64url
from webauthn.helpers.cose import COSEAlgorithmIdentifier
from webauthn.helpers.exceptions import WebAuthnException
from webauthn.helpers.structs import (
    AuthenticatorSelectionCriteria,
    AuthenticatorTransport,
    PublicKeyCredentialDescriptor,
    ResidentKeyRequirement,
    UserVerificationRequirement,
)

from idp.extensions import db
from idp.models import User, WebAuthnCredential
from idp.models.types import utcnow
from idp.services import DomainError, audit

CHALLENGE_TTL = 300
RP_NAME = "eCitizen Passport"
ALGORITHMS = [COSEAlgorithmIdentifier.ECDSA_SHA_256, COSEAlgorithmIdentifier.RSASSA_PKCS1_v1_5_SHA_256]


@dataclass(frozen=True)
class PasskeyResult:
    user: User
    credential: WebAuthnCredential
    amr: list[str]
    user_verified: bool


def _settings():
    return current_app.config["IDP_SETTINGS"]


def _origin() -> str:
    parts = urlsplit(_settings().issuer)
    return f"{parts.scheme}://{parts.netloc}"


def _store():
    return current_app.extensions["idp.store"]


def _failed() -> DomainError:
    return DomainError("webauthn_failed", _("That passkey could not be checked. Try again, or use another method."))


def _expired() -> DomainError:
    return DomainError("challenge_expired", _("The passkey request expired. Try again."))


def _descriptors(user: User) -> list[PublicKeyCredentialDescriptor]:
    result = []
    for row in list_for(user):
        transports = []
        for name in row.transports or []:
            try:
                transports.append(AuthenticatorTransport(name))
            except ValueError:
                continue
        result.append(PublicKeyCredentialDescriptor(id=row.credential_id, transports=transports or None))
    return result


def _parse(credential: dict | str) -> dict:
    if isinstance(credential, str):
        try:
            credential = json.loads(credential)
        except ValueError:
            raise _failed() from None
    if not isinstance(credential, dict):
        raise _failed()
    return credential


def list_for(user: User) -> list[WebAuthnCredential]:
    """The resident's passkeys and security keys, newest first."""
    return list(db.session.scalars(db.select(WebAuthnCredential).where(WebAuthnCredential.user_id == user.id)
                                   .order_by(WebAuthnCredential.created_at.desc(), WebAuthnCredential.id.desc())))


def registration_options(user: User) -> str:
    """Options for ``navigator.credentials.create`` (JSON); the challenge is kept for 5 minutes."""
    options = webauthn.generate_registration_options(
        rp_id=_settings().webauthn_rp_id, rp_name=RP_NAME, user_id=user.sub.encode(), user_name=user.email,
        user_display_name=user.name or user.email, timeout=CHALLENGE_TTL * 1000,
        authenticator_selection=AuthenticatorSelectionCriteria(
            resident_key=ResidentKeyRequirement.PREFERRED, user_verification=UserVerificationRequirement.PREFERRED),
        exclude_credentials=_descriptors(user), supported_pub_key_algs=ALGORITHMS)
    _store().set(f"webauthn:reg:{user.id}", bytes_to_base64url(options.challenge), CHALLENGE_TTL)
    return webauthn.options_to_json(options)


def register(user: User, credential: dict | str, name: str) -> WebAuthnCredential:
    """Verify a new credential against the pending challenge (used up) and store it."""
    clean_name = " ".join((name or "").split())
    if not 1 <= len(clean_name) <= 64:
        raise DomainError("invalid_name", _("Give the passkey a name of at most 64 characters."))
    challenge = _store().pop(f"webauthn:reg:{user.id}")
    if challenge is None:
        raise _expired()
    data = _parse(credential)
    try:
        verified = webauthn.verify_registration_response(
            credential=data, expected_challenge=base64url_to_bytes(challenge), expected_rp_id=_settings().webauthn_rp_id,
            expected_origin=_origin(), require_user_verification=False, supported_pub_key_algs=ALGORITHMS)
    except (WebAuthnException, ValueError, KeyError, TypeError):
        audit.record("passkey.added", outcome="failure", user_id=user.id, reason="verification")
        raise _failed() from None
    extensions = data.get("clientExtensionResults") or {}
    cred_props = extensions.get("credProps") if isinstance(extensions, dict) else None
    transports = (data.get("response") or {}).get("transports") or []
    row = WebAuthnCredential(
        user_id=user.id, credential_id=verified.credential_id, public_key=verified.credential_public_key,
        sign_count=verified.sign_count, name=clean_name, aaguid=str(verified.aaguid or ""),
        transports=[t for t in transports if isinstance(t, str)][:8],
        backup_eligible=verified.credential_device_type == "multi_device",
        discoverable=bool(isinstance(cred_props, dict) and cred_props.get("rk")), created_at=utcnow())
    db.session.add(row)
    try:
        db.session.commit()
    except IntegrityError:
        db.session.rollback()
        raise DomainError("already_registered", _("This passkey is already registered.")) from None
    audit.record("passkey.added", user_id=user.id, credential=row.id)
    return row


def authentication_options(flow: str, user: User | None = None) -> str:
    """Options for ``navigator.credentials.get`` (JSON). With a resident: their credentials, as a
    second factor. Without: any discoverable credential, user verification required."""
    options = webauthn.generate_authentication_options(
        rp_id=_settings().webauthn_rp_id, timeout=CHALLENGE_TTL * 1000,
        allow_credentials=_descriptors(user) if user else [],
        user_verification=UserVerificationRequirement.PREFERRED if user else UserVerificationRequirement.REQUIRED)
    state = {"challenge": bytes_to_base64url(options.challenge), "user_id": user.id if user else None}
    _store().set(f"webauthn:auth:{flow}", json.dumps(state), CHALLENGE_TTL)
    return webauthn.options_to_json(options)


def authenticate(flow: str, credential: dict | str, user: User | None = None) -> PasskeyResult:
    """Check an assertion against the challenge of ``flow`` (used up whatever the outcome)."""
    raw_state = _store().pop(f"webauthn:auth:{flow}") if flow else None
    if raw_state is None:
        raise _expired()
    state = json.loads(raw_state)
    # Options made without a resident asked the authenticator for user verification: insist on it.
    passwordless = state.get("user_id") is None
    data = _parse(credential)
    try:
        raw_id = base64url_to_bytes(data.get("rawId") or data.get("id") or "")
    except (ValueError, TypeError, AttributeError):
        raise _failed() from None
    row = db.session.scalar(db.select(WebAuthnCredential).where(WebAuthnCredential.credential_id == raw_id))
    if row is None:
        raise DomainError("unknown_credential", _("This passkey is not registered with eCitizen Passport."))
    expected_user = user.id if user is not None else state.get("user_id")
    if expected_user is not None and row.user_id != expected_user:
        audit.record("passkey.used", outcome="failure", user_id=expected_user, reason="wrong_account")
        raise DomainError("wrong_account", _("This passkey belongs to another account."))
    owner = db.session.get(User, row.user_id)
    if owner is None or not owner.is_active:
        raise _failed()
    try:
        # The counter is compared below, after the signature is known to be good: py_webauthn would
        # refuse a regression before checking the signature, and only a signed regression means a clone.
        verified = webauthn.verify_authentication_response(
            credential=data, expected_challenge=base64url_to_bytes(state["challenge"]),
            expected_rp_id=_settings().webauthn_rp_id, expected_origin=_origin(),
            credential_public_key=row.public_key, credential_current_sign_count=0,
            require_user_verification=passwordless)
    except (WebAuthnException, ValueError, KeyError, TypeError):
        audit.record("passkey.used", outcome="failure", user_id=row.user_id, credential=row.id, reason="verification")
        raise _failed() from None
    if (verified.new_sign_count or row.sign_count) and verified.new_sign_count <= row.sign_count:
        audit.record("passkey.sign_count_regression", outcome="failure", user_id=row.user_id, credential=row.id,
                     stored=row.sign_count, presented=verified.new_sign_count)
        raise _failed()
    row.sign_count = verified.new_sign_count
    row.last_used_at = utcnow()
    db.session.commit()
    return PasskeyResult(owner, row, ["swk" if row.backup_eligible else "hwk", "user"], verified.user_verified)


def remove(user: User, credential_row_id: int) -> bool:
    """Remove one of the resident's own credentials; False when it is not theirs."""
    row = db.session.get(WebAuthnCredential, credential_row_id)
    if row is None or row.user_id != user.id:
        return False
    db.session.delete(row)
    db.session.commit()
    audit.record("passkey.removed", user_id=user.id, credential=credential_row_id)
    return True
