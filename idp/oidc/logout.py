"""RP-initiated logout (OpenID Connect RP-Initiated Logout 1.0)."""
from __future__ import annotations

from authlib.common.urls import add_params_to_uri
from flask import current_app, redirect, render_template, request
from flask_wtf.csrf import validate_csrf
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet
from wtforms.validators import ValidationError

from idp.services import audit, clients
from idp.services.keys import JWS_ALGORITHMS, keyring
from idp.web import current


def hint_claims(hint: str | None) -> dict | None:
    """Claims of an ID token we issued (signature and issuer checked; expiry is not), as sent in
    ``id_token_hint`` to the end-session and authorization endpoints; None for anything else."""
    if not hint or len(hint) > 8192:
        return None
    ring = keyring()
    try:
        token = jwt.decode(hint, KeySet(list(ring.public_keys.values())), algorithms=list(JWS_ALGORITHMS))
    except (JoseError, ValueError):
        return None
    if token.claims.get("iss") != current_app.config["IDP_SETTINGS"].issuer:
        return None
    return token.claims


def _csrf_ok(token: str | None) -> bool:
    try:
        validate_csrf(token)
    except ValidationError:
        return False
    return True


def end_session():
    """Sign the resident out at the IdP and return to the client when its URI is registered."""
    params = request.values
    claims = hint_claims(params.get("id_token_hint"))
    client_id = params.get("client_id") or (claims or {}).get("aud")
    if isinstance(client_id, list):
        client_id = client_id[0] if len(client_id) == 1 else None
    if claims is not None and params.get("client_id") and params.get("client_id") != claims.get("aud"):
        claims, client_id = None, None
    client = clients.find_client(client_id) if client_id else None
    target = params.get("post_logout_redirect_uri")
    valid_target = bool(client and target and target in client.post_logout_redirect_uris)
    found = current.current_session()
    confirmed = request.method == "POST" and params.get("confirm") == "yes" and _csrf_ok(params.get("csrf_token"))
    # Without a valid hint for the signed-in resident (anyone's own ID token would do otherwise),
    # ask first, so a cross-site link cannot sign residents out silently.
    hint_for_session = claims is not None and found is not None and claims.get("sub") == found[1].sub
    if found is not None and not hint_for_session and not confirmed:
        return render_template("oidc/logout_confirm.html", client=client,
                               params={k: v for k, v in params.items() if k != "csrf_token"})
    if found is not None:
        ended = current.sign_out()
        audit.record("signout", user_id=found[1].id, client_id=client.client_id if client else None,
                     sid=ended.sid if ended else None, via="end_session")
    if valid_target:
        state = params.get("state")
        return redirect(add_params_to_uri(target, [("state", state)] if state else []), code=302)
    return render_template("auth/signed_out.html")
