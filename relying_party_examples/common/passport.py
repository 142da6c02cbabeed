"""Signing residents in with eCitizen Passport: a standard OpenID Connect client (Authlib) with
authorization code + PKCE S256, ``state`` and ``nonce``, ID token validation, RFC 9207 ``iss``
check, step-up through ``acr_values``, server-side sessions, RP-initiated logout and OIDC
Back-Channel Logout 1.0. The pages are translated (Flask-Babel, see :mod:`.i18n`) and the IdP is
asked to show its own pages in the same language (``ui_locales``)."""
from __future__ import annotations

import hmac
import secrets
from functools import wraps
from pathlib import Path
from urllib.parse import urlencode

import requests
from authlib.common.errors import AuthlibBaseError
from authlib.integrations.flask_client import OAuth
from flask import (
    Blueprint,
    Flask,
    abort,
    current_app,
    g,
    has_app_context,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_sqlalchemy import SQLAlchemy
from jinja2 import ChoiceLoader, FileSystemLoader
from werkzeug.exceptions import HTTPException

from relying_party_examples.common import i18n
from relying_party_examples.common.sessions import SessionStore
from relying_party_examples.common.settings import Settings
from relying_party_examples.common.tokens import LOGOUT_EVENT, TokenChecker, TokenError

# The IdP's authentication strengths (discovery lists them in acr_values_supported), weakest first.
ACR = {"password": "urn:ecitizen:acr:password", "mfa": "urn:ecitizen:acr:mfa",
       "phishing-resistant": "urn:ecitizen:acr:phishing-resistant"}
ACR_RANK = {value: rank for rank, value in enumerate(ACR.values(), start=1)}

HERE = Path(__file__).resolve().parent
blueprint = Blueprint("passport", __name__, static_folder=str(HERE / "static"), static_url_path="/passport-static")


def passport() -> "Passport":
    return current_app.extensions["passport"]


class Passport:
    """The department's connection to eCitizen Passport. Create it next to the app's ``db`` (it
    adds the ``rp_sessions`` table there), then call :meth:`init_app` in the app factory."""

    def __init__(self, db: SQLAlchemy):
        self.db = db
        self.sessions = SessionStore(db.metadata)

    def init_app(self, app: Flask, settings: Settings, *, title: str, scope: str, slug: str) -> None:
        """Configure ``app``: its database, the sign-in routes, CSRF checks and the shared layout.
        Per-app state lives on a bound copy in ``app.extensions["passport"]``, so tests can build
        several apps of one department in one process."""
        bound = Passport.__new__(Passport)
        bound.__dict__.update(self.__dict__)
        bound._bind(app, settings, title=title, scope=scope, slug=slug)

    def __getattr__(self, name: str):
        # The module-level object answers for the current app's bound copy (settings, client …).
        if name.startswith("_") or not has_app_context():
            raise AttributeError(name)
        bound = current_app.extensions.get("passport")
        if bound is None or bound is self:
            raise AttributeError(name)
        return getattr(bound, name)

    def _bind(self, app: Flask, settings: Settings, *, title: str, scope: str, slug: str) -> None:
        self.settings, self.title, self.slug = settings, title, slug
        self.cookie = f"{slug}_session"
        app.config.update(
            SECRET_KEY=settings.secret_key,
            SQLALCHEMY_DATABASE_URI=settings.database_url,
            # The IdP and the other departments also run on localhost in the demo, and cookies
            # ignore ports: every app uses cookie names of its own.
            SESSION_COOKIE_NAME=f"{slug}_flow",
            SESSION_COOKIE_HTTPONLY=True,
            SESSION_COOKIE_SAMESITE="Lax",
            SESSION_COOKIE_SECURE=settings.base_url.startswith("https://"),
            # One catalogue for every department (relying_party_examples/translations).
            BABEL_TRANSLATION_DIRECTORIES=str(i18n.TRANSLATIONS),
            BABEL_DEFAULT_LOCALE=i18n.DEFAULT,
        )
        i18n.init_app(app)
        app.extensions["passport"] = self
        self.oauth = OAuth(app)
        self.oauth.register(
            "passport", client_id=settings.client_id, client_secret=settings.client_secret,
            server_metadata_url=f"{settings.issuer}/.well-known/openid-configuration",
            client_kwargs={"scope": scope, "code_challenge_method": "S256"},
        )
        self.client = self.oauth.passport
        self.tokens = TokenChecker(settings, self.client)
        app.jinja_loader = ChoiceLoader([app.jinja_loader, FileSystemLoader(str(HERE / "templates"))])
        app.register_blueprint(blueprint)
        app.before_request(self._load_resident)
        app.before_request(self._check_csrf)
        app.context_processor(lambda: {"resident": g.get("resident"), "csrf_token": csrf_token,
                                       "department": self.title, "how_we_tell_you": how_we_tell_you})
        app.register_error_handler(requests.RequestException, _idp_unreachable)
        app.register_error_handler(HTTPException, _error_page)
        app.after_request(_no_store_for_apis)
        self.db.init_app(app)
        if settings.database_url.startswith("sqlite:///"):
            Path(settings.database_url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
        with app.app_context():
            # An example app keeps its schema in code; a real department would use migrations.
            self.db.create_all()

    # --- who is signed in ----------------------------------------------------------------------
    def _load_resident(self) -> None:
        found = self.sessions.find(self.db.session.connection(), request.cookies.get(self.cookie))
        g.resident = found["claims"] if found else None
        g.id_token = found["id_token"] if found else None

    def login_required(self, acr: str | None = None):
        """A view for signed-in residents only; with ``acr`` ("mfa"), only after a sign-in at least
        that strong (the resident is sent to the IdP for a step-up otherwise)."""
        def decorate(view):
            @wraps(view)
            def wrapper(*args, **kwargs):
                resident = g.get("resident")
                strong_enough = resident is not None and (
                    acr is None or ACR_RANK.get(resident.get("acr"), 0) >= ACR_RANK[ACR[acr]])
                if not strong_enough:
                    if request.method != "GET":
                        abort(403)
                    query = {"next": request.full_path.rstrip("?")}
                    if acr:
                        query["acr"] = acr
                    return redirect(url_for("passport.login") + "?" + urlencode(query))
                return view(*args, **kwargs)
            return wrapper
        return decorate

    # --- department APIs -----------------------------------------------------------------------
    def require_token(self, view):
        """An API view that needs a valid access token issued by the IdP for this department's API
        (``aud`` = RP_API_RESOURCE); the token's claims are in ``g.access_token``."""
        @wraps(view)
        def wrapper(*args, **kwargs):
            try:
                g.access_token = self.tokens.check_bearer(request.headers.get("Authorization", ""))
            except TokenError as exc:
                return ({"error": "invalid_token", "error_description": str(exc)}, 401,
                        {"WWW-Authenticate": f'Bearer error="invalid_token", error_description="{exc}"',
                         "Cache-Control": "no-store"})
            return view(*args, **kwargs)
        return wrapper

    def call_department(self, url: str, resource: str, timeout: float = 3.0) -> requests.Response:
        """GET another department's API with a ``client_credentials`` token for its ``resource``."""
        token = self.tokens.service_token(resource)
        return requests.get(url, headers={"Authorization": f"Bearer {token}"}, timeout=timeout)

    def _check_csrf(self) -> None:
        if request.method != "POST" or request.endpoint == "passport.backchannel_logout":
            return
        if request.path.startswith("/api/"):
            return  # bearer-token APIs: no cookies, no CSRF
        expected = session.get("csrf")
        if not expected or not hmac.compare_digest(request.form.get("csrf_token", ""), expected):
            abort(400, _("This form has expired. Go back, reload the page and try again."))

    # --- helpers for the sign-in routes --------------------------------------------------------
    def start_session(self, claims: dict, id_token: str | None) -> str:
        token = self.sessions.create(self.db.session.connection(), claims, id_token)
        self.db.session.commit()
        return token


CHANNEL_WORDS = {"email": _l("by email"), "sms": _l("by text message"),
                 "none": _l("not at all (you chose no messages)")}


def how_we_tell_you(topic: str) -> str | None:
    """How the resident wants this kind of message, from the ``notification_preferences`` claim:
    one choice made at eCitizen Passport that every department follows."""
    chosen = (g.get("resident") or {}).get("notification_preferences") or {}
    words = CHANNEL_WORDS.get(chosen.get(topic))
    return str(words) if words is not None else None


def csrf_token() -> str:
    """This browser's CSRF token for the app's forms (field ``csrf_token``)."""
    if "csrf" not in session:
        session["csrf"] = secrets.token_urlsafe(16)
    return session["csrf"]


def _keep_only(*keys: str) -> None:
    """Forget everything in the department's session but ``keys`` (the chosen language, say)."""
    kept = {key: session[key] for key in keys if key in session}
    session.clear()
    session.update(kept)


def _safe_next(value: str | None) -> str:
    return value if value and value.startswith("/") and not value.startswith(("//", "/\\")) else "/"


def _page(message: str, status: int, title: str | None = None):
    return render_template("passport/message.html", message=message, title=title), status


def _error_page(exc: HTTPException):
    """HTTP errors on pages as a page in the resident's language; APIs keep the plain answer."""
    if request.path.startswith("/api/"):
        return exc
    if exc.code == 404:
        return _page(_("We could not find that page. Check the address or go to the home page."), 404,
                     _("Page not found"))
    return _page(_("The request could not be handled."), exc.code or 500)


def _no_store_for_apis(response):
    """Answers of bearer-token APIs are personal: no cache keeps them."""
    if request.path.startswith("/api/"):
        response.headers["Cache-Control"] = "no-store"
    return response


def _idp_unreachable(exc):
    current_app.logger.warning("the identity provider is not reachable: %s", type(exc).__name__)
    return _page(_("eCitizen Passport cannot be reached right now. Try again in a minute."), 502)


@blueprint.get("/healthz")
def healthz():
    return "ok"


@blueprint.get("/login")
def login():
    """Start the authorization code flow (Authlib adds state, nonce and the PKCE challenge)."""
    wanted = request.args.get("acr")
    if wanted is not None and wanted not in ACR:
        abort(400, _("Unknown sign-in strength."))
    session["next"] = _safe_next(request.args.get("next"))
    session["wanted_acr"] = ACR[wanted] if wanted else None
    # The IdP shows its pages in the language of the department's pages.
    extra = {"ui_locales": i18n.current()}
    if wanted:
        extra["acr_values"] = ACR[wanted]
    return passport().client.authorize_redirect(f"{passport().settings.base_url}/callback", **extra)


@blueprint.get("/callback")
def callback():
    rp = passport()
    if "error" in request.args:
        return _page(_("Sign-in did not complete: %(error)s", error=request.args["error"]), 400)
    metadata = rp.client.load_server_metadata()
    # RFC 9207: the authorization response names its issuer; refuse a response from another one.
    iss = request.args.get("iss")
    if (iss or metadata.get("authorization_response_iss_parameter_supported")) and iss != metadata["issuer"]:
        return _page(_("The sign-in response came from an unexpected issuer."), 400)
    try:
        # Exchanges the code with the PKCE verifier; validates the ID token's signature against the
        # IdP's JWKS, iss, aud, exp and nonce.
        token = rp.client.authorize_access_token()
        claims = dict(token.get("userinfo") or {})
        extra = rp.client.userinfo(token=token)
    except AuthlibBaseError as exc:
        return _page(_("Sign-in failed: %(error)s", error=exc.error), 400)
    if extra.get("sub") == claims.get("sub"):
        claims.update({k: v for k, v in extra.items() if k not in claims})
    wanted = session.get("wanted_acr")
    # acr_values is a request, not a guarantee: check what the ID token says actually happened.
    if wanted and ACR_RANK.get(claims.get("acr"), 0) < ACR_RANK[wanted]:
        return _page(_("This service needs a stronger sign-in than the one you completed."), 403)
    target = _safe_next(session.get("next"))
    _keep_only("csrf", i18n.SESSION_KEY)
    old = request.cookies.get(rp.cookie)
    rp.sessions.end(rp.db.session.connection(), old)
    cookie = rp.start_session(claims, token.get("id_token"))
    response = redirect(target)
    response.set_cookie(rp.cookie, cookie, httponly=True, samesite="Lax",
                        secure=rp.settings.base_url.startswith("https://"))
    return response


@blueprint.post("/language")
def language():
    """The language switcher in every page's footer: the choice is kept in this department's
    session, then the resident goes back to the page they were on (a local path only)."""
    code = request.form.get("lang")
    if code not in i18n.LANGUAGES:
        abort(400, _("Choose one of the languages offered."))
    session[i18n.SESSION_KEY] = code
    return redirect(_safe_next(request.form.get("next")), 303)


@blueprint.post("/logout")
def logout():
    """End the local session and the IdP's (RP-initiated logout); the IdP then tells the other
    departments through back-channel logout."""
    rp = passport()
    id_token = g.get("id_token")
    rp.sessions.end(rp.db.session.connection(), request.cookies.get(rp.cookie))
    rp.db.session.commit()
    _keep_only(i18n.SESSION_KEY)
    if id_token:
        response = rp.client.logout_redirect(post_logout_redirect_uri=f"{rp.settings.base_url}/",
                                              id_token_hint=id_token, ui_locales=i18n.current())
    else:
        response = redirect("/")
    response.delete_cookie(rp.cookie)
    return response


@blueprint.post("/backchannel-logout")
def backchannel_logout():
    """OIDC Back-Channel Logout 1.0: validate the IdP's logout token, end the sessions it names."""
    rp = passport()
    try:
        claims = rp.tokens.check_logout_token(request.form.get("logout_token", ""))
    except TokenError as exc:
        return {"error": "invalid_request", "error_description": str(exc)}, 400, {"Cache-Control": "no-store"}
    ended = rp.sessions.end_for_logout(rp.db.session.connection(), claims.get("sid"), claims.get("sub"))
    rp.db.session.commit()
    current_app.logger.info("back-channel logout ended %d session(s)", ended)
    return "", 200, {"Cache-Control": "no-store"}


__all__ = ["ACR", "LOGOUT_EVENT", "Passport", "csrf_token", "passport"]
