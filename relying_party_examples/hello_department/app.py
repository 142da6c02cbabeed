"""Hello Department: the smallest useful relying party of eCitizen Passport.

A standard OpenID Connect client built on Authlib's Flask integration: authorization code flow
with PKCE (S256), ID token validated by Authlib against the IdP's published keys, RFC 9207
``iss`` check, and RP-initiated sign-out through the IdP's ``end_session_endpoint``.

Configuration (environment):
  RP_ISSUER         the IdP's issuer, e.g. http://localhost:5000 (discovery is read from it)
  RP_CLIENT_ID      from ``idp clients create ... --json``
  RP_CLIENT_SECRET  idem (confidential client)
  RP_BASE_URL       where this app is reached, e.g. http://localhost:5001
                    (the IdP must know RP_BASE_URL/callback and RP_BASE_URL/ exactly)
  RP_SECRET_KEY     signs this app's own session cookie (random per start when unset)
  RP_HOST, RP_PORT  where to listen when run as ``python app.py`` (127.0.0.1, 5001)
"""
from __future__ import annotations

import hmac
import os
import secrets

import requests
from authlib.common.errors import AuthlibBaseError
from authlib.integrations.flask_client import OAuth
from authlib.jose import JsonWebKey, jwt
from authlib.jose.errors import JoseError
from flask import Flask, abort, redirect, render_template_string, request, session, url_for

ISSUER = os.environ.get("RP_ISSUER", "http://localhost:5000").rstrip("/")
BASE_URL = os.environ.get("RP_BASE_URL", "http://localhost:5001").rstrip("/")

app = Flask(__name__)
app.config.update(
    SECRET_KEY=os.environ.get("RP_SECRET_KEY") or secrets.token_urlsafe(32),
    # The IdP also runs on localhost in the demo and cookies ignore ports: use our own name.
    SESSION_COOKIE_NAME="hello_department_session",
    SESSION_COOKIE_HTTPONLY=True,
    SESSION_COOKIE_SAMESITE="Lax",
    SESSION_COOKIE_SECURE=BASE_URL.startswith("https://"),
)

oauth = OAuth(app)
oauth.register(
    "passport",
    client_id=os.environ.get("RP_CLIENT_ID"),
    client_secret=os.environ.get("RP_CLIENT_SECRET"),
    server_metadata_url=f"{ISSUER}/.well-known/openid-configuration",
    client_kwargs={"scope": "openid profile email municipal_accounts", "code_challenge_method": "S256"},
)

PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Hello Department</title>
<meta name="viewport" content="width=device-width, initial-scale=1"></head>
<body>
<h1>Hello Department</h1>
{% if error %}<p role="alert">{{ error }}</p>{% endif %}
{% if user %}
  <p>Signed in as <strong id="name">{{ user.get("name") or user.get("sub") }}</strong></p>
  <dl>
    <dt>Email</dt><dd id="email">{{ user.get("email", "") }}</dd>
    <dt>Email verified</dt><dd>{{ "yes" if user.get("email_verified") else "no" }}</dd>
    <dt>Subject</dt><dd>{{ user.get("sub") }}</dd>
    <dt>Sign-in strength (acr)</dt><dd id="acr">{{ user.get("acr", "") }}</dd>
    <dt>Methods (amr)</dt><dd id="amr">{{ (user.get("amr") or [])|join(", ") }}</dd>
  </dl>
  <h2>Municipal accounts you may act on</h2>
  {% if user.get("municipal_accounts") %}
  <ul id="accounts">{% for a in user["municipal_accounts"] %}
    <li>{{ a.account_number }} ({{ a.account_type }}, {{ a.role }})</li>{% endfor %}</ul>
  {% else %}<p>None linked yet: link one on eCitizen Passport under My account.</p>{% endif %}
  <form method="post" action="{{ url_for('logout') }}">
    <input type="hidden" name="csrf" value="{{ csrf }}">
    <button type="submit">Sign out</button>
  </form>
{% else %}
  <p>A department service that lets residents sign in with eCitizen Passport.</p>
  <form method="post" action="{{ url_for('login') }}">
    <input type="hidden" name="csrf" value="{{ csrf }}">
    <button type="submit">Sign in with eCitizen Passport</button>
    <button type="submit" name="strength" value="mfa">Sign in with a second factor</button>
  </form>
{% endif %}
</body></html>"""


def _csrf() -> str:
    if "csrf" not in session:
        session["csrf"] = secrets.token_urlsafe(16)
    return session["csrf"]


def _check_csrf() -> None:
    sent = request.form.get("csrf", "")
    if not hmac.compare_digest(sent, session.get("csrf", "")):
        abort(400)


def _page(error: str | None = None, status: int = 200):
    return render_template_string(PAGE, user=session.get("user"), csrf=_csrf(), error=error), status


@app.errorhandler(requests.RequestException)
def idp_unreachable(exc):
    app.logger.warning("the identity provider is not reachable: %s", type(exc).__name__)
    return _page("eCitizen Passport cannot be reached right now. Try again in a minute.", 502)


@app.get("/")
def home():
    return _page()


@app.get("/healthz")
def healthz():
    return "ok"


# The IdP's authentication strengths (discovery lists them in acr_values_supported), weakest first.
ACR_RANK = {"urn:ecitizen:acr:password": 1, "urn:ecitizen:acr:mfa": 2, "urn:ecitizen:acr:phishing-resistant": 3}


@app.post("/login")
def login():
    _check_csrf()
    wanted = "urn:ecitizen:acr:mfa" if request.form.get("strength") == "mfa" else None
    session["wanted_acr"] = wanted
    extra = {"acr_values": wanted} if wanted else {}
    # Authlib adds state, nonce and the PKCE S256 challenge and keeps them in our session.
    return oauth.passport.authorize_redirect(f"{BASE_URL}/callback", **extra)


@app.get("/callback")
def callback():
    if "error" in request.args:
        return _page(f"Sign-in did not complete: {request.args['error']}", 400)
    metadata = oauth.passport.load_server_metadata()
    # RFC 9207: the authorization response names its issuer; refuse a response from another one.
    iss = request.args.get("iss")
    if (iss or metadata.get("authorization_response_iss_parameter_supported")) and iss != metadata["issuer"]:
        return _page("The sign-in response came from an unexpected issuer.", 400)
    try:
        # Exchanges the code (with the PKCE verifier) and validates the ID token:
        # signature against the IdP's JWKS, iss, aud, exp, nonce.
        token = oauth.passport.authorize_access_token()
    except AuthlibBaseError as exc:
        return _page(f"Sign-in failed: {exc.error}", 400)
    claims = token.get("userinfo") or {}
    wanted = session.get("wanted_acr")
    # acr_values is a request, not a guarantee: check what the ID token says actually happened.
    if wanted and ACR_RANK.get(claims.get("acr"), 0) < ACR_RANK[wanted]:
        return _page("This service needs a stronger sign-in than the one you completed.", 403)
    session.clear()
    session["user"] = {k: claims.get(k) for k in ("sub", "name", "email", "email_verified", "acr", "amr",
                                                  "municipal_accounts")}
    session["id_token"] = token.get("id_token")
    session["sid"] = claims.get("sid")
    return redirect(url_for("home"))


# OpenID Connect Back-Channel Logout: the IdP tells us when a resident's IdP session ended. Our
# sessions live in signed cookies, so we remember ended IdP session ids and drop matching sessions
# on their next request (a database-backed app would delete the session rows instead).
ENDED_SIDS: set[str] = set()
LOGOUT_EVENT = "http://schemas.openid.net/event/backchannel-logout"


@app.before_request
def _drop_sessions_ended_at_the_idp():
    if session.get("sid") and session["sid"] in ENDED_SIDS:
        session.clear()


@app.post("/backchannel-logout")
def backchannel_logout():
    """Validate the IdP's logout token (signature with the cached JWKS, iss, aud, iat, jti, the
    logout event, a sid, no nonce) and end our sessions with that sid."""
    raw = request.form.get("logout_token", "")
    metadata = oauth.passport.load_server_metadata()
    options = {"iss": {"essential": True, "value": metadata["issuer"]},
               "aud": {"essential": True, "value": os.environ.get("RP_CLIENT_ID")},
               "iat": {"essential": True}, "jti": {"essential": True}}
    claims = None
    for refresh in (False, True):  # the cached key set, then a fresh one (the IdP may have rotated keys)
        try:
            keys = JsonWebKey.import_key_set(oauth.passport.fetch_jwk_set(force=refresh))
            claims = jwt.decode(raw, keys, claims_options=options)
            claims.validate(leeway=60)
            break
        except (JoseError, ValueError):
            claims = None
    if claims is None:
        return "", 400
    if LOGOUT_EVENT not in (claims.get("events") or {}) or "nonce" in claims or not claims.get("sid"):
        return "", 400
    ENDED_SIDS.add(claims["sid"])
    return "", 200, {"Cache-Control": "no-store"}


@app.post("/logout")
def logout():
    _check_csrf()
    id_token = session.get("id_token")
    session.clear()
    if not id_token:
        return redirect(url_for("home"))
    # RP-initiated logout: the IdP ends its session and sends the browser back here.
    return oauth.passport.logout_redirect(post_logout_redirect_uri=f"{BASE_URL}/",
                                          id_token_hint=id_token)


if __name__ == "__main__":
    from werkzeug.serving import WSGIRequestHandler, run_simple

    class PathOnlyLog(WSGIRequestHandler):
        """Log request paths without their query strings (the callback's carries the code)."""

        def log_request(self, code="-", size="-"):
            self.path = self.path.split("?", 1)[0]  # the response is already built
            super().log_request(code, size)

    run_simple(os.environ.get("RP_HOST", "127.0.0.1"), int(os.environ.get("RP_PORT", "5001")), app,
               threaded=True, request_handler=PathOnlyLog)
