"""Sending text messages (one-time codes) through the backend ``IDP_SMS_BACKEND`` names.

* ``outbox`` (default; development and demo): one JSON file per message in ``IDP_SMS_OUTBOX_DIR``
  (default ``<instance>/sms-outbox``) and a console line.
* ``http``: a JSON ``POST {"to": "+27…", "text": "…"}`` to ``IDP_SMS_HTTP_URL``, with
  ``Authorization: <IDP_SMS_HTTP_AUTH_HEADER>`` when that is set; any 2xx answer means sent.
* ``clickatell``: Clickatell's One API (``IDP_SMS_CLICKATELL_URL``, default
  ``https://platform.clickatell.com/v1/message``) with the integration key ``IDP_SMS_CLICKATELL_API_KEY``.

``IDP_SMS_TIMEOUT`` (seconds) bounds every gateway call. A gateway that is down, slow or refuses
the message raises :class:`SmsError`. A gateway that failed ``BREAKER_FAILURES`` sends in a row is
not called again for ``BREAKER_COOLDOWN`` seconds (a circuit breaker, per process): sends fail at once
instead of tying up a worker for the timeout each. Logs name the backend, the HTTP status and at most the last
three digits of the number: never the key, the message text or the full number.
"""
from __future__ import annotations

import json
import logging
import threading
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

import requests

log = logging.getLogger("idp.sms")

BREAKER_FAILURES = 3
BREAKER_COOLDOWN = 30.0


class SmsError(Exception):
    """The gateway did not take the message (its text is safe to show)."""


def _tail(number: str) -> str:
    """The last three digits of a number, for logs."""
    return "…" + number[-3:]


def _post(backend: str, url: str, headers: dict[str, str], body: dict, timeout: float, to: str):
    """POST ``body`` as JSON; a response of any status, or :class:`SmsError` when there is none."""
    try:
        return requests.post(url, json=body, headers=headers, timeout=timeout, allow_redirects=False)
    except requests.Timeout as exc:
        log.warning("sms via %s to %s failed: the gateway timed out", backend, _tail(to))
        raise SmsError("the SMS gateway did not answer in time") from exc
    except requests.RequestException as exc:
        log.warning("sms via %s to %s failed: %s", backend, _tail(to), type(exc).__name__)
        raise SmsError("the SMS gateway could not be reached") from exc


class OutboxSms:
    """Writes each message to ``outbox_dir`` as JSON and prints it (development and demo)."""

    def __init__(self, outbox_dir: str):
        self.outbox = Path(outbox_dir)

    def send(self, to: str, text: str) -> None:
        self.outbox.mkdir(parents=True, exist_ok=True)
        path = self.outbox / f"{time.strftime('%Y%m%d-%H%M%S')}-{uuid.uuid4().hex[:8]}.json"
        record = {"to": to, "text": text, "sent_at": datetime.now(UTC).isoformat()}
        path.write_text(json.dumps(record, ensure_ascii=False), encoding="utf-8")
        print(f"[sms outbox] to {to}: {text} ({path})", flush=True)


class _Gateway:
    """A remote gateway behind a circuit breaker: after ``BREAKER_FAILURES`` failed sends in a row,
    further sends fail at once with :class:`SmsError` for ``BREAKER_COOLDOWN`` seconds; then one
    send is tried again. Subclasses implement ``_send``."""

    backend = "gateway"

    def _breaker_init(self) -> None:
        self._lock = threading.Lock()
        self._failed = 0
        self._open_until = 0.0

    @property
    def circuit_open(self) -> bool:
        """Whether sends are being refused without calling the gateway."""
        return time.monotonic() < self._open_until

    def send(self, to: str, text: str) -> None:
        """Send through the gateway unless the breaker is open; :class:`SmsError` when not sent."""
        if self.circuit_open:
            log.warning("sms via %s to %s not tried: the gateway failed repeatedly", self.backend, _tail(to))
            raise SmsError("the SMS gateway is not available right now")
        try:
            self._send(to, text)
        except SmsError:
            with self._lock:
                self._failed += 1
                if self._failed >= BREAKER_FAILURES:
                    self._open_until = time.monotonic() + BREAKER_COOLDOWN
            raise
        with self._lock:
            self._failed, self._open_until = 0, 0.0

    def _send(self, to: str, text: str) -> None:
        raise NotImplementedError


class HttpSms(_Gateway):
    """POSTs ``{"to", "text"}`` as JSON to a generic gateway; any 2xx answer means sent."""

    backend = "http"

    def __init__(self, url: str, auth_header: str | None, timeout: float):
        self.url, self.auth_header, self.timeout = url, auth_header, timeout
        self._breaker_init()

    def _send(self, to: str, text: str) -> None:
        headers = {"Content-Type": "application/json", "Accept": "application/json"}
        if self.auth_header:
            headers["Authorization"] = self.auth_header
        response = _post(self.backend, self.url, headers, {"to": to, "text": text}, self.timeout, to)
        if not 200 <= response.status_code < 300:
            log.warning("sms via http to %s failed: HTTP %s", _tail(to), response.status_code)
            raise SmsError(f"the SMS gateway refused the message (HTTP {response.status_code})")
        log.info("sms via http to %s sent: HTTP %s", _tail(to), response.status_code)


class ClickatellSms(_Gateway):
    """Clickatell One API: ``POST {"messages": [{"channel": "sms", "to": "2782…", "content": …}]}``
    with the raw integration key as ``Authorization``; 202 with ``messages[0].accepted`` true means sent."""

    backend = "clickatell"

    def __init__(self, api_key: str, url: str, timeout: float):
        self.api_key, self.url, self.timeout = api_key, url, timeout
        self._breaker_init()

    def _send(self, to: str, text: str) -> None:
        headers = {"Authorization": self.api_key, "Content-Type": "application/json", "Accept": "application/json"}
        body = {"messages": [{"channel": "sms", "to": to.lstrip("+"), "content": text}]}
        response = _post(self.backend, self.url, headers, body, self.timeout, to)
        try:
            answer = response.json()
        except ValueError:
            answer = None
        status = response.status_code
        if not 200 <= status < 300:
            log.warning("sms via clickatell to %s failed: HTTP %s, error code %s",
                        _tail(to), status, _error_code(answer))
            raise SmsError(f"the SMS gateway refused the message (HTTP {status})")
        if not isinstance(answer, dict):
            log.warning("sms via clickatell to %s: HTTP %s without a JSON answer", _tail(to), status)
            raise SmsError("the SMS gateway gave an unexpected answer")
        messages = answer.get("messages")
        result = messages[0] if isinstance(messages, list) and messages and isinstance(messages[0], dict) else {}
        if answer.get("error") or result.get("accepted") is not True or result.get("error"):
            code = _error_code(answer) or _error_code(result)
            log.warning("sms via clickatell to %s not accepted: HTTP %s, error code %s", _tail(to), status, code)
            raise SmsError("the SMS gateway did not accept the message")
        log.info("sms via clickatell to %s accepted: HTTP %s", _tail(to), status)


def _error_code(answer) -> object:
    """Clickatell's numeric error code (``error.code``) in an answer, if any; never its free text."""
    error = answer.get("error") if isinstance(answer, dict) else None
    code = error.get("code") if isinstance(error, dict) else None
    return code if isinstance(code, int) else None


def make_sms_sender(settings):
    """The SMS sender ``settings.sms_backend`` asks for."""
    if settings.sms_backend == "http":
        return HttpSms(settings.sms_http_url, settings.sms_http_auth_header, settings.sms_timeout)
    if settings.sms_backend == "clickatell":
        return ClickatellSms(settings.sms_clickatell_api_key, settings.sms_clickatell_url, settings.sms_timeout)
    if settings.sms_backend == "outbox":
        return OutboxSms(settings.sms_outbox_dir)
    raise ValueError(f"unknown SMS backend {settings.sms_backend!r}")
