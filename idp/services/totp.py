"""Authenticator apps (TOTP, RFC 6238 via pyotp): enrolment that activates only after a correct
code, one step of clock drift either way (around the database's time: idp.services.clock), and no code
accepted twice (pyotp leaves that to us)."""
from __future__ import annotations

import time

import pyotp
import segno
from sqlalchemy import update

from idp.extensions import db
from idp.models import TotpCredential, User
from idp.models.types import utcnow
from idp.security import crypto
from idp.services import clock, otp_guard

ISSUER_NAME = "eCitizen Passport"
PURPOSE = "totp-secret"
STEP = 30


def _credential(user: User) -> TotpCredential | None:
    return db.session.scalar(db.select(TotpCredential).where(TotpCredential.user_id == user.id))


def active(user: User) -> bool:
    """Whether the resident has a confirmed authenticator app."""
    found = _credential(user)
    return found is not None and found.confirmed_at is not None


def begin_enrolment(user: User) -> str:
    """A new secret for an authenticator app (replacing an unconfirmed one); returns it in base32."""
    secret = pyotp.random_base32(32)
    found = _credential(user)
    if found is None:
        found = TotpCredential(user_id=user.id)
        db.session.add(found)
    found.secret_encrypted = crypto.seal(secret.encode(), PURPOSE)
    found.confirmed_at = None
    found.last_used_step = 0
    db.session.commit()
    return secret


def pending_secret(user: User) -> str | None:
    """The secret awaiting its first code, if enrolment has started and not finished."""
    found = _credential(user)
    if found is None or found.confirmed_at is not None:
        return None
    return crypto.unseal(found.secret_encrypted, PURPOSE).decode()


def provisioning_uri(user: User, secret: str) -> str:
    return pyotp.TOTP(secret).provisioning_uri(name=user.email, issuer_name=ISSUER_NAME)


def qr_svg(uri: str) -> str:
    """The otpauth URI as an inline SVG QR code, drawn here (no outside service sees the secret)."""
    return segno.make(uri, error="m").svg_inline(scale=4, dark="#000", light="#fff",
                                                  title="QR code for your authenticator app")


def _accept(found: TotpCredential, code: str) -> int | None:
    """The time step the code belongs to (now, or one step either side), if it is right and newer than
    the last one used; claims that step atomically so a parallel request cannot use it too."""
    cleaned = "".join(ch for ch in (code or "") if not ch.isspace())
    if not (cleaned.isdigit() and len(cleaned) == 6):
        return None
    secret = crypto.unseal(found.secret_encrypted, PURPOSE).decode()
    totp = pyotp.TOTP(secret)
    now_step = int(time.time() + clock.skew()) // STEP  # a server clock off the database's is corrected
    for step in (now_step - 1, now_step, now_step + 1):
        if step > found.last_used_step and pyotp.utils.strings_equal(totp.at(step * STEP), cleaned):
            claimed = db.session.execute(update(TotpCredential)
                                         .where(TotpCredential.id == found.id,
                                                TotpCredential.last_used_step < step)
                                         .values(last_used_step=step)).rowcount
            db.session.commit()
            return step if claimed == 1 else None
    return None


def confirm_enrolment(user: User, code: str) -> bool:
    """Activate the pending authenticator when ``code`` is right."""
    found = _credential(user)
    if found is None or found.confirmed_at is not None or _accept(found, code) is None:
        return False
    db.session.refresh(found)
    found.confirmed_at = utcnow()
    db.session.commit()
    return True


def verify(user: User, code: str) -> bool:
    """Whether ``code`` from the resident's active authenticator is right and unused. Every try
    counts against the resident's limits (idp.services.otp_guard; raises Throttled past them),
    whichever page asks."""
    found = _credential(user)
    if found is None or found.confirmed_at is None:
        return False
    return otp_guard.attempt(user.id, "totp", TotpCredential.failed_attempts, found.id,
                             lambda: _accept(found, code) is not None)


def remove(user: User) -> bool:
    """Remove the resident's authenticator app; True when there was one."""
    found = _credential(user)
    if found is None:
        return False
    db.session.delete(found)
    db.session.commit()
    return True
