"""Registering department clients and checking their secrets (keyed digests, not hashes)."""
from __future__ import annotations

import hashlib
import hmac
import secrets
from datetime import datetime, timedelta
from urllib.parse import unquote, urlsplit, urlunsplit

from flask import current_app

from idp.extensions import db
from idp.models import Client
from idp.models.types import utcnow
from idp.oidc.claims import SCOPES as SUPPORTED_SCOPES
from idp.security.crypto import keyed_digests
from idp.services import DomainError, client_cache

SUPPORTED_GRANTS = ("authorization_code", "refresh_token", "client_credentials")
LOOPBACK_HOSTS = ("localhost", "127.0.0.1", "[::1]")


def secret_digest(secret: str) -> str:
    """HMAC-SHA256 of a client secret under the server key."""
    key = current_app.config["IDP_SETTINGS"].secret_key.encode()
    return hmac.new(key, b"client-secret:" + secret.encode(), hashlib.sha256).hexdigest()


def verify_secret(client: Client, secret: str | None) -> bool:
    """Whether ``secret`` is the client's current secret, or its previous one within the overlap
    window after a rotation (IDP_CLIENT_SECRET_OVERLAP)."""
    if not client.client_secret_digest or not secret:
        return False
    given = keyed_digests(secret, "client-secret")  # == secret_digest under IDP_SECRET_KEY and each fallback
    current = any(hmac.compare_digest(client.client_secret_digest, digest) for digest in given)
    previous = bool(client.previous_secret_digest) and any(
        hmac.compare_digest(client.previous_secret_digest, digest) for digest in given)
    return current or (previous and client.previous_secret_expires_at is not None
                       and utcnow() < client.previous_secret_expires_at)


CLIENT_AUTH = "client-auth"


def client_auth_blocked(client_id: str, ip: str) -> bool:
    """Whether failed client authentications of ``client_id`` from ``ip`` reached the limit
    (``IDP_LOGIN_MAX_FAILURES`` per ``IDP_LOGIN_FAILURE_WINDOW``): then the token, revocation and
    introspection endpoints refuse without checking the credentials. Counting per address keeps
    the department's own servers working while someone elsewhere guesses."""
    from idp.services import throttle

    limit = current_app.config["IDP_SETTINGS"].login_max_failures
    return throttle.failures(CLIENT_AUTH, f"{client_id}|{ip}") >= limit


def count_client_auth_failure(client_id: str, ip: str) -> None:
    """Count one failed client authentication (see :func:`client_auth_blocked`)."""
    from idp.services import throttle

    throttle.add_failure(CLIENT_AUTH, f"{client_id}|{ip}", current_app.config["IDP_SETTINGS"].login_failure_window)


def validate_uri(uri: str, what: str) -> str:
    """An absolute https URI (http only on loopback), without a fragment, user information,
    wildcards or dot-segments, made of printable ASCII only (an international host name in its
    xn-- form); returned normalised: scheme and host in lower case, no default port. The
    normalised form is what is stored and what requests must then match byte for byte."""
    parts = urlsplit(uri or "")
    if parts.scheme not in ("https", "http") or not parts.hostname:
        raise DomainError("invalid_uri", f"{what} must be an absolute https URL")
    if any(not 0x21 <= ord(ch) <= 0x7E for ch in uri) or "\\" in uri:
        raise DomainError("invalid_uri", f"{what} must be a URL without spaces, control or non-ASCII characters "
                                         "(write an international host name in its xn-- form)")
    if "*" in uri:
        raise DomainError("invalid_uri", f"{what} must be one exact URL, not a pattern")
    try:
        port = parts.port
    except ValueError:
        raise DomainError("invalid_uri", f"{what} has an invalid port") from None
    if parts.scheme == "http" and parts.hostname not in ("localhost", "127.0.0.1", "::1"):
        raise DomainError("invalid_uri", f"{what} must use https (http is allowed only for localhost)")
    if parts.fragment or "#" in uri:
        raise DomainError("invalid_uri", f"{what} must not contain a fragment")
    if "@" in parts.netloc:
        raise DomainError("invalid_uri", f"{what} must not contain user information")
    if any(unquote(segment) in (".", "..") for segment in parts.path.split("/")):
        raise DomainError("invalid_uri", f"{what} must not contain . or .. path segments")
    host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
    if port is not None and port != {"https": 443, "http": 80}[parts.scheme]:
        host += f":{port}"
    return urlunsplit((parts.scheme, host, parts.path, parts.query, ""))


def create_client(name: str, redirect_uris, *, post_logout_redirect_uris=(), backchannel_logout_uri=None,
                  public: bool = False, scope: str = "openid profile email",
                  grant_types=("authorization_code", "refresh_token"), first_party: bool = False,
                  jwks: dict | None = None, token_endpoint_auth_method: str | None = None,
                  api_resource: str | None = None):
    """Register a client; returns (client, secret) — the secret (None for public clients) is
    shown once and only its digest is kept."""
    name = (name or "").strip()
    if not name or len(name) > 200:
        raise DomainError("invalid_name", "name must be 1 to 200 characters")
    grant_types = list(dict.fromkeys(grant_types))
    for grant in grant_types:
        if grant not in SUPPORTED_GRANTS:
            raise DomainError("invalid_grant_type", f"unsupported grant type: {grant} (use one of {', '.join(SUPPORTED_GRANTS)})")
    redirect_uris = [validate_uri(u, "redirect URI") for u in redirect_uris]
    if "authorization_code" in grant_types and not redirect_uris:
        raise DomainError("invalid_redirect_uri", "at least one redirect URI is needed for authorization_code")
    post_logout = [validate_uri(u, "post-logout redirect URI") for u in post_logout_redirect_uris]
    if backchannel_logout_uri:
        backchannel_logout_uri = validate_uri(backchannel_logout_uri, "back-channel logout URI")
    scopes = scope.split()
    for item in scopes:
        if item not in SUPPORTED_SCOPES:
            raise DomainError("invalid_scope", f"unsupported scope: {item} (use {' '.join(SUPPORTED_SCOPES)})")
    if public and "client_credentials" in grant_types:
        raise DomainError("invalid_grant_type", "a public client cannot use client_credentials")
    if api_resource:
        _check_api_resource(api_resource)
    method = token_endpoint_auth_method or ("none" if public else ("private_key_jwt" if jwks else "client_secret_basic"))
    if method not in ("none", "client_secret_basic", "client_secret_post", "private_key_jwt"):
        raise DomainError("invalid_auth_method", "unsupported token endpoint authentication method")
    if method == "private_key_jwt" and not jwks:
        raise DomainError("invalid_jwks", "private_key_jwt needs the client's public keys (jwks)")
    secret = None if public or method == "private_key_jwt" else secrets.token_urlsafe(32)
    client = Client(client_id=secrets.token_urlsafe(16), name=name, redirect_uris=redirect_uris,
                    post_logout_redirect_uris=post_logout, backchannel_logout_uri=backchannel_logout_uri,
                    scope=" ".join(dict.fromkeys(scopes)), grant_types=grant_types, response_types=["code"],
                    token_endpoint_auth_method=method, jwks=jwks, first_party=first_party,
                    client_secret_digest=secret_digest(secret) if secret else None, api_resource=api_resource or None)
    db.session.add(client)
    db.session.commit()
    return client, secret


def _check_api_resource(uri: str) -> None:
    validate_uri(uri, "API resource")
    if len(uri) > 2000:
        raise DomainError("invalid_uri", "API resource must be at most 2000 characters")
    if db.session.scalar(db.select(Client.id).where(Client.api_resource == uri)) is not None:
        raise DomainError("invalid_resource", "another client already registered this API resource")


def find_api_owner(resource: str | None) -> Client | None:
    """The active client whose API is ``resource`` (an RFC 8707 resource indicator)."""
    if not resource or len(resource) > 2000:
        return None
    owner = db.session.scalar(db.select(Client).where(Client.api_resource == resource))
    return None if owner is None or owner.disabled else owner


def find_client(client_id: str | None, *, cached: bool = False) -> Client | None:
    """The active client ``client_id``. ``cached``: a read-only copy kept between requests (see
    :mod:`idp.services.client_cache`), for the OAuth endpoints that look their caller up each time."""
    if not client_id or len(client_id) > 64:
        return None
    if cached:
        client = client_cache.lookup(client_id)
    else:
        client = db.session.scalar(db.select(Client).where(Client.client_id == client_id))
    return None if client is None or client.disabled else client


def list_clients() -> list[Client]:
    return list(db.session.scalars(db.select(Client).order_by(Client.created_at)))


def describe(client: Client) -> dict:
    """The registered metadata of a client (never its secret)."""
    return {
        "client_id": client.client_id, "client_name": client.name, "redirect_uris": client.redirect_uris,
        "post_logout_redirect_uris": client.post_logout_redirect_uris,
        "backchannel_logout_uri": client.backchannel_logout_uri, "scope": client.scope,
        "grant_types": client.grant_types, "response_types": client.response_types,
        "token_endpoint_auth_method": client.token_endpoint_auth_method, "first_party": client.first_party,
        "api_resource": client.api_resource, "listed": client.listed, "category": client.category,
        "service_url": client.service_url, "keywords": client.keywords,
    }


def update_client(client: Client, *, name: str, redirect_uris, post_logout_redirect_uris=(),
                  backchannel_logout_uri: str | None = None, scope: str, first_party: bool) -> dict:
    """Change a client's registration (validated like at creation); returns what changed as
    {field: [before, after]} for the audit trail."""
    name = (name or "").strip()
    if not name or len(name) > 200:
        raise DomainError("invalid_name", "name must be 1 to 200 characters")
    redirect_uris = [validate_uri(u, "redirect URI") for u in redirect_uris]
    if "authorization_code" in (client.grant_types or []) and not redirect_uris:
        raise DomainError("invalid_redirect_uri", "at least one redirect URI is needed for authorization_code")
    post_logout = [validate_uri(u, "post-logout redirect URI") for u in post_logout_redirect_uris]
    if backchannel_logout_uri:
        backchannel_logout_uri = validate_uri(backchannel_logout_uri, "back-channel logout URI")
    scopes = list(dict.fromkeys(scope.split()))
    unknown = [s for s in scopes if s not in SUPPORTED_SCOPES]
    if unknown or "openid" not in scopes:
        raise DomainError("invalid_scope", f"scopes must include openid and come from: {' '.join(SUPPORTED_SCOPES)}")
    wanted = {"name": name, "redirect_uris": redirect_uris, "post_logout_redirect_uris": post_logout,
              "backchannel_logout_uri": backchannel_logout_uri or None, "scope": " ".join(scopes),
              "first_party": bool(first_party)}
    changes = {key: [getattr(client, key), value] for key, value in wanted.items() if getattr(client, key) != value}
    for key, (_, value) in changes.items():
        setattr(client, key, value)
    db.session.commit()
    return changes


def set_disabled(client: Client, disabled: bool) -> None:
    """Disable (no new sign-ins or tokens; live tokens revoked) or enable a client."""
    from idp.models import Token
    from idp.models.types import utcnow

    client.disabled = disabled
    if disabled:
        db.session.execute(db.update(Token).where(Token.client_id == client.client_id, Token.revoked_at.is_(None))
                           .values(revoked_at=utcnow()))
    db.session.commit()


def rotate_secret(client: Client) -> tuple[str, datetime | None]:
    """A new secret for a confidential client, shown once; returns (secret, until when the old one
    still works). The old secret keeps working for IDP_CLIENT_SECRET_OVERLAP hours so the
    department can switch without downtime (None: it stopped at once). A secret older than the
    previous one never works again. The caller audits the rotation."""
    if client.client_secret_digest is None:
        raise DomainError("no_secret", "this client does not use a client secret")
    overlap = timedelta(hours=current_app.config["IDP_SETTINGS"].client_secret_overlap)
    secret = secrets.token_urlsafe(32)
    until = utcnow() + overlap if overlap else None
    client.previous_secret_digest = client.client_secret_digest if until else None
    client.previous_secret_expires_at = until
    client.client_secret_digest = secret_digest(secret)
    db.session.commit()
    return secret, until


LOGO_TYPES = {b"\x89PNG\r\n\x1a\n": "image/png", b"\xff\xd8\xff": "image/jpeg"}
MAX_LOGO_BYTES = 64 * 1024


def check_branding(purpose: str, logo: bytes | None) -> tuple[str, str | None]:
    """The cleaned purpose line and the logo's type; DomainError when either is not acceptable
    (a logo is a PNG or JPEG, checked by content, of at most 64 KB)."""
    text = " ".join((purpose or "").split())
    if len(text) > 300:
        raise DomainError("invalid_purpose", "the purpose line is at most 300 characters")
    kind = None
    if logo:
        kind = next((t for magic, t in LOGO_TYPES.items() if logo.startswith(magic)), None)
        if kind is None or len(logo) > MAX_LOGO_BYTES:
            raise DomainError("invalid_logo", "the logo must be a PNG or JPEG file of at most 64 KB")
    return text, kind


def set_branding(client: Client, *, purpose: str, logo: bytes | None = None) -> dict:
    """Set the purpose line and (optionally a new) logo residents see on the sign-in and consent
    pages; returns what changed."""
    text, kind = check_branding(purpose, logo)
    changes = {}
    if text != client.purpose:
        changes["purpose"] = [client.purpose, text]
        client.purpose = text
    if logo:
        client.logo, client.logo_type = logo, kind
        changes["logo"] = ["", f"{kind}, {len(logo)} bytes"]
    db.session.commit()
    return changes


def from_authorize_url(url: str | None) -> tuple[Client, str] | None:
    """For a same-site ``/authorize?...`` URL: the (enabled) client and the registered redirect URI it
    names, or None when it names no client or an unregistered redirect URI."""
    from urllib.parse import parse_qs

    parts = urlsplit(url or "")
    if parts.path != "/authorize" or parts.netloc:
        return None
    query = parse_qs(parts.query)
    client = find_client((query.get("client_id") or [""])[0])
    if client is None:
        return None
    redirect_uri = (query.get("redirect_uri") or [None])[0] or client.get_default_redirect_uri()
    if not redirect_uri or redirect_uri not in (client.redirect_uris or []):
        return None
    return client, redirect_uri
