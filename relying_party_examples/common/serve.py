"""Run a department app on its own port (``python -m relying_party_examples.<department>``)."""
from __future__ import annotations

import sys

from werkzeug.serving import WSGIRequestHandler, run_simple

from relying_party_examples.common.settings import SettingsError


class PathOnlyLog(WSGIRequestHandler):
    """Log request paths without their query strings (the callback's carries the code)."""

    def log_request(self, code="-", size="-"):
        self.path = self.path.split("?", 1)[0]  # the response is already built
        super().log_request(code, size)


def serve(create_app) -> None:
    """Build the app from the environment and serve it; a bad setting stops with one clear line."""
    try:
        app = create_app()
    except SettingsError as exc:
        sys.exit(f"error: {exc}")
    settings = app.extensions["passport"].settings
    run_simple(settings.host, settings.port, app, threaded=True, request_handler=PathOnlyLog)
