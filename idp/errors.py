"""Error pages and JSON errors without stack traces; unavailable backends answer 503."""
from __future__ import annotations

import logging

from authlib.integrations.flask_oauth2.errors import _HTTPException as ProtocolError
from flask import Flask, g, jsonify, render_template, request
from flask_babel import gettext as _
from flask_wtf.csrf import CSRFError
from sqlalchemy.exc import OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from werkzeug.exceptions import HTTPException

from idp import load_guard
from idp.services import DomainError
from idp.store import StoreUnavailable

log = logging.getLogger("idp.errors")


# Endpoints for programs (department back ends, OIDC libraries): their errors are JSON whatever they accept.
_API_ENDPOINTS = frozenset({"oidc.token", "oidc.revoke", "oidc.introspect", "oidc.userinfo",
                            "oidc.openid_configuration", "oidc.jwks"})


def _wants_json() -> bool:
    if request.endpoint in _API_ENDPOINTS:
        return True
    best = request.accept_mimetypes.best_match(["application/json", "text/html"])
    return best == "application/json" and not request.accept_mimetypes.accept_html


def _page(status: int, title: str, message: str, headers: dict | None = None, code: str | None = None):
    """An error answer (HTML or JSON, whose ``error`` is ``code`` when given); a server-side failure
    (5xx) names this request's id, the reference the help desk finds in the log."""
    from idp.observability import request_id

    reference = request_id() if status >= 500 else None
    if _wants_json():
        response = jsonify(error=code or title, error_description=message,
                           **({"request_id": reference} if reference else {}))
    else:
        response = render_template("error.html", title=title, message=message, status=status, reference=reference)
    return response, status, headers or {}


def init_app(app: Flask) -> None:
    @app.errorhandler(CSRFError)
    def _csrf(_exc):
        return _page(403, _("Your form expired"),
                     _("For your safety the form could not be used. Go back, reload the page and try again."))

    @app.errorhandler(DomainError)
    def _domain(exc: DomainError):
        retry_after = getattr(exc, "retry_after", None)
        return _page(exc.status, _("That did not work"), exc.message,
                     {"Retry-After": str(retry_after)} if retry_after else None)

    @app.errorhandler(StoreUnavailable)
    @app.errorhandler(OperationalError)
    @app.errorhandler(PoolTimeout)  # every pooled connection stayed busy for IDP_DATABASE_CONNECT_TIMEOUT
    def _unavailable(exc):
        log.error("backend unavailable: %s", type(exc).__name__)
        from idp.extensions import db

        g.idp_auth = None  # the page is shown as to a visitor: looking the resident up would fail again
        load_guard.lift_deadline()
        db.session.rollback()
        return _page(503, _("Temporarily unavailable"),
                     _("The service is temporarily unavailable. Please try again in a minute."),
                     {"Retry-After": "30"}, code="temporarily_unavailable")

    @app.errorhandler(HTTPException)
    def _http(exc: HTTPException):
        if isinstance(exc, ProtocolError):
            return exc.get_response()  # Authlib's own JSON error, with WWW-Authenticate
        # Failures outside the view (opening or saving the session) reach Flask as a 500
        # wrapping the original error: an unreachable backend still answers 503.
        if isinstance(getattr(exc, "original_exception", None), (StoreUnavailable, OperationalError, PoolTimeout)):
            return _unavailable(exc.original_exception)
        messages = {
            404: (_("Page not found"), _("We could not find that page. Check the address or go to the home page.")),
            405: (_("Not allowed"), _("That action is not allowed here.")),
            413: (_("Too large"), _("What you sent is too large.")),
            429: (_("Too many attempts"), _("Too many attempts. Wait a few minutes and try again.")),
        }
        title, message = messages.get(exc.code, (_("Something went wrong"), _("The request could not be handled.")))
        return _page(exc.code or 500, title, message)

    @app.errorhandler(Exception)
    def _unexpected(exc: Exception):
        from idp.observability import loggable_path, request_id

        log.exception("unhandled error on %s %s (request %s)", request.method, loggable_path(request.path),
                      request_id())
        return _page(500, _("Something went wrong"),
                     _("Something went wrong on our side. Please try again; if it keeps happening, contact the city's help desk."))
