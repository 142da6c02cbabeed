"""Security notices by email: each says what happened and carries a one-tap "this wasn't me" link
(see :mod:`idp.services.compromise`). A resident with a verified mobile number also gets a short
text message, so a notice reaches them even when the mailbox is the thing taken over."""
from __future__ import annotations

import logging

from flask import current_app
from flask_babel import gettext as _

from idp.delivery.sms import SmsError
from idp.models import User
from idp.models.types import utcnow
from idp.services import Throttled, audit
from idp.services import action_tokens as links

log = logging.getLogger(__name__)


def _what(event: str, detail: str) -> tuple[str, str]:
    """(subject, sentence) for an event."""
    texts = {
        "factor_added": (_("A sign-in method was added to your account"),
                         _("A sign-in method was added to your eCitizen Passport account: %(d)s.", d=detail)),
        "factor_removed": (_("A sign-in method was removed from your account"),
                           _("A sign-in method was removed from your eCitizen Passport account: %(d)s.", d=detail)),
        "recovery_code_used": (_("A recovery code was used"),
                               _("One of your recovery codes was used to sign in. %(d)s", d=detail)),
        "recovery_codes_regenerated": (_("New recovery codes were made"),
                                       _("New recovery codes were made for your account; the old ones no longer work.")),
        "phone_changed": (_("Your mobile number was changed"),
                          _("A new mobile number was verified for your eCitizen Passport account.")),
        "phone_removed": (_("Your mobile number was removed"),
                          _("The mobile number was removed from your eCitizen Passport account.")),
        "account_linked": (_("A municipal account was linked to your account"),
                           _("Municipal account %(d)s was linked to your eCitizen Passport account.", d=detail)),
        "account_unlinked": (_("A municipal account was unlinked from your account"),
                             _("Municipal account %(d)s was unlinked from your eCitizen Passport account.", d=detail)),
        "new_device": (_("New sign-in to your account"),
                       _("Your eCitizen Passport account was signed in to from a browser we have not seen before: %(d)s.",
                         d=detail)),
    }
    return texts[event]


def send(user: User, event: str, *, ip: str = "", detail: str = "", factor: dict | None = None) -> None:
    """Email the resident about ``event``; ``factor`` ({"kind", "id"}) names a factor that the
    "this wasn't me" link should remove. The message is queued (see mail_queue)."""
    subject, sentence = _what(event, detail)
    raw = links.issue(user.id, links.NOT_ME, data={"event": event, "factor": factor or {}})
    when = utcnow().strftime("%Y-%m-%d %H:%M UTC")
    links.notify(user.email, subject, "security_notice", link=links.absolute_link(f"/not-me/{raw}"),
                        name=user.name, sentence=sentence, when=when, ip=ip)
    text(user, sentence)


def text(user: User, sentence: str) -> None:
    """Text ``sentence`` to the resident's verified mobile number, if any, with what to do if it
    was not them. Counted against the city's daily text budget; a failure is audited, never raised
    (the email carries the same notice)."""
    if not (user.phone_number and user.phone_verified_at):
        return
    from idp.services import sms_codes

    message = _("eCitizen Passport: %(sentence)s If this was not you, contact the city's help desk.", sentence=sentence)
    try:
        sms_codes.spend_budget()
        current_app.extensions["idp.sms"].send(user.phone_number, message)
    except (SmsError, Throttled):
        log.warning("security notice not texted")
        audit.record("sms.delivery_failed", outcome="failure", user_id=user.id, purpose="security_notice")
