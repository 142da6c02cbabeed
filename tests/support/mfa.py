"""Helpers for second-factor tests: enrol through the pages, read texted codes, compute TOTP codes."""
from __future__ import annotations

import json
import re
import time
from pathlib import Path

import pyotp

from tests.conftest import csrf_token

CODE_RE = re.compile(r"\b(\d{6})\b")


def form_token(client, path: str) -> str:
    page = client.get(path)
    assert page.status_code == 200, (path, page.status_code)
    return csrf_token(page.get_data(as_text=True))


def post_form(client, path: str, data: dict | None = None, token_from: str | None = None):
    """POST a form with a CSRF token taken from ``token_from`` (default: the path itself)."""
    token = form_token(client, token_from or path)
    return client.post(path, data={"csrf_token": token, **(data or {})})


def texted_codes(app, number: str) -> list[str]:
    """Codes texted to ``number`` through the outbox backend, oldest first."""
    outbox = Path(app.config["IDP_SETTINGS"].sms_outbox_dir)
    if not outbox.exists():
        return []
    found = []
    for path in sorted(outbox.iterdir(), key=lambda p: p.stat().st_mtime_ns):
        message = json.loads(path.read_text())
        if message["to"] == number:
            found += CODE_RE.findall(message["text"])
    return found


def last_texted_code(app, number: str) -> str:
    codes = texted_codes(app, number)
    assert codes, f"no code was texted to {number}"
    return codes[-1]


def clear_texts(app) -> None:
    outbox = Path(app.config["IDP_SETTINGS"].sms_outbox_dir)
    if outbox.exists():
        for path in outbox.iterdir():
            path.unlink()


def secret_from_page(html: str) -> str:
    match = re.search(r'<code class="secret">([A-Z2-7 ]+)</code>', html)
    assert match, "the enrolment page shows no key"
    return match.group(1).replace(" ", "")


def totp_now(secret: str, offset_steps: int = 0) -> str:
    return pyotp.TOTP(secret).at(time.time() + 30 * offset_steps)


def enrol_totp(client) -> tuple[str, list[str]]:
    """Set up an authenticator app through the pages; returns (secret, recovery codes shown)."""
    started = post_form(client, "/account/security/app/start", token_from="/account/security")
    assert started.status_code == 303
    page = client.get("/account/security/app")
    secret = secret_from_page(page.get_data(as_text=True))
    done = client.post("/account/security/app", data={"csrf_token": csrf_token(page.get_data(as_text=True)),
                                                      "code": totp_now(secret)})
    assert done.status_code == 303, done.get_data(as_text=True)[:400]
    shown = client.get(done.headers["Location"]).get_data(as_text=True)
    return secret, re.findall(r"<code>([a-z2-9]{5}(?:-[a-z2-9]{5})+)</code>", shown)
