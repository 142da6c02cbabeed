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
from sqlalchemy import and_, or_, update
from sqlalchemy.exc import IntegrityError
from webauthn.helpers import base64url_to_bytes, bytes_to_base64url, parse_client_data_json
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


def _origins() -> list[str]:
    """The origins a ceremony may come from: the issuer's, and the staff console's (IDP_ADMIN_HOST)."""
    settings = _settings()
    issuer = urlsplit(settings.issuer)
    origins = [f"{issuer.scheme}://{issuer.netloc}"]
    if settings.admin_host:  # a name alone takes the issuer's port
        port = f":{issuer.port}" if issuer.port and ":" not in settings.admin_host else ""
        origins.append(f"{issuer.scheme}://{settings.admin_host}{port}")
    return origins


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


REGISTRATION_FIELDS = ("clientDataJSON", "attestationObject")
ASSERTION_FIELDS = ("clientDataJSON", "authenticatorData", "signature")
KNOWN_TRANSPORTS = {t.value for t in AuthenticatorTransport}
MAX_CREDENTIAL_ID = 1023  # bytes


def _parse(credential: dict | str, fields: tuple[str, ...]) -> dict:
    """The credential as a dict of the shape WebAuthn defines (strings where strings belong, the
    ``response`` members ``fields`` present); anything else is refused before any decoding."""
    if isinstance(credential, str):
        try:
            credential = json.loads(credential)
        except ValueError:
            raise _failed() from None
    if not isinstance(credential, dict):
        raise _failed()
    response = credential.get("response")
    shaped = (isinstance(credential.get("id"), str) and isinstance(credential.get("rawId", ""), str)
              and credential.get("type") == "public-key" and isinstance(response, dict)
              and all(isinstance(response.get(name), str) for name in fields)
              and isinstance(response.get("userHandle") or "", str)
              and isinstance(response.get("transports", []), list)
              and all(isinstance(t, str) for t in response.get("transports", []))
              and isinstance(credential.get("clientExtensionResults", {}), dict)
              and isinstance(credential.get("clientExtensionResults", {}).get("credProps", {}), dict))
    if not shaped:
        raise _failed()
    return credential


def _same_origin_only(data: dict) -> None:
    """Refuse a ceremony run inside a frame of another site (clientData ``crossOrigin``): our pages
    never embed themselves, so such a response is an attack. Raises ValueError."""
    client_data = parse_client_data_json(base64url_to_bytes((data.get("response") or {})["clientDataJSON"]))
    if client_data.cross_origin or getattr(client_data, "top_origin", None):
        raise ValueError("cross-origin ceremony")


def _handle_matches(data: dict, owner: User) -> bool:
    """An assertion's user handle, when the authenticator sends one (discoverable credentials),
    must be the one given to the credential's owner at registration (their ``sub``)."""
    handle = data["response"].get("userHandle")
    if not handle:
        return True
    try:
        return base64url_to_bytes(handle) == owner.sub.encode()
    except (ValueError, TypeError):
        return False


def list_for(user: User) -> list[WebAuthnCredential]:
    """The resident's passkeys and security keys, newest first."""
    return list(db.session.scalars(db.select(WebAuthnCredential).where(WebAuthnCredential.user_id == user.id)
                                   .order_by(WebAuthnCredential.created_at.desc(), WebAuthnCredential.id.desc())))


def registration_options(user: User, flow: str = "") -> str:
    """Options for ``navigator.credentials.create`` (JSON); the challenge is kept for 5 minutes,
    for this resident and ``flow`` (an id the caller keeps in the browser's session)."""
    options = webauthn.generate_registration_options(
        rp_id=_settings().webauthn_rp_id, rp_name=RP_NAME, user_id=user.sub.encode(), user_name=user.email,
        user_display_name=user.name or user.email, timeout=CHALLENGE_TTL * 1000,
        authenticator_selection=AuthenticatorSelectionCriteria(
            resident_key=ResidentKeyRequirement.PREFERRED, user_verification=UserVerificationRequirement.PREFERRED),
        exclude_credentials=_descriptors(user), supported_pub_key_algs=ALGORITHMS)
    _store().set(f"webauthn:reg:{user.id}:{flow}", bytes_to_base64url(options.challenge), CHALLENGE_TTL)
    return webauthn.options_to_json(options)


def register(user: User, credential: dict | str, name: str, flow: str = "") -> WebAuthnCredential:
    """Verify a new credential against the challenge pending for ``flow`` (used up) and store it."""
    clean_name = " ".join((name or "").split())
    if not 1 <= len(clean_name) <= 64:
        raise DomainError("invalid_name", _("Give the passkey a name of at most 64 characters."))
    challenge = _store().pop(f"webauthn:reg:{user.id}:{flow}")
    if challenge is None:
        raise _expired()
    data = _parse(credential, REGISTRATION_FIELDS)
    try:
        _same_origin_only(data)
        verified = webauthn.verify_registration_response(
            credential=data, expected_challenge=base64url_to_bytes(challenge), expected_rp_id=_settings().webauthn_rp_id,
            expected_origin=_origins(), require_user_verification=False, supported_pub_key_algs=ALGORITHMS)
    except (WebAuthnException, ValueError, KeyError, TypeError):
        audit.record("passkey.added", outcome="failure", user_id=user.id, reason="verification")
        raise _failed() from None
    if len(verified.credential_id) > MAX_CREDENTIAL_ID:  # WebAuthn §7.1 step 24
        audit.record("passkey.added", outcome="failure", user_id=user.id, reason="credential_id_length")
        raise _failed()
    synced = verified.credential_device_type == "multi_device"
    if user.roles and synced and str(verified.aaguid or "") not in _settings().staff_passkey_aaguids:
        audit.record("passkey.added", outcome="failure", user_id=user.id, reason="staff_policy")
        raise DomainError("staff_policy", _("Staff accounts need a security key, or a passkey that stays on one "
                                            "device. Synced passkeys cannot be used."))
    extensions = data.get("clientExtensionResults") or {}
    cred_props = extensions.get("credProps") if isinstance(extensions, dict) else None
    transports = (data.get("response") or {}).get("transports") or []
    row = WebAuthnCredential(
        user_id=user.id, credential_id=verified.credential_id, public_key=verified.credential_public_key,
        sign_count=verified.sign_count, name=clean_name, aaguid=str(verified.aaguid or ""),
        transports=[t for t in transports if isinstance(t, str) and t in KNOWN_TRANSPORTS][:8],
        backup_eligible=synced, backed_up=bool(verified.credential_backed_up),
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
    data = _parse(credential, ASSERTION_FIELDS)
    try:
        raw_id = base64url_to_bytes(data.get("rawId") or data.get("id") or "")
    except (ValueError, TypeError, AttributeError):
        raise _failed() from None
    row = db.session.scalar(db.select(WebAuthnCredential).where(WebAuthnCredential.credential_id == raw_id))
    # Unknown, someone else's, or not matching its user handle: one answer, so that nothing tells
    # whether a credential is registered or to whom.
    if row is None:
        raise DomainError("unknown_credential", _failed().message)
    expected_user = user.id if user is not None else state.get("user_id")
    if expected_user is not None and row.user_id != expected_user:
        audit.record("passkey.used", outcome="failure", user_id=expected_user, reason="wrong_account")
        raise DomainError("wrong_account", _failed().message)
    owner = db.session.get(User, row.user_id)
    if owner is None or not owner.is_active:
        raise _failed()
    if not _handle_matches(data, owner):
        audit.record("passkey.used", outcome="failure", user_id=row.user_id, credential=row.id, reason="user_handle")
        raise DomainError("wrong_account", _failed().message)
    try:
        # The counter is compared below, after the signature is known to be good: py_webauthn would
        # refuse a regression before checking the signature, and only a signed regression means a clone.
        _same_origin_only(data)
        verified = webauthn.verify_authentication_response(
            credential=data, expected_challenge=base64url_to_bytes(state["challenge"]),
            expected_rp_id=_settings().webauthn_rp_id, expected_origin=_origins(),
            credential_public_key=row.public_key, credential_current_sign_count=0,
            require_user_verification=passwordless)
    except (WebAuthnException, ValueError, KeyError, TypeError):
        audit.record("passkey.used", outcome="failure", user_id=row.user_id, credential=row.id, reason="verification")
        raise _failed() from None
    if (verified.new_sign_count or row.sign_count) and verified.new_sign_count <= row.sign_count:
        audit.record("passkey.sign_count_regression", outcome="failure", user_id=row.user_id, credential=row.id,
                     stored=row.sign_count, presented=verified.new_sign_count)
        raise _failed()
    # Stored atomically, and only forward: of two assertions with the same count (a clone racing
    # the original) one wins. Authenticators without a counter (synced passkeys) always send 0.
    new_count = verified.new_sign_count
    moved = db.session.execute(
        update(WebAuthnCredential)
        .where(WebAuthnCredential.id == row.id,
               or_(WebAuthnCredential.sign_count < new_count, and_(WebAuthnCredential.sign_count == 0, new_count == 0)))
        .values(sign_count=new_count, backed_up=bool(verified.credential_backed_up), last_used_at=utcnow())).rowcount
    db.session.commit()
    if moved != 1:
        audit.record("passkey.sign_count_regression", outcome="failure", user_id=row.user_id, credential=row.id,
                     stored=row.sign_count, presented=new_count)
        raise _failed()
    db.session.refresh(row)
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
