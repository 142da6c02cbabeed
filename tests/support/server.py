"""A real ``idp serve`` process on a free port, for end-to-end tests."""
from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path

import requests

from tests.support.canary import CANARY
from tests.support.databases import create_database, drop_database, redis_url
from tests.support.smtp import free_port

IDP = str(Path(sys.executable).with_name("idp"))
TEST_SECRET = "test-secret-key-0123456789-abcdefghijklmnopqrstuvwxyz"


class IdpServer:
    """Migrates a fresh database, starts the server, and offers ``cli(...)`` against it."""

    def __init__(self, tmp_dir: Path, smtp_port: int | None = None, extra_env: dict | None = None,
                 workers: int = 1, share_with: "IdpServer | None" = None):
        """``share_with``: another instance of the same deployment (same database, issuer and store)."""
        self.port = free_port()
        self.url = f"http://localhost:{self.port}"
        self.tmp_dir = tmp_dir
        self.owns_database = share_with is None
        self.database_url = create_database(tmp_dir) if share_with is None else share_with.database_url
        self.env = {
            **os.environ,
            "IDP_ENV": "test",
            "IDP_ISSUER": self.url,
            "IDP_DATABASE_URL": self.database_url,
            "IDP_SECRET_KEY": TEST_SECRET,
            "IDP_INSTANCE_PATH": str(tmp_dir / "instance"),
        }
        self.env.pop("IDP_REDIS_URL", None)
        if redis_url(2):
            self.env["IDP_REDIS_URL"] = redis_url(2)
        if smtp_port:
            self.env.update(IDP_SMTP_HOST="127.0.0.1", IDP_SMTP_PORT=str(smtp_port), IDP_SMTP_STARTTLS="false")
        if share_with is not None:
            self.env["IDP_ISSUER"] = share_with.env["IDP_ISSUER"]
            # Behind a load balancer every instance sees the issuer's host; here each has its port.
            self.env["IDP_ALLOWED_HOSTS"] = f"localhost:{self.port}"
            self.env["IDP_REDIS_URL"] = share_with.env.get("IDP_REDIS_URL", "")
        self.env.update(extra_env or {})
        self.workers = workers
        self.process: subprocess.Popen | None = None
        self.log_path = tmp_dir / f"server-{self.port}.log"

    def cli(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        result = subprocess.run([IDP, *args], env=self.env, capture_output=True, text=True, timeout=120)
        for flag, value in zip(args, args[1:]):  # passwords and secrets of the run join the canary's list
            if flag in ("--password", "--secret"):
                CANARY.remember(value)
        for secret in re.findall(r'"client_secret": "([^"]+)"', result.stdout):
            CANARY.remember(secret)
        if check and result.returncode != 0:
            raise AssertionError(f"idp {' '.join(args[:2])} failed: {result.stderr[-2000:]}")
        return result

    def start(self) -> "IdpServer":
        if self.owns_database and self.env.get("IDP_REDIS_URL"):
            # A fresh deployment starts with an empty store: counters such as the per-address
            # mail budget must not carry over from earlier runs on this machine.
            import redis

            redis.Redis.from_url(self.env["IDP_REDIS_URL"]).flushdb()
        self.cli("db", "upgrade")
        log = open(self.log_path, "w")
        self.process = subprocess.Popen(
            [IDP, "serve", "--host", "127.0.0.1", "--port", str(self.port), "--workers", str(self.workers)],
            env=self.env, stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError("idp serve exited: " + self.log_path.read_text()[-3000:])
            try:
                if requests.get(self.url + "/.well-known/openid-configuration", timeout=2).status_code == 200:
                    return self
            except requests.RequestException:
                pass
            time.sleep(0.2)
        raise AssertionError("idp serve did not become ready: " + self.log_path.read_text()[-3000:])

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
        if self.log_path.exists():  # the server's log lines join the canary scan
            CANARY.lines += self.log_text().splitlines()
        if self.owns_database:
            drop_database(self.database_url)

    def log_text(self) -> str:
        return self.log_path.read_text()
