"""The protocol endpoints. Views stay thin: Authlib and the services do the work."""
from __future__ import annotations

import json
import time
from functools import wraps
from urllib.parse import urlencode, urlsplit

from authlib.common.urls import add_params_to_uri
from authlib.integrations.flask_oauth2 import current_token
from authlib.oauth2 import OAuth2Error
from flask import (
    Blueprint,
    Response,
    current_app,
    g,
    jsonify,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask_babel import gettext as _

from idp.extensions import db
from idp.models import User
from idp.oidc import acr as acr_rules
from idp.oidc import discovery, logout
from idp.oidc.claims import for_scope
from idp.oidc.server import authorization_server, require_oauth
from idp.security.headers import allow_form_target
from idp.services import audit, clients, consent
from idp.services.keys import keyring
from idp.web import current
from idp.web.forms import ConfirmForm

bp = Blueprint("oidc", __name__)


def _error_page(error: OAuth2Error | None = None, message: str | None = None):
    """An error shown on the OP itself: the client or its redirect URI could not be verified."""
    text = message or _("The application that sent you here made an invalid sign-in request. "
                        "Go back to the application and try again.")
    detail = error.description if error is not None and error.description else ""
    audit.record("authorize.rejected", outcome="failure", client_id=request.args.get("client_id", "")[:64],
                 ip_address=current.client_ip(), error=error.error if error else "invalid_request")
    return render_template("oidc/error.html", message=text, detail=detail), 400


def _redirect_error(redirect_uri: str, error: str, description: str | None = None, state: str | None = None):
    params = [("error", error)]
    if description:
        params.append(("error_description", description))
    if state:
        params.append(("state", state))
    params.append(("iss", current_app.config["IDP_SETTINGS"].issuer))
    return redirect(add_params_to_uri(redirect_uri, params), code=302)


def _with_iss(response):
    """RFC 9207: every authorization response names the issuer."""
    location = response.headers.get("Location")
    if location and "iss=" not in urlsplit(location).query:
        response.headers["Location"] = add_params_to_uri(location, [("iss", current_app.config["IDP_SETTINGS"].issuer)])
    return response


def _login_redirect():
    return redirect("/login?" + urlencode({"next": request.full_path.rstrip("?")}), code=302)


def _needs_reauthentication(auth_session, user) -> bool:
    prompts = request.args.get("prompt", "").split()
    max_age = request.args.get("max_age")
    hinted = logout.hint_claims(request.args.get("id_token_hint"))  # checked to be ours beforehand
    # The client named another resident: never answer silently for this one (prompt=none gets
    # login_required); otherwise the resident signs in again and the answer is for whoever did.
    someone_else = hinted is not None and hinted.get("sub") != user.sub
    if someone_else and "none" in prompts:
        return True
    requested_at = session.get("reauth_requested_at")
    if requested_at and auth_session.auth_time.timestamp() >= requested_at:
        return False
    if someone_else or "login" in prompts:
        return True
    if max_age is not None:
        return time.time() - auth_session.auth_time.timestamp() > int(max_age)
    return False


def _claims_acr() -> dict | None:
    """The ``claims`` parameter's ``id_token.acr`` request, if any (the parameter is validated first)."""
    raw = request.args.get("claims")
    if not raw:
        return None
    id_token = json.loads(raw).get("id_token") or {}
    acr_request = id_token.get("acr") if isinstance(id_token, dict) else None
    return acr_request if isinstance(acr_request, dict) else None


def _validate_extra_parameters() -> tuple[str, str] | None:
    """The (error, description) for parameters Authlib leaves unchecked, or None when all are fine.

    Every parameter may appear once (RFC 6749 §3.1), and request objects are refused with their own
    error codes (OpenID Connect Core §6) rather than ignored.
    """
    if any(len(values) > 1 for _, values in request.args.lists()):
        return "invalid_request", "parameters must not be repeated"
    if "request" in request.args:
        return "request_not_supported", "request objects are not supported"
    if "request_uri" in request.args:
        return "request_uri_not_supported", "request_uri is not supported"
    problem = _invalid_parameter()
    return ("invalid_request", problem) if problem else None


def _invalid_parameter() -> str | None:
    max_age = request.args.get("max_age")
    if max_age is not None and (not (max_age.isascii() and max_age.isdigit()) or len(max_age) > 9):
        return "max_age must be a non-negative whole number of seconds"
    prompts = request.args.get("prompt", "").split()
    if any(p not in ("none", "login", "consent", "select_account") for p in prompts):
        return "unsupported prompt value"
    if "none" in prompts and len(prompts) > 1:
        return "prompt=none cannot be combined with other values"
    claims = request.args.get("claims")
    if claims is not None:
        try:
            parsed = json.loads(claims)
        except ValueError:
            return "claims must be a JSON object"
        if not isinstance(parsed, dict) or len(claims) > 4096:
            return "claims must be a JSON object"
    hint = request.args.get("id_token_hint")
    if hint is not None and logout.hint_claims(hint) is None:
        return "id_token_hint is not an ID token issued by this server"
    return None


@bp.route("/authorize", methods=["GET", "POST"])
def authorize():
    found = current.current_session()
    user = found[1] if found else None
    try:
        grant = authorization_server().get_consent_grant(end_user=user)
    except OAuth2Error as error:
        if error.redirect_uri:
            return _redirect_error(error.redirect_uri, error.error, error.description, request.args.get("state"))
        return _error_page(error)
    redirect_uri = grant.redirect_uri
    state = request.args.get("state")
    client = grant.client
    problem = _validate_extra_parameters()
    if problem:
        return _redirect_error(redirect_uri, *problem, state)
    prompts = request.args.get("prompt", "").split()
    if found is None or _needs_reauthentication(*found):
        if "none" in prompts:
            return _redirect_error(redirect_uri, "login_required", None, state)
        if found is not None:
            session["reauth_requested_at"] = time.time()
        return _login_redirect()
    auth_session, user = found
    wanted_acr = acr_rules.required(request.args.get("acr_values"), _claims_acr())
    if wanted_acr and acr_rules.rank(auth_session.acr) < acr_rules.rank(wanted_acr):
        if "none" in prompts:  # a stronger sign-in is an authentication the resident must see (OIDC Core 3.1.2.6)
            return _redirect_error(redirect_uri, "login_required",
                                   "a stronger sign-in is needed than the current session has", state)
        return redirect(url_for("mfa.step_up", acr=wanted_acr, next=request.full_path.rstrip("?")), code=302)
    if not user.email_verified:  # an unconfirmed registration may be someone else's address (checklist 35)
        if "none" in prompts:
            return _redirect_error(redirect_uri, "interaction_required", "the email address is not confirmed yet", state)
        return render_template("oidc/confirm_email_first.html", client=client, user=user, form=ConfirmForm(),
                               again=request.full_path.rstrip("?")), 403
    scope = grant.request.payload.scope or ""
    needs_consent = not client.first_party and (
        "consent" in prompts or not consent.covers(user.id, client.client_id, scope))
    if needs_consent and "none" in prompts:
        return _redirect_error(redirect_uri, "consent_required", None, state)
    if needs_consent and request.method == "GET":
        allow_form_target(_origin(redirect_uri))
        return render_template("oidc/consent.html", client=client, scopes=scope.split(),
                               action=request.full_path.rstrip("?"))
    if needs_consent:
        if request.form.get("decision") != "allow":
            audit.record("consent.denied", user_id=user.id, client_id=client.client_id)
            return _redirect_error(redirect_uri, "access_denied", None, state)
        consent.grant(user.id, client.client_id, scope)
        audit.record("consent.granted", user_id=user.id, client_id=client.client_id, scope=scope)
    g.oidc_auth_context = {"sid": auth_session.sid, "auth_time_dt": auth_session.auth_time,
                           "acr": auth_session.acr, "amr": list(auth_session.amr or [])}
    audit.record("authorize.granted", user_id=user.id, client_id=client.client_id, scope=scope)
    session.pop("reauth_requested_at", None)  # only now: the consent step is part of the same request
    return _with_iss(authorization_server().create_authorization_response(grant_user=user, grant=grant))


def _origin(uri: str) -> str:
    parts = urlsplit(uri)
    return f"{parts.scheme}://{parts.netloc}"


def _client_auth_limited(view):
    """Back-channel endpoints where a client authenticates: once its failures from this address
    reach the limit, answer 429 ``invalid_client`` without checking the credentials; count every
    401 (failed client authentication)."""
    @wraps(view)
    def wrapper():
        auth = request.authorization
        client_id = (auth.username if auth is not None and auth.username else request.form.get("client_id")) or ""
        ip = current.client_ip()
        if clients.client_auth_blocked(client_id, ip):
            window = current_app.config["IDP_SETTINGS"].login_failure_window
            return (jsonify(error="invalid_client", error_description="too many failed client authentications"),
                    429, {"Retry-After": str(window), "Cache-Control": "no-store"})
        response = current_app.make_response(view())
        if response.status_code == 401:
            clients.count_client_auth_failure(client_id, ip)
        return response

    return wrapper


@bp.post("/token")
@_client_auth_limited
def token():
    if request.args:
        # Credentials and codes belong in the body, never in the URL (they end up in logs).
        return jsonify(error="invalid_request", error_description="parameters must be sent in the request body"), 400
    return authorization_server().create_token_response()


@bp.post("/revoke")
@_client_auth_limited
def revoke():
    return authorization_server().create_endpoint_response("revocation")


@bp.post("/introspect")
@_client_auth_limited
def introspect():
    return authorization_server().create_endpoint_response("introspection")


@bp.route("/userinfo", methods=["GET", "POST"])
@require_oauth("openid")
def userinfo():
    token_row = current_token
    user = db.session.get(User, token_row.user_id) if token_row.user_id else None
    if user is None or not user.is_active:
        return jsonify(error="invalid_token"), 401, {"WWW-Authenticate": 'Bearer error="invalid_token"'}
    return jsonify(for_scope(user, token_row.scope))


@bp.get("/.well-known/openid-configuration")
def openid_configuration():
    return Response(discovery.document_json(), mimetype="application/json",
                    headers={"Cache-Control": "public, max-age=300", "Access-Control-Allow-Origin": "*"})


@bp.get("/jwks.json")
def jwks():
    return Response(keyring().jwks_json, mimetype="application/jwk-set+json",
                    headers={"Cache-Control": "public, max-age=300", "Access-Control-Allow-Origin": "*"})


@bp.route("/logout/end-session", methods=["GET", "POST"])
def end_session():
    return logout.end_session()
