"""Operating the IdP: a request id on every request and log line, JSON logs, Prometheus metrics
(requests, latencies, security events, tokens issued) and the liveness and readiness checks."""
from __future__ import annotations

import json
import logging
import os
import re
import secrets
import time

from flask import Blueprint, Flask, Response, current_app, g, has_request_context, request
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, generate_latest, multiprocess
from sqlalchemy import text

from idp.extensions import db

REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{8,64}$")
# Emailed links carry a bearer token in their path: it is replaced before a path is logged.
LINK_TOKEN_PATH = re.compile(r"^(/(?:reset-password|verify-email|confirm-email|not-me)/)(?!resend$)[^/?]+")
REGISTRY = CollectorRegistry(auto_describe=True)
REQUESTS = Counter("idp_http_requests", "HTTP requests answered", ["method", "endpoint", "status"], registry=REGISTRY)
LATENCY = Histogram("idp_http_request_seconds", "Time to answer a request", ["endpoint"], registry=REGISTRY,
                    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5))
EVENTS = Counter("idp_security_events", "Audit events (sign-ins, failures, changes)", ["event", "outcome"],
                 registry=REGISTRY)
TOKENS = Counter("idp_tokens_issued", "Token responses issued", ["grant_type"], registry=REGISTRY)

bp = Blueprint("ops", __name__)


def loggable_path(path: str) -> str:
    """``path`` as logs may show it: the token of an emailed link is replaced by ``[token]``."""
    return LINK_TOKEN_PATH.sub(r"\1[token]", path or "")


def request_id() -> str:
    """This request's id: the caller's X-Request-ID when it looks sane, else a new one."""
    if "request_id" not in g:
        offered = request.headers.get("X-Request-ID", "")
        g.request_id = offered if REQUEST_ID.match(offered) else secrets.token_hex(8)
    return g.request_id


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, and the request id when there is one."""

    def format(self, record: logging.LogRecord) -> str:
        entry = {"time": self.formatTime(record, "%Y-%m-%dT%H:%M:%S") + f".{int(record.msecs):03d}Z",
                 "level": record.levelname.lower(), "logger": record.name, "message": record.getMessage()}
        if has_request_context():
            entry["request_id"] = request_id()
            entry["path"] = loggable_path(request.path)  # never the query string or a link token
        if record.exc_info:
            entry["error"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False)


def configure_logging(level: int, json_logs: bool) -> None:
    """Log to stderr, as JSON lines in production."""
    root = logging.getLogger()
    if not root.handlers:
        handler = logging.StreamHandler()
        root.addHandler(handler)
        root.setLevel(level)
    if json_logs:
        for handler in root.handlers:
            handler.formatter = JsonFormatter()
            handler.formatter.converter = time.gmtime
    logging.getLogger("idp").setLevel(level)
    # Authlib logs whole token responses (access, refresh and ID tokens) at DEBUG: never emitted,
    # whatever IDP_LOG_LEVEL says.
    logging.getLogger("authlib").setLevel(max(level, logging.INFO))


def count_event(event: str, outcome: str) -> None:
    EVENTS.labels(event=event, outcome=outcome).inc()


def count_token(grant_type: str) -> None:
    TOKENS.labels(grant_type=grant_type or "unknown").inc()


@bp.get("/healthz")
def healthz():
    """Alive: the process answers (no dependency is checked)."""
    return Response("ok\n", mimetype="text/plain")


@bp.get("/readyz")
def readyz():
    """Ready for traffic: the database and the shared store answer."""
    checks = {}
    try:
        db.session.execute(text("SELECT 1"))
        db.session.rollback()
        checks["database"] = "ok"
    except Exception:  # any driver error means not ready
        db.session.rollback()
        checks["database"] = "unavailable"
    try:
        checks["store"] = "ok" if current_app.extensions["idp.store"].ping() else "unavailable"
    except Exception:
        checks["store"] = "unavailable"
    ready = all(v == "ok" for v in checks.values())
    return Response(json.dumps({"ready": ready, **checks}), status=200 if ready else 503, mimetype="application/json")


@bp.get("/metrics")
def metrics():
    """Prometheus metrics, only with ``Authorization: Bearer <IDP_METRICS_TOKEN>`` (404 when unset).

    With more than one worker per instance, set PROMETHEUS_MULTIPROC_DIR (an empty, writable
    directory) in the environment before starting: every worker's counts are then added up."""
    token = current_app.config["IDP_SETTINGS"].metrics_token
    offered = request.headers.get("Authorization", "")
    if not token:
        return Response("not found\n", status=404, mimetype="text/plain")
    if not secrets.compare_digest(offered.encode(), f"Bearer {token}".encode()):
        return Response("unauthorized\n", status=401, mimetype="text/plain", headers={"WWW-Authenticate": "Bearer"})
    registry = REGISTRY
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):  # several gunicorn workers: add up every worker's files
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
    return Response(generate_latest(registry), mimetype=CONTENT_TYPE_LATEST)


def init_app(app: Flask) -> None:
    app.register_blueprint(bp)

    @app.before_request
    def _start():
        g.started_at = time.perf_counter()
        request_id()

    @app.after_request
    def _finish(response):
        endpoint = request.endpoint or "unmatched"
        if endpoint != "ops.metrics":
            REQUESTS.labels(method=request.method, endpoint=endpoint, status=str(response.status_code)).inc()
            LATENCY.labels(endpoint=endpoint).observe(time.perf_counter() - g.get("started_at", time.perf_counter()))
        response.headers["X-Request-ID"] = request_id()
        return response
