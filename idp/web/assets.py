"""Static files under versioned addresses (``/static/site.css?v=<digest>``) that browsers keep for a
year: a resident on metered data downloads the style sheet once, and again only when it changes."""
from __future__ import annotations

import hashlib
from functools import cache
from pathlib import Path

from flask import Flask, request, url_for

YEAR = 365 * 24 * 3600


def init_app(app: Flask) -> None:
    folder = Path(app.static_folder)

    @cache
    def digest(filename: str) -> str | None:
        path = (folder / filename).resolve()
        if folder.resolve() not in path.parents or not path.is_file():
            return None
        return hashlib.sha256(path.read_bytes()).hexdigest()[:12]

    def static_url(filename: str) -> str:
        """The address of a static file, with its content digest."""
        return url_for("static", filename=filename, v=digest(filename))

    @app.after_request
    def _cache_versioned(response):
        if request.endpoint == "static" and response.status_code == 200:
            version = request.args.get("v")
            if version and version == digest(request.view_args.get("filename", "")):
                response.headers["Cache-Control"] = f"public, max-age={YEAR}, immutable"
        return response

    app.jinja_env.globals["static_url"] = static_url
