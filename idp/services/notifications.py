"""How the resident wants the city's messages: a channel (email, SMS or none) per topic, set once
at eCitizen Passport and released to departments as the ``notification_preferences`` claim, so
every department respects one choice. Security notices always go out and are not a topic here."""
from __future__ import annotations

from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l

from idp.extensions import db
from idp.models import User
from idp.services import DomainError, audit

TOPICS = {
    "bills_due": _l("Bills that are due"),
    "service_interruptions": _l("Water and electricity interruptions in my area"),
    "application_updates": _l("Updates on my applications and reports"),
    "city_news": _l("City news"),
}
CHANNELS = {"email": _l("Email"), "sms": _l("Text message"), "none": _l("No messages")}
DEFAULTS = {"bills_due": "email", "service_interruptions": "email", "application_updates": "email",
            "city_news": "none"}


def preferences(user: User) -> dict[str, str]:
    """Every topic with the resident's channel (the default where they chose none)."""
    saved = user.notification_preferences or {}
    return {topic: saved.get(topic, DEFAULTS[topic]) for topic in TOPICS}


def save(user: User, chosen: dict[str, str], *, ip: str = "") -> dict[str, str]:
    """Store the resident's choice for every topic; text messages need a verified mobile number.
    Nothing is stored unless every value is valid. Returns what changed as {topic: [before, after]}."""
    if set(chosen) != set(TOPICS) or any(channel not in CHANNELS for channel in chosen.values()):
        raise DomainError("invalid_preferences", _("Choose email, text message or no messages for every topic."))
    if "sms" in chosen.values() and not user.phone_number_verified:
        raise DomainError("phone_needed", _("To get text messages, first add and verify your mobile number "
                                            "under Sign-in and security."))
    before = preferences(user)
    user.notification_preferences = dict(chosen)
    changed = {topic: [before[topic], chosen[topic]] for topic in TOPICS if before[topic] != chosen[topic]}
    if changed:
        audit.record("notifications.changed", user_id=user.id, ip_address=ip, commit=False,
                     topics=sorted(changed))
    db.session.commit()
    return changed


def claim(user: User) -> dict:
    """The ``notification_preferences`` claim (JSON Schema: schemas/notification-preferences-claim.schema.json)."""
    result = preferences(user)
    if not user.phone_number_verified:  # a number removed later: nothing can be texted
        result = {topic: "email" if channel == "sms" else channel for topic, channel in result.items()}
    return {**result, "security_notices": "always"}
