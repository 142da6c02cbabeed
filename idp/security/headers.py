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


def init_app(app: Flask) -> None:
    secure = app.config["IDP_SETTINGS"].secure_cookies

    @app.after_request
    def _headers(response):
        headers = response.headers
        form_action = " ".join(["'self'", *sorted(g.get("form_targets", ()))])
        headers.setdefault(
            "Content-Security-Policy",
            f"default-src 'self'; script-src 'self' 'nonce-{csp_nonce()}'; style-src 'self'; "
            f"img-src 'self' data:; form-action {form_action}; frame-ancestors 'none'; "
            "base-uri 'none'; object-src 'none'",
        )
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
