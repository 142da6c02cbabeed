"""What a resident has granted to department applications, and taking it back."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import delete, func, update

from idp.extensions import db
from idp.models import Client, Consent, Token
from idp.models.types import utcnow


@dataclass(frozen=True)
class ConnectedService:
    client_id: str
    name: str
    scope: str
    granted_at: datetime | None


def _live_tokens(user_id: int):
    return (Token.user_id == user_id, Token.revoked_at.is_(None))


def revoke_for_user_client(user_id: int, client_id: str) -> int:
    """Delete the resident's consent for the client and revoke every live token it holds for
    them. Returns how many tokens were revoked."""
    db.session.execute(delete(Consent).where(Consent.user_id == user_id, Consent.client_id == client_id))
    count = db.session.execute(update(Token).where(*_live_tokens(user_id), Token.client_id == client_id)
                               .values(revoked_at=utcnow())).rowcount
    db.session.commit()
    _sign_out_of(user_id, client_id)
    return count


def _sign_out_of(user_id: int, client_id: str) -> None:
    """The department's own sessions for the resident end too (back-channel logout to that client only)."""
    from idp.services import backchannel, sessions

    live = [record.sid for record in sessions.active_for_user(user_id)]
    backchannel.notify_sessions_ended(live, only_client=client_id)


def revoke_for_sessions(user_id: int, sids: list[str]) -> int:
    """Revoke the resident's live tokens issued through these IdP sessions; returns how many."""
    if not sids:
        return 0
    count = db.session.execute(update(Token).where(*_live_tokens(user_id), Token.sid.in_(sids))
                               .values(revoked_at=utcnow())).rowcount
    db.session.commit()
    return count


def revoke_all_for_user(user_id: int) -> int:
    """Revoke every live access and refresh token of the resident (all clients)."""
    count = db.session.execute(update(Token).where(*_live_tokens(user_id)).values(revoked_at=utcnow())).rowcount
    db.session.commit()
    return count


def connected_services(user_id: int) -> list[ConnectedService]:
    """Clients with a consent or a live token for the resident, by name."""
    consents = {c.client_id: c for c in db.session.scalars(db.select(Consent).where(Consent.user_id == user_id))}
    now = utcnow()
    token_rows = db.session.execute(
        db.select(Token.client_id, func.min(Token.issued_at))
        .where(*_live_tokens(user_id),
               (Token.access_expires_at > now) | (Token.refresh_expires_at > now))
        .group_by(Token.client_id)).all()
    tokens = {client_id: first for client_id, first in token_rows}
    ids = set(consents) | set(tokens)
    if not ids:
        return []
    names = {c.client_id: c.name for c in db.session.scalars(db.select(Client).where(Client.client_id.in_(ids)))}
    result = []
    for client_id in ids:
        consent = consents.get(client_id)
        scope = consent.scope if consent else ""
        if not scope:
            scope = " ".join(sorted({s for row in db.session.scalars(
                db.select(Token.scope).where(*_live_tokens(user_id), Token.client_id == client_id))
                for s in (row or "").split()}))
        result.append(ConnectedService(client_id, names.get(client_id, client_id), scope,
                                       consent.granted_at if consent else tokens.get(client_id)))
    return sorted(result, key=lambda s: s.name.lower())
