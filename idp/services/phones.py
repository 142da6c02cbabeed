"""Residents' mobile numbers: added by proving receipt of a text message, kept in E.164, usable
as a sign-in identifier and (when allowed) for SMS codes as a second factor."""
from __future__ import annotations

import phonenumbers
from flask import current_app
from flask_babel import gettext as _
from sqlalchemy.exc import IntegrityError

from idp.delivery.sms import SmsError
from idp.extensions import db
from idp.models import User
from idp.models.types import utcnow
from idp.services import DomainError, Throttled, audit, security_mail, sms_codes

VERIFY = "verify-phone"


def normalise(raw: str) -> str:
    """The number in E.164 (``+27821234567``); national formats use the configured default region."""
    region = current_app.config["IDP_SETTINGS"].phone_default_region
    text = (raw or "").strip()
    if not text or len(text) > 32:
        raise DomainError("invalid_phone", _("Enter a mobile number like 082 123 4567 or +27 82 123 4567."))
    try:
        parsed = phonenumbers.parse(text, region)
    except phonenumbers.NumberParseException:
        parsed = None
    if parsed is None or parsed.extension or not phonenumbers.is_valid_number(parsed):
        raise DomainError("invalid_phone", _("Enter a mobile number like 082 123 4567 or +27 82 123 4567."))
    if phonenumbers.region_code_for_number(parsed) not in current_app.config["IDP_SETTINGS"].sms_regions:
        raise DomainError("invalid_phone", _("Text messages can only go to mobile numbers of this country."))
    kind = phonenumbers.number_type(parsed)
    if kind not in (phonenumbers.PhoneNumberType.MOBILE, phonenumbers.PhoneNumberType.FIXED_LINE_OR_MOBILE):
        raise DomainError("invalid_phone", _("That is not a mobile number: text messages cannot reach it."))
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)


def display(number: str | None) -> str:
    """A number as people write it (international format), or ''."""
    if not number:
        return ""
    return phonenumbers.format_number(phonenumbers.parse(number), phonenumbers.PhoneNumberFormat.INTERNATIONAL)


def find_by_phone(raw: str) -> User | None:
    """The resident whose verified number this is, if any."""
    try:
        number = normalise(raw)
    except DomainError:
        return None
    return db.session.scalar(db.select(User).where(User.phone_number == number))


def start_verification(user: User, raw: str, *, ip: str = "") -> str:
    """Text a verification code to a new number; returns it in E.164."""
    number = normalise(raw)
    if number == user.phone_number:
        raise DomainError("same_phone", _("That is already your verified number."))
    sms_codes.send(VERIFY, user.id, number, ip=ip)
    audit.record("phone.code_sent", user_id=user.id, ip_address=ip)
    return number


def pending(user: User) -> str | None:
    """The number awaiting its code, if any."""
    return sms_codes.pending_number(VERIFY, user.id)


def confirm(user: User, code: str, *, ip: str = "") -> str:
    """Check the code and make the number the resident's verified number."""
    number = sms_codes.check(VERIFY, user.id, code)
    previous = user.phone_number
    user.phone_number = number
    user.phone_verified_at = utcnow()
    try:
        db.session.commit()
    except IntegrityError:
        db.session.rollback()
        audit.record("phone.verified", outcome="failure", user_id=user.id, ip_address=ip, reason="taken")
        raise DomainError("phone_taken", _("That number is already linked to another account. "
                                           "Contact the city's help desk if it is yours.")) from None
    audit.record("phone.verified", user_id=user.id, ip_address=ip, replaced=bool(previous))
    security_mail.send(user, "phone_changed", ip=ip)
    if previous and previous != number:
        _tell_old_number(user, previous)
    return number


def _tell_old_number(user: User, previous: str) -> None:
    """Text the number that was replaced (its owner may not be the one who replaced it)."""
    try:
        sms_codes.spend_budget()
        current_app.extensions["idp.sms"].send(previous, _(
            "The mobile number of your eCitizen Passport account was changed. If this was not you, "
            "contact the city's help desk."))
    except (SmsError, Throttled):
        audit.record("sms.delivery_failed", outcome="failure", user_id=user.id, purpose="phone_changed")


def remove(user: User, *, ip: str = "") -> None:
    """Forget the resident's number (and SMS as a second factor with it)."""
    if not user.phone_number:
        return
    user.phone_number = None
    user.phone_verified_at = None
    user.sms_second_factor = False
    db.session.commit()
    audit.record("phone.removed", user_id=user.id, ip_address=ip)
    security_mail.send(user, "phone_removed", ip=ip)
