"""Example department apps served over real HTTP (werkzeug in a thread), registered as clients of
a running ``idp serve`` through its CLI."""
from __future__ import annotations

import importlib
import json
import threading
from pathlib import Path

from werkzeug.serving import make_server

from tests.support.server import IdpServer
from tests.support.smtp import free_port

SCOPES = {"billing": "openid profile email municipal_accounts notification_preferences",
          "permits": "openid profile email notification_preferences",
          "complaints": "openid profile email municipal_accounts notification_preferences"}


class DepartmentServer:
    """One department app (``relying_party_examples.<slug>``) with its own client and database."""

    def __init__(self, slug: str, idp: IdpServer, tmp_dir: Path, extra: dict | None = None):
        self.slug = slug
        self.port = free_port()
        self.url = f"http://localhost:{self.port}"
        self.api = f"{self.url}/api"
        registered = json.loads(idp.cli(
            "clients", "create", "--name", f"City {slug}", "--redirect-uri", f"{self.url}/callback",
            "--post-logout-redirect-uri", f"{self.url}/", "--backchannel-logout-uri", f"{self.url}/backchannel-logout",
            "--scope", SCOPES[slug], "--grant-type", "authorization_code", "--grant-type", "client_credentials",
            "--api-resource", self.api, "--first-party", "--json").stdout)
        self.client_id, self.client_secret = registered["client_id"], registered["client_secret"]
        module = importlib.import_module(f"relying_party_examples.{slug}.app")
        self.passport = module.passport
        self.app = module.create_app({
            "RP_ISSUER": idp.url, "RP_CLIENT_ID": self.client_id, "RP_CLIENT_SECRET": self.client_secret,
            "RP_BASE_URL": self.url, "RP_DATABASE_URL": f"sqlite:///{tmp_dir / (slug + '.db')}",
            "RP_SECRET_KEY": f"{slug}-test-key", **(extra or {})})
        self._server = make_server("127.0.0.1", self.port, self.app, threaded=True)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def start(self) -> "DepartmentServer":
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()

    def sign_in(self, http, claims: dict) -> None:
        """Give the ``requests`` session ``http`` a signed-in department session for ``claims``."""
        with self.app.app_context():
            token = self.passport.start_session(claims, None)
        http.cookies.set(f"{self.slug}_session", token, domain="localhost.local")
