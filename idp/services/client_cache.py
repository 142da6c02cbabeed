"""Clients kept in memory between requests for the OAuth endpoints, which look their caller up on
every call (the token endpoint most of all).

Every committed ORM change to a client replaces a generation mark in the store, so each instance
sharing it (Redis) reloads at its next lookup; an entry is reloaded after ``MAX_AGE`` seconds in any
case, which bounds how long a change made elsewhere without a shared store (the CLI next to a
single-process server on the in-process store) or with plain SQL takes to show.
Cached clients are detached copies: read them, never change them (change the ones
:func:`idp.services.clients.find_client` returns).
"""
from __future__ import annotations

import time
import uuid

from flask import current_app, has_app_context
from sqlalchemy import event
from sqlalchemy.orm import Session

from idp.extensions import db
from idp.models import Client

GENERATION_KEY = "clients-generation"
GENERATION_TTL = 30 * 86400
MAX_AGE = 10  # seconds
MAX_ENTRIES = 5000
_CHANGED = "idp.clients_changed"


def init_app(app) -> None:
    """Give ``app`` its (empty) cache."""
    app.extensions["idp.client_cache"] = {}


def lookup(client_id: str) -> Client | None:
    """The client ``client_id`` (disabled ones included), from the cache when still current."""
    cache = current_app.extensions["idp.client_cache"]
    generation = current_app.extensions["idp.store"].get(GENERATION_KEY)
    now = time.monotonic()
    hit = cache.get(client_id)
    if hit is not None and hit[0] == generation and now - hit[1] < MAX_AGE:
        return hit[2]
    client = db.session.scalar(db.select(Client).where(Client.client_id == client_id))
    if client is None:
        return None
    db.session.expunge(client)
    if len(cache) >= MAX_ENTRIES:
        cache.clear()
    cache[client_id] = (generation, now, client)
    return client


def forget() -> None:
    """Make every instance reload its clients (after a change made without the ORM)."""
    current_app.extensions["idp.store"].set(GENERATION_KEY, uuid.uuid4().hex, GENERATION_TTL)


@event.listens_for(Session, "before_flush")
def _note_client_changes(session, _context, _instances) -> None:
    if any(isinstance(item, Client) for item in (*session.new, *session.dirty, *session.deleted)):
        session.info[_CHANGED] = True


@event.listens_for(Session, "after_commit")
def _publish_client_changes(session) -> None:
    if session.info.pop(_CHANGED, False) and has_app_context() and "idp.client_cache" in current_app.extensions:
        forget()


@event.listens_for(Session, "after_rollback")
def _drop_client_changes(session) -> None:
    session.info.pop(_CHANGED, None)
