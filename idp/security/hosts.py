"""Requests must name this deployment's host (the issuer's, or one in ``IDP_ALLOWED_HOSTS``): a
forged ``Host`` or trusted ``X-Forwarded-Host`` gets 400 before any view runs, so nothing can be
built from it (links in mail always use the issuer anyway). Liveness, readiness and metrics answer
on any host name, for probes that address the pod or container directly."""
from __future__ import annotations

from urllib.parse import urlsplit

from flask import Flask, abort, request

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
    for entry in settings.allowed_hosts:
        allowed_name, allowed_port = _split(entry, scheme)
        if name == allowed_name and (":" not in entry.rsplit("]", 1)[-1] or port == allowed_port):
            return True
    return False


def init_app(app: Flask) -> None:
    settings: Settings = app.config["IDP_SETTINGS"]

    def _check_host():
        if request.path not in ANY_HOST_PATHS and not host_allowed(settings, request.host, request.scheme):
            abort(400)

    # First of all hooks: before CSRF checks, session loading or anything that could use the host.
    app.before_request_funcs.setdefault(None, []).insert(0, _check_host)
