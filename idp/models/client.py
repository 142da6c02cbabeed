"""OIDC relying parties (department applications)."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, Boolean, Integer, LargeBinary, String, Text, false
from sqlalchemy.orm import Mapped, mapped_column

from idp.extensions import db
from idp.models.types import UTCDateTime, utcnow


class Client(db.Model):
    __tablename__ = "clients"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    client_id: Mapped[str] = mapped_column(String(64), unique=True)
    # HMAC-SHA256 of the secret under the server key; None for public clients.
    client_secret_digest: Mapped[str | None] = mapped_column(String(128))
    # After a rotation: the previous secret's digest, accepted until previous_secret_expires_at.
    previous_secret_digest: Mapped[str | None] = mapped_column(String(128))
    previous_secret_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    name: Mapped[str] = mapped_column(String(200))
    redirect_uris: Mapped[list] = mapped_column(JSON, default=list)
    post_logout_redirect_uris: Mapped[list] = mapped_column(JSON, default=list)
    backchannel_logout_uri: Mapped[str | None] = mapped_column(String(2000))
    scope: Mapped[str] = mapped_column(Text, default="openid")
    grant_types: Mapped[list] = mapped_column(JSON, default=list)
    response_types: Mapped[list] = mapped_column(JSON, default=list)
    # client_secret_basic | client_secret_post | private_key_jwt | none
    token_endpoint_auth_method: Mapped[str] = mapped_column(String(32), default="client_secret_basic")
    jwks: Mapped[dict | None] = mapped_column(JSON)
    first_party: Mapped[bool] = mapped_column(Boolean, default=False)
    require_pkce: Mapped[bool] = mapped_column(Boolean, default=True)
    disabled: Mapped[bool] = mapped_column(Boolean, default=False)
    # Shown on the sign-in and consent pages so residents see which department is asking.
    purpose: Mapped[str] = mapped_column(String(300), default="", server_default="")
    logo: Mapped[bytes | None] = mapped_column(LargeBinary())
    logo_type: Mapped[str | None] = mapped_column(String(20))
    # The identifier of the department's own API (RFC 8707 resource): tokens asked for it carry it as aud.
    api_resource: Mapped[str | None] = mapped_column(String(2000), unique=True)
    # The public services directory: listed clients appear there with a category, a link and the
    # words residents use for what they do (the purpose line is the description).
    listed: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    category: Mapped[str | None] = mapped_column(String(40))
    service_url: Mapped[str | None] = mapped_column(String(2000))
    keywords: Mapped[str] = mapped_column(String(500), default="", server_default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    @property
    def is_public(self) -> bool:
        return self.token_endpoint_auth_method == "none"

    # Authlib's ClientMixin interface.
    def get_client_id(self) -> str:
        return self.client_id

    def get_default_redirect_uri(self) -> str | None:
        # Only when exactly one is registered may redirect_uri be omitted.
        return self.redirect_uris[0] if len(self.redirect_uris) == 1 else None

    def get_allowed_scope(self, scope: str) -> str:
        if not scope:
            return ""
        allowed = set(self.scope.split())
        return " ".join(s for s in scope.split() if s in allowed)

    def check_redirect_uri(self, redirect_uri: str) -> bool:
        return redirect_uri in self.redirect_uris  # exact, byte-for-byte

    def check_client_secret(self, client_secret: str) -> bool:
        from idp.services.clients import verify_secret

        return verify_secret(self, client_secret)

    def check_endpoint_auth_method(self, method: str, endpoint: str) -> bool:
        if endpoint == "token":
            return method == self.token_endpoint_auth_method
        # revocation and introspection: the same method; public clients may revoke their own.
        return method == self.token_endpoint_auth_method

    def check_response_type(self, response_type: str) -> bool:
        return response_type in (self.response_types or ["code"])

    def check_grant_type(self, grant_type: str) -> bool:
        return grant_type in self.grant_types
