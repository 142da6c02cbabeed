"""Server-side sessions of a department app: the cookie holds only a random id, the row holds the
resident's claims, so a back-channel logout from the IdP can end a session by deleting its row."""
from __future__ import annotations

import hashlib
import secrets
import time

from sqlalchemy import JSON, Column, Float, MetaData, String, Table, Text, delete, insert, select

SESSION_SECONDS = 8 * 3600


def _digest(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


class SessionStore:
    """Sessions kept in the department's own database (table ``rp_sessions``)."""

    def __init__(self, metadata: MetaData):
        self.table = Table(
            "rp_sessions", metadata,
            Column("id_digest", String(64), primary_key=True),
            Column("sid", String(128), index=True),
            Column("sub", String(255), index=True, nullable=False),
            Column("claims", JSON, nullable=False),
            Column("id_token", Text),
            Column("expires_at", Float, nullable=False),
        )

    def create(self, connection, claims: dict, id_token: str | None) -> str:
        """Store a session for these ID token claims; returns the cookie value."""
        token = secrets.token_urlsafe(32)
        connection.execute(insert(self.table).values(
            id_digest=_digest(token), sid=claims.get("sid"), sub=claims["sub"], claims=claims,
            id_token=id_token, expires_at=time.time() + SESSION_SECONDS))
        return token

    def find(self, connection, token: str | None) -> dict | None:
        """The live session row for a cookie value, as a dict (claims, id_token, sid)."""
        if not token or len(token) > 100:
            return None
        row = connection.execute(select(self.table).where(self.table.c.id_digest == _digest(token))).mappings().first()
        if row is None or row["expires_at"] < time.time():
            return None
        return dict(row)

    def end(self, connection, token: str | None) -> None:
        if token:
            connection.execute(delete(self.table).where(self.table.c.id_digest == _digest(token)))

    def end_for_logout(self, connection, sid: str | None, sub: str | None) -> int:
        """End the sessions a logout token names: by ``sid`` when given, else every one of ``sub``."""
        if sid:
            where = self.table.c.sid == sid
            if sub:
                where = where & (self.table.c.sub == sub)
        elif sub:
            where = self.table.c.sub == sub
        else:
            return 0
        return connection.execute(delete(self.table).where(where)).rowcount
