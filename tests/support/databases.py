"""Fresh databases for tests: a SQLite file, or a new PostgreSQL database when
IDP_TEST_DATABASE_URL points at a PostgreSQL server."""
from __future__ import annotations

import os
import uuid
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit


def postgres_admin_url() -> str | None:
    url = os.environ.get("IDP_TEST_DATABASE_URL", "")
    return url if url.startswith("postgresql") else None


def _with_database(url: str, name: str) -> str:
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, "/" + name, parts.query, parts.fragment))


def create_database(tmp_dir: Path) -> str:
    """A new, empty database URL for one server or test session."""
    admin = postgres_admin_url()
    if admin is None:
        return f"sqlite:///{tmp_dir / ('idp-' + uuid.uuid4().hex[:8] + '.sqlite3')}"
    import psycopg

    name = "idp_t_" + uuid.uuid4().hex[:12]
    with psycopg.connect(admin.replace("postgresql+psycopg", "postgresql"), autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    return _with_database(admin, name)


def drop_database(url: str) -> None:
    if not url.startswith("postgresql"):
        return
    import psycopg

    admin = postgres_admin_url()
    name = urlsplit(url).path.lstrip("/")
    with psycopg.connect(admin.replace("postgresql+psycopg", "postgresql"), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def redis_url(db_index: int) -> str | None:
    """The test Redis URL with another logical database (``db_index`` after the URL's own), so
    servers and tests keep apart, and so do two runs given /0 and /8."""
    url = os.environ.get("IDP_TEST_REDIS_URL")
    if not url:
        return None
    parts = urlsplit(url)
    base = int(parts.path.lstrip("/") or 0)
    return urlunsplit((parts.scheme, parts.netloc, f"/{base + db_index}", parts.query, parts.fragment))
