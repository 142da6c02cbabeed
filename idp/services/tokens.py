"""Issuing, finding, rotating and revoking tokens. Only digests are stored."""
from __future__ import annotations

import hashlib
import secrets
import time
import uuid
from datetime import timedelta

from flask import current_app
from joserfc import jwt
from sqlalchemy import insert, update

from idp.extensions import db
from idp.models import AuthorizationCode, Token
from idp.models.types import utcnow
from idp.services import audit
from idp.services.keys import keyring

_INSERT = insert(Token.__table__)  # built once: values come as parameters
REPLAY_MARK = "code-replayed:"  # + code id: a replay was seen while the first redemption may still be saving


def digest(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


def _settings():
    return current_app.config["IDP_SETTINGS"]


def sign(claims: dict, typ: str | None = None) -> str:
    """Sign claims with the current key (header carries ``kid``)."""
    ring = keyring()
    header = {"alg": ring.alg, "kid": ring.signing_kid}
    if typ:
        header["typ"] = typ
    return jwt.encode(header, claims, ring.signing, algorithms=[ring.alg])


def access_token(client_id: str, sub: str | None, scope: str, context: dict) -> str:
    """An RFC 9068 JWT access token."""
    now = int(time.time())
    claims = {"iss": _settings().issuer, "sub": sub or client_id, "aud": context.get("audience") or client_id,
              "client_id": client_id,
              "iat": now, "exp": now + _settings().access_token_lifetime, "jti": uuid.uuid4().hex,
              "scope": scope}
    for name in ("auth_time", "acr", "amr", "sid"):
        if context.get(name):
            claims[name] = context[name]
    return sign(claims, typ="at+jwt")


def new_refresh_token() -> str:
    return secrets.token_urlsafe(32)


def save_code(code: str, *, client_id: str, user_id: int, redirect_uri: str, scope: str, nonce: str | None,
              code_challenge: str | None, code_challenge_method: str | None, sid: str | None,
              auth_time, acr: str, amr: list) -> AuthorizationCode:
    record = AuthorizationCode(code_digest=digest(code), client_id=client_id, user_id=user_id,
                               redirect_uri=redirect_uri, scope=scope, nonce=nonce,
                               code_challenge=code_challenge, code_challenge_method=code_challenge_method,
                               sid=sid, auth_time=auth_time, acr=acr, amr=amr,
                               expires_at=utcnow() + timedelta(seconds=_settings().auth_code_lifetime))
    db.session.add(record)
    db.session.commit()
    _note_reuse(client_id, user_id, nonce, code_challenge)
    return record


def _note_reuse(client_id: str, user_id: int, nonce: str | None, code_challenge: str | None) -> None:
    """Record a security event when a client sends a nonce it already sent, or anyone sends a PKCE
    challenge already seen, within ``IDP_REUSE_DETECTION_WINDOW``: both must be fresh per transaction,
    so a repeat means a broken or attacked client. Only digests are kept."""
    store, window = current_app.extensions["idp.store"], _settings().reuse_detection_window
    if nonce and not store.add(f"nonce-seen:{client_id}:{digest(nonce)}", "1", window):
        audit.record("authorize.nonce_reused", outcome="failure", user_id=user_id, client_id=client_id)
    if code_challenge and not store.add(f"pkce-seen:{digest(code_challenge)}", "1", window):
        audit.record("authorize.pkce_challenge_reused", outcome="failure", user_id=user_id, client_id=client_id)


def consume_code(code: str, client_id: str) -> AuthorizationCode | None:
    """Redeem a code atomically; None unless it is this client's, unused and unexpired.

    Any attempt burns the code, including one by another client (a stolen code is then useless to its
    owner too). A second redemption revokes what the first one issued, even when the first is still
    saving its tokens: the replay leaves a mark that :func:`save` checks after writing."""
    record = db.session.scalar(db.select(AuthorizationCode).where(AuthorizationCode.code_digest == digest(code)))
    if record is None:
        return None
    claimed = db.session.execute(
        update(AuthorizationCode).where(AuthorizationCode.id == record.id, AuthorizationCode.used_at.is_(None))
        .values(used_at=utcnow())).rowcount
    db.session.commit()
    if claimed != 1:
        current_app.extensions["idp.store"].set(REPLAY_MARK + str(record.id), "1", _settings().auth_code_lifetime + 60)
        # Everything the first redemption started, refreshed descendants included.
        families = db.session.scalars(db.select(Token.grant_id).where(Token.code_id == record.id).distinct()).all()
        revoked = sum(revoke_grant(grant_id) for grant_id in families)
        audit.record("token.code_replayed", outcome="failure", user_id=record.user_id, client_id=record.client_id,
                     presented_by=client_id, tokens_revoked=revoked)
        return None
    if record.client_id != client_id:
        audit.record("token.code_wrong_client", outcome="failure", user_id=record.user_id, client_id=record.client_id,
                     presented_by=client_id)
        return None
    db.session.refresh(record)
    if record.expires_at <= utcnow():
        return None
    return record


def save(token: dict, *, client_id: str, user_id: int | None, scope: str, context: dict,
         grant_id: str | None = None, code_id: int | None = None, grant_expires_at=None) -> None:
    """Record an issued token response (digests only), committing the transaction (a plain INSERT:
    this is the hottest write path). Tokens from a code that was replayed while they were being
    issued are recorded revoked (see :func:`consume_code`)."""
    now = utcnow()
    refresh = token.get("refresh_token")
    access_digest = digest(token["access_token"])
    grant_expires_at = grant_expires_at or (now + timedelta(days=_settings().refresh_token_lifetime_days))
    db.session.connection().execute(_INSERT, dict(
        grant_id=grant_id or uuid.uuid4().hex, code_id=code_id, client_id=client_id, user_id=user_id,
        scope=scope, access_token_digest=access_digest, refresh_token_digest=digest(refresh) if refresh else None,
        sid=context.get("sid"), auth_time=context.get("auth_time_dt"), acr=context.get("acr") or "",
        amr=context.get("amr") or [], issued_at=now,
        access_expires_at=now + timedelta(seconds=int(token.get("expires_in", _settings().access_token_lifetime))),
        refresh_expires_at=grant_expires_at if refresh else None,
        grant_expires_at=grant_expires_at if refresh else None, audience=context.get("audience")))
    db.session.commit()
    # After the commit: a replay either set its mark before this check or revokes this row itself.
    if code_id is not None and current_app.extensions["idp.store"].get(REPLAY_MARK + str(code_id)):
        revoke_where(Token.access_token_digest == access_digest)


def find_access(token_string: str) -> Token | None:
    if not token_string or len(token_string) > 4096:
        return None
    return db.session.scalar(db.select(Token).where(Token.access_token_digest == digest(token_string)))


def find_refresh(token_string: str) -> Token | None:
    if not token_string or len(token_string) > 512:
        return None
    return db.session.scalar(db.select(Token).where(Token.refresh_token_digest == digest(token_string)))


def claim_rotation(row: Token) -> bool:
    """Mark a refresh token as used, atomically; False when it was already used or revoked.

    Not committed here: the claimed row stays locked until its successor is saved in the same
    transaction, so a concurrent reuse detection (``revoke_grant``) waits and revokes the successor too.
    """
    claimed = db.session.execute(
        update(Token).where(Token.id == row.id, Token.rotated_at.is_(None), Token.revoked_at.is_(None))
        .values(rotated_at=utcnow())).rowcount
    return claimed == 1


def revoke_where(*conditions) -> int:
    count = db.session.execute(
        update(Token).where(*conditions, Token.revoked_at.is_(None)).values(revoked_at=utcnow())).rowcount
    db.session.commit()
    return count


def revoke_grant(grant_id: str) -> int:
    """Revoke every token of one authorization grant (refresh-token family), including one being
    rotated right now: the family's rows are locked first, which waits for a rotation in progress,
    and the update (a later statement) then sees its new token."""
    db.session.execute(db.select(Token.id).where(Token.grant_id == grant_id).order_by(Token.id).with_for_update()).all()
    return revoke_where(Token.grant_id == grant_id)


def revoke_row(row: Token) -> None:
    """Revoke a token; revoking a refresh token ends its whole family."""
    if row.refresh_token_digest:
        revoke_grant(row.grant_id)
    else:
        revoke_where(Token.id == row.id)
