"""Security headers on every response, with a per-request CSP nonce."""
from __future__ import annotations

import secrets

from flask import Flask, g, request


def csp_nonce() -> str:
    """The nonce for this response's inline ``<script nonce=…>`` (none are needed so far)."""
    if "csp_nonce" not in g:
        g.csp_nonce = secrets.token_urlsafe(16)
    return g.csp_nonce


def allow_form_target(origin: str) -> None:
    """Let this page's forms end in a redirect to ``origin`` (a client's registered
    redirect URI after sign-in or consent); Chromium applies ``form-action`` to redirects."""
    g.setdefault("form_targets", set()).add(origin)


def allow_return_to(next_url: str | None) -> None:
    """A sign-in step whose form ends, after redirects, back at an authorization request: let the
    form reach that request's registered redirect URI (the client's origin), and nothing else."""
    from urllib.parse import urlsplit

    from idp.services.clients import from_authorize_url

    found = from_authorize_url(next_url)
    if found is not None:
        target = urlsplit(found[1])
        allow_form_target(f"{target.scheme}://{target.netloc}")


REPORT_PATH = "/csp-report"
REPORT_MAX_BYTES = 16 * 1024
REPORTS_PER_HOUR = 100  # per client address
_REPORT_FIELDS = ("effective-directive", "effectiveDirective", "violated-directive", "blocked-uri", "blockedURL",
                  "document-uri", "documentURL", "disposition")


def _where(value: object) -> str:
    """A URL from a report as logs may show it: scheme, host and path only (no query, fragment or
    user information), at most 200 characters of printable ASCII."""
    from urllib.parse import urlsplit

    text = str(value)[:2000]
    try:
        parts = urlsplit(text)
        text = f"{parts.scheme}://{parts.hostname or ''}{parts.path}" if parts.scheme and parts.netloc else text
    except ValueError:
        text = "?"
    return "".join(ch for ch in text.split("?", 1)[0].split("#", 1)[0] if 32 < ord(ch) < 127)[:200]


def csp_report():
    """Browsers' reports of content the policy blocked (``report-uri`` and the Reporting API):
    logged in short, sanitised form for the operators; 204. Bodies over 16 KB are 413; past
    ``REPORTS_PER_HOUR`` requests from one address, 429 (nothing logged), so nobody can flood the log."""
    import json
    import logging

    from idp.services import throttle
    from idp.web import current

    if throttle.add_failure("csp-report", current.client_ip(), 3600) > REPORTS_PER_HOUR:
        return "", 429, {"Retry-After": "3600"}
    if (request.content_length or 0) > REPORT_MAX_BYTES:
        return "", 413
    raw = request.get_data(cache=False)[:REPORT_MAX_BYTES + 1]
    if len(raw) > REPORT_MAX_BYTES:
        return "", 413
    try:
        body = json.loads(raw or b"null")
    except (ValueError, RecursionError):
        return "", 400
    reports = body if isinstance(body, list) else [body]
    log = logging.getLogger("idp.csp")
    for report in reports[:10]:
        if not isinstance(report, dict):
            continue
        details = report.get("csp-report") or report.get("body") or {}
        if not isinstance(details, dict):
            continue
        fields = {key: _where(details[key]) for key in _REPORT_FIELDS if key in details}
        log.warning("csp violation %s", " ".join(f"{k}={v}" for k, v in sorted(fields.items())))
    return "", 204


def init_app(app: Flask) -> None:
    secure = app.config["IDP_SETTINGS"].secure_cookies
    report_url = app.config["IDP_SETTINGS"].issuer + REPORT_PATH
    from idp.extensions import csrf

    app.add_url_rule(REPORT_PATH, "csp_report", csrf.exempt(csp_report), methods=["POST"])

    @app.after_request
    def _headers(response):
        headers = response.headers
        form_action = " ".join(["'self'", *sorted(g.get("form_targets", ()))])
        headers.setdefault(
            "Content-Security-Policy",
            f"default-src 'self'; script-src 'self' 'nonce-{csp_nonce()}'; style-src 'self'; "
            f"img-src 'self' data:; form-action {form_action}; frame-ancestors 'none'; "
            f"base-uri 'none'; object-src 'none'; report-uri {REPORT_PATH}; report-to csp",
        )
        headers.setdefault("Reporting-Endpoints", f'csp="{report_url}"')
        headers.setdefault("X-Frame-Options", "DENY")
        headers.setdefault("X-Content-Type-Options", "nosniff")
        headers.setdefault("Referrer-Policy", "no-referrer")
        headers.setdefault("Cross-Origin-Opener-Policy", "same-origin")
        headers.setdefault("Permissions-Policy", "camera=(), microphone=(), geolocation=(), payment=()")
        if secure:
            headers.setdefault("Strict-Transport-Security", "max-age=31536000; includeSubDomains")
        if not request.path.startswith("/static/") and "Cache-Control" not in headers:
            headers["Cache-Control"] = "no-store"
            headers["Pragma"] = "no-cache"
        return response

    app.jinja_env.globals["csp_nonce"] = csp_nonce
