"""Checking tokens the IdP issued (RFC 9068 access tokens, back-channel logout tokens) against its
published keys, and getting ``client_credentials`` tokens to call other departments."""
from __future__ import annotations

import threading
import time

import requests
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet

LOGOUT_EVENT = "http://schemas.openid.net/event/backchannel-logout"
LEEWAY = 60


class TokenError(ValueError):
    """A token that must not be accepted; the message says why (safe to show the caller)."""


class TokenChecker:
    """Validates tokens with the IdP's JWKS (cached; fetched again once on an unknown key)."""

    def __init__(self, settings, client):
        self.settings = settings
        self.client = client  # Authlib's registered client: discovery metadata and JWKS
        self._service_tokens: dict[str, tuple[str, float]] = {}
        self._lock = threading.Lock()

    def _metadata(self) -> dict:
        return self.client.load_server_metadata()

    def _decode(self, raw: str, typ: str | None) -> jwt.Token:
        if not raw or raw.count(".") != 2:
            raise TokenError("not a signed JWT")
        for refresh in (False, True):  # the IdP may have rotated its keys since we cached them
            keys = KeySet.import_key_set(self.client.fetch_jwk_set(force=refresh))
            try:
                token = jwt.decode(raw, keys, algorithms=["RS256", "ES256"])
            except (JoseError, ValueError):
                continue
            break
        else:
            raise TokenError("signature not valid")
        if typ and str(token.header.get("typ", "")).lower().removeprefix("application/") != typ:
            raise TokenError(f"not a {typ} token")
        return token

    def _validate(self, claims: dict, audience: str, required: tuple[str, ...]) -> None:
        missing = [name for name in required if name not in claims]
        if missing:
            raise TokenError(f"claim {missing[0]} missing")
        if claims["iss"] != self._metadata()["issuer"]:
            raise TokenError("wrong issuer")
        audiences = claims["aud"] if isinstance(claims["aud"], list) else [claims["aud"]]
        if audience not in audiences:
            raise TokenError("wrong audience")
        now = time.time()
        if "exp" in claims and claims["exp"] < now - LEEWAY:
            raise TokenError("expired")
        if claims["iat"] > now + LEEWAY:
            raise TokenError("issued in the future")

    def check_bearer(self, header: str) -> dict:
        """The claims of a valid RFC 9068 access token for this department's API; checks with the
        IdP's introspection endpoint that it has not been revoked."""
        scheme, _, raw = header.partition(" ")
        if scheme.lower() != "bearer" or not raw.strip():
            raise TokenError("a bearer access token is required")
        raw = raw.strip()
        claims = dict(self._decode(raw, "at+jwt").claims)
        self._validate(claims, self.settings.api_resource, ("iss", "aud", "exp", "iat", "sub", "client_id", "jti"))
        endpoint = self._metadata().get("introspection_endpoint")
        if endpoint:
            answer = requests.post(endpoint, data={"token": raw, "token_type_hint": "access_token"},
                                   auth=(self.settings.client_id, self.settings.client_secret), timeout=5)
            if answer.status_code != 200 or answer.json().get("active") is not True:
                raise TokenError("revoked or no longer active")
        return claims

    def check_logout_token(self, raw: str) -> dict:
        """The claims of a valid back-channel logout token addressed to this client."""
        claims = dict(self._decode(raw, None).claims)
        self._validate(claims, self.settings.client_id, ("iss", "aud", "iat", "jti", "events"))
        if LOGOUT_EVENT not in (claims.get("events") or {}):
            raise TokenError("not a logout token")
        if "nonce" in claims:
            raise TokenError("a logout token carries no nonce")
        if not claims.get("sid") and not claims.get("sub"):
            raise TokenError("names no session")
        return claims

    def service_token(self, resource: str) -> str:
        """A ``client_credentials`` access token for another department's API (RFC 8707
        ``resource``), reused until shortly before it expires."""
        with self._lock:
            cached = self._service_tokens.get(resource)
            if cached and cached[1] > time.time() + 30:
                return cached[0]
        answer = requests.post(self._metadata()["token_endpoint"],
                               data={"grant_type": "client_credentials", "resource": resource},
                               auth=(self.settings.client_id, self.settings.client_secret), timeout=5)
        if answer.status_code != 200:
            raise requests.HTTPError(f"the IdP refused a token for {resource}: {answer.status_code}",
                                     response=answer)
        body = answer.json()
        with self._lock:
            self._service_tokens[resource] = (body["access_token"], time.time() + int(body.get("expires_in", 60)))
        return body["access_token"]
