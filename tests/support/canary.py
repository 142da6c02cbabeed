"""The canary run (checklist 104, issue 9): while the whole suite runs, every secret that crosses an
application built by the test fixtures is remembered (passwords and codes residents type, client
secrets and bearer tokens sent, tokens, codes, session ids and client secrets handed out; account
and phone numbers typed, which pages may show back but no log line may hold), every
answer is checked not to echo a secret its own request carried, and every log line of the test
process is scanned for any remembered secret at the end. Any hit fails the run."""
from __future__ import annotations

import base64
import io
import json
import logging
import re
from urllib.parse import parse_qs, urlsplit

# Form fields whose values are secrets (what residents type, what clients present).
SECRET_FIELDS = frozenset({
    "password", "current_password", "new_password", "confirm", "code", "recovery_code", "client_secret",
    "code_verifier", "refresh_token", "id_number", "proof", "token",
})
# Form fields whose values are personal: never in a log line, though pages may show them back.
PERSONAL_FIELDS = frozenset({"account_number", "phone", "id_number"})
# Members of JSON answers and Set-Cookie names that hand out secrets.
SECRET_ANSWERS = frozenset({"access_token", "refresh_token", "client_secret", "device_code"})
SESSION_COOKIES = re.compile(r"^(__Host-)?idp_(session|device)[^=]*=([^;]+)")
WORDS = re.compile(r"[A-Za-z0-9_\-~.+/=]{6,}")
SHORTEST = 6


class Canary(logging.Handler):
    """Remembers secrets and log lines; ``leaks()`` lists what a log line gave away."""

    def __init__(self):
        super().__init__(level=logging.DEBUG)
        self.secrets: set[str] = set()
        self.phrases: set[str] = set()  # secrets with spaces (passphrases): matched as substrings
        self.lines: list[str] = []
        self.echoes: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        try:
            line = record.getMessage()
        except Exception:  # a broken log call is not this check's business
            return
        if record.exc_info and record.exc_info[1] is not None:
            line += " " + repr(record.exc_info[1])
        self.lines.append(line)

    def remember(self, value) -> None:
        if isinstance(value, str) and len(value) >= SHORTEST:
            (self.phrases if " " in value.strip() else self.secrets).add(value.strip())

    def leaks(self) -> list[str]:
        """Log lines that contain a remembered secret (each line once, shortened)."""
        found = []
        for line in self.lines:
            if any(word in self.secrets for word in WORDS.findall(line)) or any(p in line for p in self.phrases):
                found.append(line[:300])
        return found

    # --- the application side ------------------------------------------------------------------
    def wrap(self, app) -> None:
        """Watch every request ``app`` answers."""
        inner = app.wsgi_app

        def watched(environ, start_response):
            body = environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0) or -1) \
                if environ.get("REQUEST_METHOD") in ("POST", "PUT", "PATCH") else b""
            environ["wsgi.input"] = io.BytesIO(body)
            sent = self._sent_secrets(environ, body)
            captured = {}

            def capture(status, headers, exc_info=None):
                captured["headers"] = headers
                return start_response(status, headers, exc_info)

            chunks = list(inner(environ, capture))
            self._check_answer(environ, sent, captured.get("headers", []), b"".join(chunks))
            return chunks

        app.wsgi_app = watched

    def _sent_secrets(self, environ, body: bytes) -> list[str]:
        sent = []
        fields = parse_qs(environ.get("QUERY_STRING", ""))
        if environ.get("CONTENT_TYPE", "").startswith("application/x-www-form-urlencoded"):
            fields.update(parse_qs(body.decode("utf-8", "replace")))
        for name, values in fields.items():
            if name in SECRET_FIELDS:
                sent += values
        auth = environ.get("HTTP_AUTHORIZATION", "")
        if auth.startswith("Bearer "):
            sent.append(auth[7:])
        elif auth.startswith("Basic "):
            try:
                sent.append(base64.b64decode(auth[6:]).decode().partition(":")[2])
            except ValueError:
                pass
        for value in sent + [value for name in PERSONAL_FIELDS for value in fields.get(name, [])]:
            self.remember(value)
        # A "password" that is the same text as the address typed beside it may be shown as the address.
        public = {value for name, values in fields.items() if name not in SECRET_FIELDS for value in values}
        return [value for value in sent if isinstance(value, str) and len(value.strip()) >= SHORTEST
                and value not in public]

    def _check_answer(self, environ, sent: list[str], headers, body: bytes) -> None:
        text = body.decode("utf-8", "replace")
        header_text = "\n".join(f"{k}: {v}" for k, v in headers if k.lower() != "set-cookie")
        for value in sent:
            pattern = re.compile(r"(?<![A-Za-z0-9_\-])" + re.escape(value.strip()) + r"(?![A-Za-z0-9_\-])")
            if pattern.search(text) or pattern.search(header_text):
                self.echoes.append(f"{environ.get('REQUEST_METHOD')} {environ.get('PATH_INFO')} echoed a secret it was sent"
                                   f" ({len(value)} characters, starting {value[:2]!r})")
        for name, value in headers:
            if name.lower() == "set-cookie" and (match := SESSION_COOKIES.match(value)):
                self.remember(match.group(3))
            if name.lower() == "location":
                for key in ("code", "refresh_token", "access_token"):
                    for found in parse_qs(urlsplit(value).query).get(key, []):
                        self.remember(found)
        if text.lstrip().startswith("{"):
            try:
                answer = json.loads(text)
            except ValueError:
                return
            if isinstance(answer, dict):
                for key in SECRET_ANSWERS & answer.keys():
                    self.remember(answer[key])


CANARY = Canary()
