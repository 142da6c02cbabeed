"""``idp serve``: the production server (gunicorn, threaded workers) run programmatically."""
from __future__ import annotations

import os
import sys

import click
from flask import current_app
from gunicorn.app.base import BaseApplication

from idp.config import Settings

# The request path without its query string: queries carry authorization codes and tokens.
# No Referer either (a relying party's page address may hold a code).
ACCESS_LOG_FORMAT = '%(h)s - %(t)s "%(m)s %(U)s %(H)s" %(s)s %(b)s %(M)sms "%(a)s"'
DEFAULT_THREADS = 8


class IdpGunicorn(BaseApplication):
    """gunicorn run programmatically; the app is created once in each worker (no preload)."""

    def __init__(self, settings: Settings, options: dict):
        self.settings = settings
        self.options = options
        super().__init__()

    def load_config(self) -> None:
        for key, value in self.options.items():
            if key in self.cfg.settings:  # newer options are skipped on older gunicorn
                self.cfg.set(key, value)

    def load(self):
        from idp import create_app, load_guard
        from idp.services import delivery_worker

        _hide_server_banner()
        app = create_app(self.settings)
        load_guard.keep_one_thread_free(app, self.options["threads"])
        delivery_worker.start(app)
        return app


def _access_logger_class():
    """gunicorn's logger, with the token of an emailed link taken out of the logged path."""
    from gunicorn.glogging import Logger

    from idp.observability import loggable_path

    class AccessLogger(Logger):
        def atoms(self, resp, req, environ, request_time):
            atoms = super().atoms(resp, req, environ, request_time)
            atoms["U"] = loggable_path(atoms.get("U", ""))
            return atoms

    return AccessLogger


def _hide_server_banner() -> None:
    """gunicorn answers ``Server: gunicorn``; name no server software to the outside."""
    try:
        from gunicorn.http import wsgi

        if hasattr(wsgi, "SERVER"):
            wsgi.SERVER = "eCitizen Passport"
    except ImportError:  # pragma: no cover - gunicorn moved it; the banner stays
        pass


def gunicorn_options(host: str, port: int, workers: int, threads: int, **extra) -> dict:
    options = {
        "bind": [f"[{host}]:{port}" if ":" in host else f"{host}:{port}"],
        "workers": workers,
        "worker_class": "gthread",
        "threads": threads,
        "preload_app": False,  # one app per worker, created after the fork
        "timeout": 60,
        "graceful_timeout": 20,  # SIGTERM: finish in-flight requests, then stop
        "keepalive": 5,
        "accesslog": "-",
        "errorlog": "-",
        "access_log_format": ACCESS_LOG_FORMAT,
        "logger_class": _access_logger_class(),
        "proc_name": "idp",
        "forwarded_allow_ips": "127.0.0.1,::1",
        # gunicorn >= 25.1 opens a control socket in $HOME; several servers would collide.
        "control_socket_disable": True,
    }
    options.update(extra)
    return options


def worker_count_problem(settings: Settings, workers: int) -> str | None:
    """Why this number of workers cannot run with these settings, or None."""
    if workers > 1 and not settings.redis_url:
        return (f"--workers {workers} needs a shared session store: without IDP_REDIS_URL sessions, "
                "sign-in challenges and throttling counters live inside one process, so other "
                "workers would not see them. Set IDP_REDIS_URL (e.g. redis://127.0.0.1:6379/0) "
                "or run one worker (--workers 1) with more --threads.")
    return None


def run_server(settings: Settings, host: str, port: int, workers: int, threads: int) -> None:
    """Run gunicorn in the foreground until SIGTERM (graceful) or SIGINT; returns in the master."""
    master = os.getpid()
    try:
        IdpGunicorn(settings, gunicorn_options(host, port, workers, threads)).run()
    except SystemExit as exc:
        if os.getpid() != master:  # a worker process leaving: never run the master's cleanup
            raise
        if exc.code not in (0, None):
            raise


@click.command("serve")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=5000, show_default=True, type=click.IntRange(1, 65535), help="Port to listen on.")
@click.option("--workers", type=click.IntRange(1, 64), default=None,
              help="Worker processes (default 1, or 2 when IDP_REDIS_URL is set).")
@click.option("--threads", type=click.IntRange(1, 256), default=DEFAULT_THREADS, show_default=True,
              help="Threads per worker.")
def serve(host: str, port: int, workers: int | None, threads: int) -> None:
    """Run the identity provider under gunicorn (threaded workers, graceful stop on SIGTERM)."""
    # The settings were validated when the CLI loaded the app (bad ones exit with status 2).
    settings: Settings = current_app.config["IDP_SETTINGS"]
    if workers is None:
        workers = 2 if settings.redis_url else 1
    problem = worker_count_problem(settings, workers)
    if problem:
        click.echo(f"error: {problem}", err=True)
        sys.exit(2)
    # The CLI's own app never serves a request; workers build theirs after the fork.
    from idp.extensions import db

    db.engine.dispose()
    click.echo(f"eCitizen Passport {settings.issuer} listening on http://{host}:{port} "
               f"({workers} worker(s) x {threads} threads, store: "
               f"{'redis' if settings.redis_url else 'in-process'})", err=True)
    run_server(settings, host, port, workers, threads)
