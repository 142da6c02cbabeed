"""eCitizen Passport: an OpenID Connect identity provider for a city's residents."""
from __future__ import annotations

import logging
from pathlib import Path

from flask import Flask
from sqlalchemy import event
from sqlalchemy.engine import Engine, make_url

from idp import i18n
from idp.config import Settings, load_settings_or_exit
from idp.extensions import babel, csrf, db, migrate

MIGRATIONS_DIR = str(Path(__file__).resolve().parent.parent / "migrations")


def create_app(settings: Settings | None = None) -> Flask:
    """Build the application from validated settings (read from the environment by default)."""
    settings = settings or load_settings_or_exit()
    app = Flask(__name__, instance_path=settings.instance_path, instance_relative_config=False)
    from idp.security.strict_request import StrictRequest

    app.request_class = StrictRequest  # undecodable query strings and forms: 400
    Path(settings.instance_path).mkdir(parents=True, exist_ok=True)
    _configure_logging(settings)
    for warning in settings.warnings:
        app.logger.warning(warning)

    app.config.update(
        IDP_SETTINGS=settings,
        SECRET_KEY=settings.secret_key,
        # A rotated-out secret keeps verifying what it signed (CSRF tokens) while it is listed.
        SECRET_KEY_FALLBACKS=list(settings.secret_key_fallbacks),
        WTF_CSRF_SECRET_KEY=[*reversed(settings.secret_key_fallbacks), settings.secret_key],
        SQLALCHEMY_DATABASE_URI=settings.database_url,
        SQLALCHEMY_ENGINE_OPTIONS=_engine_options(settings),
        WTF_CSRF_TIME_LIMIT=None,  # bound to the (short-lived) server-side session instead
        WTF_CSRF_SSL_STRICT=True,
        # Room for a supporting document (account link requests) and the rest of its form.
        MAX_CONTENT_LENGTH=max(1024 * 1024, settings.link_document_max_kb * 1024 + 64 * 1024),
        TESTING=settings.env == "test",
        PROPAGATE_EXCEPTIONS=False,  # tests see the error pages residents see; the log has the trace
        PREFERRED_URL_SCHEME="https" if settings.secure_cookies else "http",
    )
    if settings.trust_proxy:
        from werkzeug.middleware.proxy_fix import ProxyFix

        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=settings.trust_proxy, x_proto=settings.trust_proxy,
                                x_host=settings.trust_proxy)

    db.init_app(app)
    migrate.init_app(app, db, directory=MIGRATIONS_DIR, render_as_batch=True, compare_type=True)
    csrf.init_app(app)
    babel.init_app(app, locale_selector=i18n.select_locale)

    from idp.delivery.mail import make_mailer
    from idp.delivery.sms import make_sms_sender
    from idp.security import headers, hosts
    from idp.security.server_session import ServerSessionInterface, refuse_when_unavailable
    from idp.services import client_cache
    from idp.services.passwords import Hasher
    from idp.store import make_store

    store = make_store(settings.redis_url)
    app.extensions["idp.store"] = store
    client_cache.init_app(app)
    app.session_interface = ServerSessionInterface(store, settings.secure_cookies,
                                                   settings.session_lifetime_hours * 3600)
    # Before the CSRF check, which would otherwise read the unreadable session as empty and
    # answer "form expired" instead of 503.
    app.before_request_funcs.setdefault(None, []).insert(0, refuse_when_unavailable)
    from idp import load_guard

    load_guard.init_app(app)  # first of all: a slot and a time budget for the request
    app.extensions["idp.mailer"] = make_mailer(settings)
    app.extensions["idp.sms"] = make_sms_sender(settings)
    app.extensions["idp.hasher"] = Hasher(settings.argon2_memory_kib, settings.argon2_time_cost,
                                          settings.argon2_parallelism, settings.max_concurrent_hashes)
    headers.init_app(app)
    hosts.init_app(app)
    from idp import crash_points, observability

    observability.init_app(app)
    crash_points.init_app(app)  # IDP_ENV=test only: fault-injection tests
    i18n.init_app(app)
    from idp.web import assets

    assets.init_app(app)

    from flask_babel import get_locale

    from idp import errors
    from idp.oidc import init_app as init_oidc
    from idp.web import account, admin, auth, directory, mfa, municipal
    from idp.web.current import current_user

    app.jinja_env.globals.update(current_user=current_user, get_locale=get_locale)
    errors.init_app(app)
    app.register_blueprint(auth.bp)
    app.register_blueprint(account.bp)
    app.register_blueprint(mfa.bp)
    app.register_blueprint(municipal.bp)
    app.register_blueprint(admin.bp)
    app.register_blueprint(directory.bp)
    init_oidc(app)

    from idp import cli

    cli.register(app)
    return app


def _engine_options(settings: Settings) -> dict:
    """Pool and connection options. On PostgreSQL a request never waits on the database without a
    bound (checklist 111, 115): IDP_DATABASE_CONNECT_TIMEOUT for a new connection and for a free one
    from the pool, IDP_DATABASE_STATEMENT_TIMEOUT for each statement (lock waits included), and TCP
    keepalives to notice a server that went away; past them the request answers 503."""
    url = settings.database_url
    if url.startswith("sqlite"):
        return {"connect_args": {"timeout": 30, "check_same_thread": False}}
    connect = {"connect_timeout": settings.database_connect_timeout,
               "keepalives": 1, "keepalives_idle": 30, "keepalives_interval": 10, "keepalives_count": 3}
    if settings.database_statement_timeout:
        options = make_url(url).query.get("options", "")  # keep what the URL itself sets
        options = options if isinstance(options, str) else " ".join(options)
        connect["options"] = f"{options} -c statement_timeout={settings.database_statement_timeout * 1000}".strip()
    return {"pool_pre_ping": True, "pool_size": 10, "max_overflow": 10, "pool_recycle": 1800,
            "pool_timeout": settings.database_connect_timeout, "connect_args": connect}


@event.listens_for(Engine, "connect")
def _sqlite_pragmas(dbapi_connection, _record) -> None:
    """SQLite in WAL mode with foreign keys enforced."""
    import sqlite3

    if isinstance(dbapi_connection, sqlite3.Connection):
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()


def _configure_logging(settings: Settings) -> None:
    from idp.observability import configure_logging

    level = getattr(logging, settings.log_level.upper())
    if settings.log_format == "text" and not logging.getLogger().handlers:
        logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    configure_logging(level, settings.log_format == "json")
