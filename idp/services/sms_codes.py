"""Six-digit codes sent by text message: to verify a phone number, or as a second factor.

A code lasts 10 minutes and works once. Wrong guesses are counted per resident and number for an
hour, and a resend does not reset that count. Sends are limited per number and per client address
(SMS-pumping fraud costs the city money). Nothing but digests is kept, in the shared store.
"""
from __future__ import annotations

import json
import logging
import secrets
import time

from flask import current_app
from flask_babel import gettext as _

from idp.delivery.sms import SmsError
from idp.security.crypto import keyed_digest
from idp.services import DomainError, Throttled, audit, throttle

log = logging.getLogger("idp.sms")

CODE_TTL = 600
MAX_TRIES = 5
TRIES_WINDOW = 3600
SEND_WINDOW = 3600
DAY = 86400


def _settings():
    return current_app.config["IDP_SETTINGS"]


def _store():
    return current_app.extensions["idp.store"]


def _state_key(purpose: str, user_id: int) -> str:
    return f"sms-code:{purpose}:{user_id}"


def _tries_subject(purpose: str, user_id: int, number: str) -> str:
    return f"{purpose}:{user_id}:{number}"


def _message(code: str) -> str:
    return _("%(code)s is your eCitizen Passport code. It expires in 10 minutes. "
             "Never share it: city staff will never ask for it.", code=code)


def send(purpose: str, user_id: int, number: str, *, ip: str = "", binding: str = "") -> None:
    """Text a new code to ``number``; an earlier code for the same purpose stops working. The code
    works only with the same ``binding`` (an id of the sign-in it was sent for, say).

    Raises Throttled when the number, the account, the client address or the city's daily budget
    has used up its sends, or when the wrong-code limit was reached; DomainError('sms_failed')
    when the gateway did not take it."""
    settings = _settings()
    if throttle.failures("sms-tries", _tries_subject(purpose, user_id, number)) >= MAX_TRIES:
        raise Throttled("too_many_tries", _("Too many wrong codes. Try again in an hour."), retry_after=TRIES_WINDOW)
    if throttle.add_failure("sms-number", number, SEND_WINDOW) > settings.sms_max_per_number:
        raise Throttled("sms_limit", _("Too many codes were sent to this number. Try again in an hour."),
                        retry_after=SEND_WINDOW)
    if throttle.add_failure("sms-account", str(user_id), SEND_WINDOW) > settings.sms_max_per_account:
        raise Throttled("sms_limit", _("Too many codes were sent to this number. Try again in an hour."),
                        retry_after=SEND_WINDOW)
    if ip and throttle.add_failure("sms-ip", ip, SEND_WINDOW) > settings.sms_max_per_ip:
        raise Throttled("sms_limit", _("Too many codes were requested from your network. Try again in an hour."),
                        retry_after=SEND_WINDOW)
    spend_budget()
    code = f"{secrets.randbelow(10**6):06d}"
    state = {"number": number, "digest": keyed_digest(code, f"sms-code:{purpose}"), "expires": time.time() + CODE_TTL,
             "binding": keyed_digest(binding, f"sms-binding:{purpose}")}
    try:
        current_app.extensions["idp.sms"].send(number, _message(code))
    except SmsError:
        log.warning("sms code not sent (purpose=%s)", purpose)
        # Staff see gateway trouble in the audit log; the resident asks for a new code (codes expire,
        # so a queued retry would arrive too late to help).
        audit.record("sms.delivery_failed", outcome="failure", user_id=user_id, ip_address=ip or None,
                     purpose=purpose, backend=settings.sms_backend)
        raise DomainError("sms_failed", _("We could not send the text message just now. "
                                          "Wait a minute and ask for a new code.")) from None
    _store().set(_state_key(purpose, user_id), json.dumps(state), CODE_TTL)


def spend_budget() -> None:
    """Count one text message against the city's daily budget (``IDP_SMS_DAILY_BUDGET``, a
    fixed UTC day): raises Throttled when it is spent; staff are alerted (audit event and a
    warning in the log) when half of it is gone, a sign of SMS-pumping fraud."""
    budget = _settings().sms_daily_budget
    day = int(time.time()) // DAY
    spent = throttle.add_failure("sms-day", str(day), DAY)
    if spent == max(1, budget // 2):
        log.warning("half of the daily text message budget is spent (%d of %d)", spent, budget)
        audit.record("sms.budget_half_spent", outcome="failure", spent=spent, budget=budget)
    if spent > budget:
        raise Throttled("sms_budget", _("Text messages are not available right now. Try again later, "
                                        "or use another method."), retry_after=DAY - int(time.time()) % DAY)


def pending_number(purpose: str, user_id: int) -> str | None:
    """The number the live code was sent to, if any."""
    raw = _store().get(_state_key(purpose, user_id))
    return json.loads(raw)["number"] if raw else None


def check(purpose: str, user_id: int, code: str, *, binding: str = "") -> str:
    """Use the code (sent with the same ``binding``); returns the number it was sent to.

    Raises DomainError 'no_code' (none sent, or expired), Throttled 'too_many_tries', or
    DomainError 'wrong_code'."""
    raw = _store().get(_state_key(purpose, user_id))
    if not raw:
        raise DomainError("no_code", _("That code has expired. Ask for a new one."))
    state = json.loads(raw)
    subject = _tries_subject(purpose, user_id, state["number"])
    # Count the try before comparing (atomic INCR), so parallel guesses cannot exceed the limit.
    tries = throttle.add_failure("sms-tries", subject, TRIES_WINDOW)
    if tries > MAX_TRIES:
        _store().delete(_state_key(purpose, user_id))
        raise Throttled("too_many_tries", _("Too many wrong codes. Try again in an hour."))
    cleaned = "".join(ch for ch in (code or "") if not ch.isspace())
    bound = secrets.compare_digest(state.get("binding", ""), keyed_digest(binding, f"sms-binding:{purpose}"))
    if state["expires"] < time.time() or not bound:
        raise DomainError("no_code", _("That code has expired. Ask for a new one."))
    if not (cleaned.isdigit() and len(cleaned) == 6
            and secrets.compare_digest(keyed_digest(cleaned, f"sms-code:{purpose}"), state["digest"])):
        if tries == MAX_TRIES:
            _store().delete(_state_key(purpose, user_id))
            raise Throttled("too_many_tries", _("Too many wrong codes. Try again in an hour."))
        raise DomainError("wrong_code", _("That code is not right. Check the text message and try again."))
    if _store().pop(_state_key(purpose, user_id)) is None:  # another request used it first
        raise DomainError("no_code", _("That code has expired. Ask for a new one."))
    throttle.reset("sms-tries", subject)
    return state["number"]
