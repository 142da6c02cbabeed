"""A department app's settings, read from ``RP_*`` environment variables (or overrides in tests)."""
from __future__ import annotations

import os
import secrets
from dataclasses import dataclass, field
from pathlib import Path


class SettingsError(ValueError):
    """A missing or malformed setting; the message names the variable."""


@dataclass(frozen=True)
class Settings:
    issuer: str
    client_id: str
    client_secret: str
    base_url: str
    api_resource: str
    database_url: str
    secret_key: str
    host: str
    port: int
    extra: dict = field(default_factory=dict)

    def get(self, name: str, default: str = "") -> str:
        """Another ``RP_`` setting of this department (``name`` without the prefix)."""
        return self.extra.get(name, default)

    @classmethod
    def load(cls, slug: str, default_port: int, overrides: dict | None = None) -> "Settings":
        """Read ``RP_ISSUER``, ``RP_CLIENT_ID``, ``RP_CLIENT_SECRET``, ``RP_BASE_URL``,
        ``RP_API_RESOURCE``, ``RP_DATABASE_URL``, ``RP_SECRET_KEY``, ``RP_HOST``, ``RP_PORT``."""
        values = {k[3:]: v for k, v in os.environ.items() if k.startswith("RP_")}
        values.update({k.removeprefix("RP_"): str(v) for k, v in (overrides or {}).items()})
        try:
            port = int(values.get("PORT") or default_port)
        except ValueError:
            raise SettingsError(f"RP_PORT must be a port number, not {values['PORT']!r}") from None
        base_url = (values.get("BASE_URL") or f"http://localhost:{port}").rstrip("/")
        for name in ("ISSUER", "CLIENT_ID", "CLIENT_SECRET"):
            if not values.get(name):
                raise SettingsError(f"RP_{name} is required (see `idp clients create --json`)")
        instance = Path(values.get("INSTANCE_PATH") or Path.cwd() / "instance")
        known = {"ISSUER", "CLIENT_ID", "CLIENT_SECRET", "BASE_URL", "API_RESOURCE", "DATABASE_URL",
                 "SECRET_KEY", "HOST", "PORT", "INSTANCE_PATH"}
        return cls(
            issuer=values["ISSUER"].rstrip("/"),
            client_id=values["CLIENT_ID"],
            client_secret=values["CLIENT_SECRET"],
            base_url=base_url,
            api_resource=values.get("API_RESOURCE") or f"{base_url}/api",
            database_url=values.get("DATABASE_URL") or f"sqlite:///{instance / (slug + '.db')}",
            secret_key=values.get("SECRET_KEY") or secrets.token_urlsafe(32),
            host=values.get("HOST") or "127.0.0.1",
            port=port,
            extra={k: v for k, v in values.items() if k not in known},
        )
