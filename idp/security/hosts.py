"""Requests must name this deployment's host (the issuer's, ``IDP_ADMIN_HOST`` or one in
``IDP_ALLOWED_HOSTS``): a forged ``Host`` or trusted ``X-Forwarded-Host`` gets 400 before any view
runs, so nothing can be built from it (links in mail always use the issuer anyway). Liveness,
readiness and metrics answer on any host name, for probes that address the pod or container directly.

With ``IDP_ADMIN_HOST`` the staff console has an origin of its own (checklist 74): /admin answers
404 on every other host, and the admin host serves only the console and what signing in to it
needs, so no resident page shares the console's origin, cookies or scripts."""
from __future__ import annotations

from urllib.parse import urlsplit

from flask import Flask, abort, redirect, request

from idp.config import Settings

ANY_HOST_PATHS = frozenset({"/healthz", "/readyz", "/metrics"})
LOOPBACK = frozenset({"localhost", "127.0.0.1", "::1"})
_DEFAULT_PORTS = {"http": 80, "https": 443}


def _split(netloc: str, scheme: str) -> tuple[str, int | None]:
    parts = urlsplit(f"{scheme}://{netloc}")
    try:
        port = parts.port
    except ValueError:
        return "", None
    return (parts.hostname or "").lower(), port or _DEFAULT_PORTS.get(scheme)


def host_allowed(settings: Settings, host: str, scheme: str) -> bool:
    """True when ``host`` (a Host header value) names this deployment: the issuer's host and port
    (on a machine whose issuer is a loopback name, any loopback name with that port), or an
    ``IDP_ALLOWED_HOSTS`` entry (a name alone allows any port)."""
    name, port = _split(host, scheme)
    if not name:
        return False
    issuer = urlsplit(settings.issuer)
    issuer_name, issuer_port = _split(issuer.netloc, issuer.scheme)
    if port == issuer_port and (name == issuer_name or {name, issuer_name} <= LOOPBACK):
        return True
    for entry in (*settings.allowed_hosts, *((settings.admin_host,) if settings.admin_host else ())):
        allowed_name, allowed_port = _split(entry, scheme)
        if name == allowed_name and (":" not in entry.rsplit("]", 1)[-1] or port == allowed_port):
            return True
    return False


# What the admin host serves besides the console: signing in and out, second factors and step-up
# (the whole mfa blueprint, so staff can also add a passkey there), the language switch, assets.
ADMIN_HOST_BLUEPRINTS = frozenset({"admin", "mfa", "ops"})
ADMIN_HOST_ENDPOINTS = frozenset({"static", "csp_report", "auth.login", "auth.logout", "auth.signed_out",
                                  "auth.language"})


def is_admin_host(settings: Settings, host: str, scheme: str) -> bool:
    """True when ``host`` is ``IDP_ADMIN_HOST`` (a name alone matches any port)."""
    if not settings.admin_host:
        return False
    name, port = _split(host, scheme)
    admin_name, admin_port = _split(settings.admin_host, scheme)
    return name == admin_name and (":" not in settings.admin_host or port == admin_port)


def _served_on_admin_host(endpoint: str) -> bool:
    return endpoint in ADMIN_HOST_ENDPOINTS or endpoint.split(".", 1)[0] in ADMIN_HOST_BLUEPRINTS


def init_app(app: Flask) -> None:
    settings: Settings = app.config["IDP_SETTINGS"]

    def _check_host():
        if request.path not in ANY_HOST_PATHS and not host_allowed(settings, request.host, request.scheme):
            abort(400)

    def _separate_console():
        if not settings.admin_host:
            return None
        endpoint = request.endpoint or ""
        on_admin_host = is_admin_host(settings, request.host, request.scheme)
        if endpoint.startswith("admin."):
            if not on_admin_host:
                abort(404)
        elif on_admin_host and not _served_on_admin_host(endpoint):
            if request.method in ("GET", "HEAD") and endpoint and not endpoint.startswith("oidc."):
                return redirect("/admin/", code=303)  # a resident page (home, account): to the console
            abort(404)
        return None

    # First of all hooks: before CSRF checks, session loading or anything that could use the host.
    hooks = app.before_request_funcs.setdefault(None, [])
    hooks.insert(0, _separate_console)
    hooks.insert(0, _check_host)
