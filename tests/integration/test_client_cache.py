"""The OAuth endpoints keep their callers in memory between requests (idp/services/client_cache.py):
any committed change to a client, however it was made through the ORM, shows at the next request;
a change made with plain SQL needs ``forget()``; the copies handed out are detached."""
from __future__ import annotations

from sqlalchemy import update

from idp.extensions import db
from idp.models import Client
from idp.services import client_cache, clients
from tests.support.oidc import make_client


def _token_status(http, client_id: str, secret: str) -> int:
    return http.post("/token", data={"grant_type": "client_credentials"}, auth=(client_id, secret)).status_code


def _row(client_id: str) -> Client:
    return db.session.scalar(db.select(Client).where(Client.client_id == client_id))


def test_disabling_a_client_refuses_its_next_token_request(app, client):
    client_id, secret = make_client(app)
    assert _token_status(client, client_id, secret) == 200  # cached now
    with app.app_context():
        clients.set_disabled(_row(client_id), True)
    assert _token_status(client, client_id, secret) == 401


def test_any_committed_orm_change_is_seen_at_once(app, client):
    client_id, secret = make_client(app)
    assert _token_status(client, client_id, secret) == 200
    with app.app_context():
        _row(client_id).grant_types = ["authorization_code"]  # not through the clients service
        db.session.commit()
    assert _token_status(client, client_id, secret) == 400  # unauthorized_client: the new grant list
    with app.app_context():
        row = _row(client_id)
        row.grant_types = ["client_credentials"]
        db.session.rollback()  # nothing committed: the cached copy stays current
    assert _token_status(client, client_id, secret) == 400


def test_a_plain_sql_change_needs_forget(app, client):
    client_id, secret = make_client(app)
    assert _token_status(client, client_id, secret) == 200
    with app.app_context():
        db.session.execute(update(Client).where(Client.client_id == client_id).values(disabled=True))
        db.session.commit()
    assert _token_status(client, client_id, secret) == 200  # the copy is up to MAX_AGE seconds old
    with app.app_context():
        client_cache.forget()
    assert _token_status(client, client_id, secret) == 401


def test_cached_copies_are_detached(app, client):
    client_id, secret = make_client(app)
    with app.test_request_context():
        cached = clients.find_client(client_id, cached=True)
        assert cached is not None and cached not in db.session
        assert clients.find_client(client_id, cached=True) is cached  # one lookup, then memory
        assert clients.find_client(client_id) is not cached  # the uncached lookup: a session object
