"""Checklist 101: secret hygiene. No secret is committed to the repository (this module is the
secret scan CI runs: private keys, cloud/API tokens, real-looking IDP_* secrets), the container image
copies only the application (never the instance folder, an .env or a key), no debug or
environment-dump endpoint exists, the front-end bundle and pages carry no secret, and an error page
never shows the secret key, the database URL or a client secret."""
from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.conftest import migrated_app
from tests.support.oidc import make_client

ROOT = Path(__file__).resolve().parents[2]
SKIP_DIRS = {".git", ".venv", "instance", "node_modules", "__pycache__", ".pytest_cache", ".ruff_cache",
             "ecitizen_passport.egg-info", "translations"}
SECRET_PATTERNS = {
    "private key": re.compile(r"-----BEGIN (?:RSA |EC |DSA |OPENSSH |ENCRYPTED )?PRIVATE KEY-----"),
    "AWS access key": re.compile(r"\bAKIA[0-9A-Z]{16}\b"),
    "GitHub token": re.compile(r"\bgh[pousr]_[A-Za-z0-9]{36}\b"),
    "Slack token": re.compile(r"\bxox[baprs]-[A-Za-z0-9-]{10,}"),
    "Stripe live key": re.compile(r"\b[sr]k_live_[A-Za-z0-9]{16,}"),
    "assigned IDP secret": re.compile(
        r"IDP_(?:SECRET_KEY|SMTP_PASSWORD|SMS_CLICKATELL_API_KEY|METRICS_TOKEN)\s*[:=]\s*[\"']?(?!\$|<|change|replace|"
        r"your|example|placeholder|\{|\"|'|\s)[A-Za-z0-9+/_\-]{32,}"),
}
# Test fixtures are known, deliberately fake values used only against throwaway databases.
ALLOWED = {"tests/support/server.py", "tests/security/test_item_101_secret_hygiene.py"}


def _files():
    for path in ROOT.rglob("*"):
        if any(part in SKIP_DIRS for part in path.relative_to(ROOT).parts) or not path.is_file():
            continue
        if path.stat().st_size > 2_000_000 or path.suffix in {".png", ".jpg", ".jpeg", ".ico", ".woff2", ".pdf", ".mo"}:
            continue
        yield path


def test_item_101_repository_holds_no_secrets():
    found = []
    for path in _files():
        relative = str(path.relative_to(ROOT))
        if relative in ALLOWED:
            continue
        text = path.read_text(encoding="utf-8", errors="ignore")
        for name, pattern in SECRET_PATTERNS.items():
            if pattern.search(text):
                found.append(f"{relative}: {name}")
    assert found == []


def test_item_101_the_secret_scan_catches_what_it_must():
    samples = {"private key": "-----BEGIN PRIVATE KEY-----", "AWS access key": "AKIAABCDEFGHIJKLMNOP",
               "assigned IDP secret": "IDP_SECRET_KEY=Zq3vP9xW2mK8tR5yB1nL4cH7jF0dG6sA"}
    for name, sample in samples.items():
        assert SECRET_PATTERNS[name].search(sample), name
    assert not SECRET_PATTERNS["assigned IDP secret"].search("IDP_SECRET_KEY=change-me-to-a-long-random-value")


def test_item_101_image_copies_only_the_application():
    dockerfile = (ROOT / "deploy/Dockerfile").read_text()
    copied = re.findall(r"^COPY\s+(?!--from)(.+)$", dockerfile, re.M)
    sources = {src for line in copied for src in line.split()[:-1]}
    assert sources <= {"pyproject.toml", "README.md", "idp", "migrations"}, sources
    assert not re.search(r"^(?:ENV|ARG)\s+\S*(?:SECRET|PASSWORD|TOKEN|API_KEY)\S*\s*=?\s*\S+", dockerfile, re.M | re.I)
    ignored = (ROOT / ".gitignore").read_text()
    assert "instance" in ignored


@pytest.mark.parametrize("path", ["/env", "/debug", "/config", "/console", "/_debug", "/admin/env", "/.env",
                                  "/instance/secret_key", "/static/../instance/secret_key", "/server-status"])
def test_item_101_no_debug_or_environment_dump_endpoint(app, client, path):
    response = client.get(path)
    assert response.status_code in (302, 400, 404), path
    body = response.get_data(as_text=True)
    assert app.config["SECRET_KEY"] not in body and "Werkzeug Debugger" not in body
    assert not app.debug


def test_item_101_static_bundle_and_pages_carry_no_secret(app, client):
    secret = app.config["SECRET_KEY"]
    _, client_secret = make_client(app)
    for path in (ROOT / "idp/static").iterdir():
        text = path.read_text(errors="ignore")
        assert secret not in text and not any(p.search(text) for p in SECRET_PATTERNS.values()), path.name
    for page in ("/", "/login", "/register", "/.well-known/openid-configuration", "/jwks.json"):
        body = client.get(page).get_data(as_text=True)
        assert secret not in body and client_secret not in body, page


def test_item_101_an_error_page_shows_no_secret(tmp_path, smtp_server):
    leaky_url = "postgresql://idp:Db-Password-Canary-42@db.internal:5432/idp"

    def prepare(application):
        @application.get("/_test/explode")
        def explode():
            raise RuntimeError(f"cannot connect to {leaky_url} with {application.config['SECRET_KEY']}")

    with migrated_app(tmp_path, smtp_server.port, prepare) as application:
        response = application.test_client().get("/_test/explode")
        body = response.get_data(as_text=True)
        assert response.status_code == 500
        assert application.config["SECRET_KEY"] not in body and "Db-Password-Canary-42" not in body
        assert "Traceback" not in body and "RuntimeError" not in body
