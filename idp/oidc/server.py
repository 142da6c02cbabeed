"""Authlib's authorization server wired to our storage and policy: PKCE S256 for every
client, single-use codes with replay revocation, rotating refresh tokens with reuse
detection, RFC 9068 access tokens, private_key_jwt client authentication."""
from __future__ import annotations

import re
import time
from datetime import datetime, timezone

from authlib.integrations.flask_oauth2 import AuthorizationServer, ResourceProtector
from authlib.integrations.flask_oauth2.errors import raise_http_exception
from authlib.oauth2.rfc6749 import grants
from authlib.oauth2.rfc6749.errors import (
    InvalidClientError,
    InvalidRequestError,
    InvalidScopeError,
    MissingAuthorizationError,
    OAuth2Error,
    UnsupportedResponseTypeError,
    UnsupportedTokenTypeError,
)
from authlib.oauth2.rfc6750 import BearerTokenGenerator, BearerTokenValidator, InvalidTokenError
from authlib.oauth2.rfc7009 import RevocationEndpoint
from authlib.oauth2.rfc7523 import JWTBearerClientAssertion
from authlib.oauth2.rfc7636 import CodeChallenge
from authlib.oauth2.rfc7662 import IntrospectionEndpoint
from authlib.oidc.core import UserInfo
from authlib.oidc.core.grants import OpenIDCode
from flask import current_app, g, request
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet

from idp.extensions import db
from idp.models import User
from idp.observability import count_token
from idp.oidc import claims as claim_rules
from idp.services import audit, clients, tokens
from idp.services.keys import JWS_ALGORITHMS, keyring


class Protector(ResourceProtector):
    """Authlib's resource protector, answering a request that carries no bearer token (none at all,
    or another scheme) as RFC 6750 §3.1 asks: 401 with a bare ``Bearer`` challenge and no error code
    (Authlib sends a made-up ``missing_authorization``)."""

    def raise_error_response(self, error):
        if isinstance(error, (MissingAuthorizationError, UnsupportedTokenTypeError)):
            if request.headers.get("Authorization", "").strip().lower().startswith("bearer"):
                error = InvalidTokenError()  # the Bearer scheme with an empty token
            else:
                raise_http_exception(401, "{}", {"WWW-Authenticate": "Bearer", "Content-Type": "application/json",
                                                "Cache-Control": "no-store"})
        super().raise_error_response(error)


require_oauth = Protector()


def _issuer() -> str:
    return current_app.config["IDP_SETTINGS"].issuer


class S256Required(CodeChallenge):
    """PKCE with S256, required of every client (Authlib only enforces it for public ones
    and defaults to ``plain``)."""

    SUPPORTED_CODE_CHALLENGE_METHOD = ["S256"]

    def validate_code_challenge(self, grant, redirect_uri):
        data = grant.request.payload.data
        if not data.get("code_challenge"):
            raise InvalidRequestError("PKCE is required: send code_challenge with code_challenge_method=S256")
        if data.get("code_challenge_method") != "S256":
            raise InvalidRequestError("code_challenge_method must be S256")
        super().validate_code_challenge(grant, redirect_uri)

    def validate_code_verifier(self, grant, result):
        if not grant.request.form.get("code_verifier"):
            raise InvalidRequestError("Missing 'code_verifier'")
        super().validate_code_verifier(grant, result)

    def get_authorization_code_challenge(self, authorization_code):
        return authorization_code.code_challenge

    def get_authorization_code_challenge_method(self, authorization_code):
        """Always S256: only S256 codes are issued, so a stored "plain" (or none) is never trusted."""
        return "S256"


SCOPE_TOKEN = re.compile(r"[\x21\x23-\x5b\x5d-\x7e]+")  # RFC 6749 §3.3 scope-token


class RegisteredScopes:
    """Grant mixin: the requested scope must be well formed (RFC 6749 §3.3: printable tokens
    separated by spaces, else ``invalid_request``) and registered for the client (else
    ``invalid_scope``): a scope is never silently dropped. Authlib only checks scopes against a
    server-wide list, and its ``get_allowed_scope`` quietly removes the rest."""

    def validate_requested_scope(self):
        scope = self.request.payload.scope
        if not scope:
            return
        requested = [token for token in scope.split(" ") if token]
        if not requested or not all(SCOPE_TOKEN.fullmatch(token) for token in requested):
            raise InvalidRequestError("scope must be scope names separated by spaces")
        if not set(requested) <= set(self.request.client.scope.split()):
            raise InvalidScopeError()


class IdTokens(OpenIDCode):
    """ID tokens signed with our current key, carrying sid, acr and amr."""

    def resolve_client_private_key(self, client):
        return keyring().signing

    def get_client_algorithm(self, client):
        return keyring().alg

    def get_encode_header(self, client):
        ring = keyring()
        return {"alg": ring.alg, "kid": ring.signing_kid, "typ": "JWT"}

    def get_client_claims(self, client):
        now = int(time.time())
        return {"iss": _issuer(), "aud": client.get_client_id(), "azp": client.get_client_id(), "iat": now,
                "exp": now + current_app.config["IDP_SETTINGS"].id_token_lifetime}

    def get_authorization_code_claims(self, authorization_code):
        result = super().get_authorization_code_claims(authorization_code)
        if authorization_code.sid:
            result["sid"] = authorization_code.sid
        return result

    def exists_nonce(self, nonce, request):
        return False  # codes are single-use, so a replayed nonce cannot yield a second ID token

    def generate_user_info(self, user, scope):
        return UserInfo(claim_rules.for_scope(user, scope))


class CodeGrant(RegisteredScopes, grants.AuthorizationCodeGrant):
    TOKEN_ENDPOINT_AUTH_METHODS = ["client_secret_basic", "client_secret_post", "private_key_jwt", "none"]

    @staticmethod
    def validate_authorization_redirect_uri(request, client):
        """The registered redirect URI the request names (byte-for-byte), or the only one registered.

        The error never echoes the URI sent (Authlib's does, and fails with a 500 on a backslash or
        a non-ASCII character in it)."""
        requested = request.payload.redirect_uri
        if requested:
            if not client.check_redirect_uri(requested):
                raise InvalidRequestError("redirect_uri is not registered for this client")
            return requested
        default = client.get_default_redirect_uri()
        if not default:
            raise InvalidRequestError("redirect_uri is required: the client registered several")
        return default

    def save_authorization_code(self, code, request):
        context = g.oidc_auth_context
        tokens.save_code(code, client_id=request.client.get_client_id(), user_id=request.user.id,
                         redirect_uri=request.payload.redirect_uri or request.client.get_default_redirect_uri(),
                         scope=request.payload.scope, nonce=request.payload.data.get("nonce"),
                         code_challenge=request.payload.data.get("code_challenge"),
                         code_challenge_method=request.payload.data.get("code_challenge_method"),
                         sid=context["sid"], auth_time=context["auth_time_dt"], acr=context["acr"],
                         amr=context["amr"])

    def query_authorization_code(self, code, client):
        return tokens.consume_code(code, client.get_client_id())

    def delete_authorization_code(self, authorization_code):
        """Nothing to do: the code was consumed atomically when it was looked up."""

    def authenticate_user(self, authorization_code):
        g.oidc_token_context = {
            "sid": authorization_code.sid, "auth_time": authorization_code.get_auth_time(),
            "auth_time_dt": authorization_code.auth_time, "acr": authorization_code.acr,
            "amr": authorization_code.get_amr(), "code_id": authorization_code.id,
        }
        user = db.session.get(User, authorization_code.user_id)
        return user if user is not None and user.is_active else None


class RefreshGrant(grants.RefreshTokenGrant):
    TOKEN_ENDPOINT_AUTH_METHODS = ["client_secret_basic", "client_secret_post", "private_key_jwt", "none"]
    INCLUDE_NEW_REFRESH_TOKEN = True

    def authenticate_refresh_token(self, refresh_token):
        row = tokens.find_refresh(refresh_token)
        client = self.request.client
        if row is None or row.client_id != client.get_client_id():
            return None
        requested = self.request.payload.scope
        if requested and not set(requested.split()) <= set(row.scope.split()):
            raise InvalidScopeError()
        if row.revoked_at is not None:
            return None
        if row.rotated_at is not None or not tokens.claim_rotation(row):
            revoked = tokens.revoke_grant(row.grant_id)
            audit.record("token.refresh_reuse_detected", outcome="failure", user_id=row.user_id,
                         client_id=row.client_id, tokens_revoked=revoked)
            return None
        if row.grant_expires_at and row.grant_expires_at <= datetime.now(timezone.utc):
            return None
        return row

    def authenticate_user(self, refresh_token):
        g.oidc_token_context = {
            "sid": refresh_token.sid, "auth_time": int(refresh_token.auth_time.timestamp()) if refresh_token.auth_time else None,
            "auth_time_dt": refresh_token.auth_time, "acr": refresh_token.acr, "amr": list(refresh_token.amr or []),
            "grant_id": refresh_token.grant_id, "grant_expires_at": refresh_token.grant_expires_at,
        }
        user = db.session.get(User, refresh_token.user_id)
        return user if user is not None and user.is_active else None

    def revoke_old_credential(self, refresh_token):
        """Nothing more: the old refresh token was marked rotated when it was accepted."""


class InvalidTargetError(OAuth2Error):
    """RFC 8707: the requested resource is unknown or not allowed."""
    error = "invalid_target"


class ClientCredentialsGrant(RegisteredScopes, grants.ClientCredentialsGrant):
    """Department-to-department tokens: ``resource`` (RFC 8707) names the API the token is for and
    becomes its ``aud``; without it the token is for the client itself."""
    TOKEN_ENDPOINT_AUTH_METHODS = ["client_secret_basic", "client_secret_post", "private_key_jwt"]

    def validate_token_request(self):
        super().validate_token_request()
        resources = request.form.getlist("resource")
        if len(resources) > 1:
            raise InvalidTargetError("ask for one resource per token request")
        if resources:
            if clients.find_api_owner(resources[0]) is None:
                raise InvalidTargetError("resource is not a registered API")
            g.oidc_token_context = {"audience": resources[0]}


class PrivateKeyJwt(JWTBearerClientAssertion):
    CLIENT_AUTH_METHOD = "private_key_jwt"

    def get_audiences(self):
        return [_issuer() + "/token", _issuer()]

    def validate_jti(self, claims, jti):
        ttl = max(60, int(claims.get("exp", 0)) - int(time.time()) + 120)
        return current_app.extensions["idp.store"].add(f"assertion-jti:{claims['iss']}:{jti}", "1", ttl)

    def resolve_client_public_key(self, client):
        return KeySet.import_key_set(client.jwks or {"keys": []})

    def process_assertion_claims(self, assertion, resolve_key):
        """Verify the assertion with the client's registered keys and a pinned algorithm list
        (Authlib would accept any algorithm joserfc recommends, HMAC ones included)."""
        try:
            token = jwt.decode(assertion, resolve_key, algorithms=list(JWS_ALGORITHMS))
        except JoseError as exc:
            raise InvalidClientError(description="the client assertion is not valid") from exc
        self.verify_claims(token.claims)
        return token.claims


def _query_client(client_id):
    return clients.find_client(client_id, cached=True)


def _save_token(token, request):
    context = g.pop("oidc_token_context", None) or {}
    client = request.client
    user = request.user
    # One commit for the token and its audit event (token issuance is the hottest write path).
    audit.record("token.issued", user_id=user.id if user else None, client_id=client.get_client_id(),
                 grant_type=request.payload.grant_type, commit=False)
    tokens.save(token, client_id=client.get_client_id(), user_id=user.id if user else None,
                scope=token.get("scope", ""), context=context, grant_id=context.get("grant_id"),
                code_id=context.get("code_id"), grant_expires_at=context.get("grant_expires_at"))
    count_token(request.payload.grant_type)


def _access_token(client, grant_type, user, scope):
    context = g.get("oidc_token_context") or {}
    return tokens.access_token(client.get_client_id(), user.sub if user else None, scope or "", context)


def _refresh_token(client, grant_type, user, scope):
    # Refresh tokens only for residents who granted offline_access.
    if user is None or "offline_access" not in (scope or "").split():
        return None
    return tokens.new_refresh_token()


class TokenGenerator(BearerTokenGenerator):
    """Bearer tokens whose refresh token is left out when none was generated."""

    def generate(self, *args, **kwargs):
        token = super().generate(*args, **kwargs)
        if token.get("refresh_token") is None:
            token.pop("refresh_token", None)
        return token


def _expires_in(client, grant_type):
    return current_app.config["IDP_SETTINGS"].access_token_lifetime


class Revocation(RevocationEndpoint):
    CLIENT_AUTH_METHODS = ["client_secret_basic", "client_secret_post", "private_key_jwt", "none"]

    def query_token(self, token_string, token_type_hint):
        if token_type_hint == "refresh_token":
            return tokens.find_refresh(token_string) or tokens.find_access(token_string)
        return tokens.find_access(token_string) or tokens.find_refresh(token_string)

    def revoke_token(self, token, request):
        tokens.revoke_row(token)
        audit.record("token.revoked", user_id=token.user_id, client_id=token.client_id)


class Introspection(IntrospectionEndpoint):
    CLIENT_AUTH_METHODS = ["client_secret_basic", "client_secret_post", "private_key_jwt"]

    def query_token(self, token_string, token_type_hint):
        if token_type_hint == "refresh_token":
            return tokens.find_refresh(token_string) or tokens.find_access(token_string)
        return tokens.find_access(token_string) or tokens.find_refresh(token_string)

    def check_permission(self, token, client, request):
        return not client.is_public

    def authenticate_token(self, request, client):
        token = super().authenticate_token(request, client)
        # Visible to the client it was issued to and to the API it is for; to anyone else it is
        # reported as inactive, exactly like an unknown one.
        if token is None or token.client_id == client.get_client_id():
            return token
        return token if token.audience and token.audience == client.api_resource else None

    def introspect_token(self, token):
        user = db.session.get(User, token.user_id) if token.user_id else None
        return {"active": True, "client_id": token.client_id, "scope": token.scope, "token_type": "Bearer",
                "sub": user.sub if user else token.client_id, "aud": token.audience or token.client_id, "iss": _issuer(),
                "exp": int(token.access_expires_at.timestamp()), "iat": int(token.issued_at.timestamp())}


class AccessTokenValidator(BearerTokenValidator):
    def authenticate_token(self, token_string):
        return tokens.find_access(token_string)


class Server(AuthorizationServer):
    """Authlib's authorization server, with error descriptions that never echo the request."""

    def authenticate_client(self, request, methods, endpoint="token"):
        try:
            return super().authenticate_client(request, methods, endpoint)
        except InvalidClientError as exc:
            # Authlib lists the methods it tried (a Python list); say only what failed.
            exc.description = "client authentication failed"
            raise

    def get_authorization_grant(self, request):
        try:
            return super().get_authorization_grant(request)
        except (UnsupportedResponseTypeError, ValueError):
            # Authlib writes the response_type sent into the description (and raises ValueError when
            # it holds a character a description may not): answer with a fixed one instead.
            client = self.query_client(request.payload.client_id) if request.payload.client_id else None
            redirect_uri = None
            if client is not None:
                try:
                    redirect_uri = CodeGrant.validate_authorization_redirect_uri(request, client)
                except InvalidRequestError:
                    pass  # unverifiable: the error is shown on our own page
            raise UnsupportedResponseTypeError(None, description="only response_type=code is supported",
                                               redirect_uri=redirect_uri) from None


def authorization_server() -> AuthorizationServer:
    """This application's authorization server."""
    return current_app.extensions["idp.authorization_server"]


def init_server(app) -> None:
    """Create this app's authorization server with our grants, client authentication and endpoints."""
    authorization = Server(app, query_client=_query_client, save_token=_save_token)
    app.extensions["idp.authorization_server"] = authorization
    authorization.register_token_generator("default", TokenGenerator(_access_token, _refresh_token, _expires_in))
    authorization.register_client_auth_method(PrivateKeyJwt.CLIENT_AUTH_METHOD, PrivateKeyJwt(validate_jti=True))
    authorization.register_grant(CodeGrant, [S256Required(required=True), IdTokens(require_nonce=False)])
    authorization.register_grant(RefreshGrant)
    authorization.register_grant(ClientCredentialsGrant)
    authorization.register_endpoint(Revocation)
    authorization.register_endpoint(Introspection)


# Stateless (it looks tokens up in the current app's database), so one validator serves every app.
require_oauth.register_token_validator(AccessTokenValidator())
