"""Checklist 111: database down. With the database refusing connections (PostgreSQL: connections
disallowed and the pool's connections terminated; SQLite: the file gone from under the process)
registration, code redemption, refresh and password reset answer a clean 503 with Retry-After and
leave no partial state (no user, the code still redeemable, the refresh token still live, the reset
link unused and the password unchanged); readiness fails while liveness holds; discovery and JWKS
keep being served; the first requests after the database returns succeed, without a restart."""
from __future__ import annotations

from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import create_engine, text

from idp.extensions import db
from idp.models import ActionToken, User
from idp.services import action_tokens
from tests.conftest import csrf_token
from tests.support.databases import postgres_admin_url
from tests.support.links import open_link
from tests.support.oidc import exchange, get_code, login, make_client, make_user, pkce_pair

NEW_PASSWORD = "a brand new resident passphrase"


@contextmanager
def database_down(app):
    url = app.config["IDP_SETTINGS"].database_url
    if url.startswith("sqlite"):
        path = Path(url.split("sqlite:///", 1)[1])
        with app.app_context():
            db.engine.dispose()
        path.rename(path.with_suffix(".away"))
        path.mkdir()  # a directory where the file was: every open fails
        try:
            yield
        finally:
            path.rmdir()
            path.with_suffix(".away").rename(path)
        return
    name = url.rsplit("/", 1)[1]
    admin = create_engine(postgres_admin_url().replace("postgresql://", "postgresql+psycopg://", 1),
                          isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS false'))
        conn.execute(text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = :n"), {"n": name})
    try:
        yield
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS true'))
        admin.dispose()


def _clean_503(response):
    body = response.get_data(as_text=True)
    assert response.status_code == 503, (response.status_code, body[:200])
    assert response.headers.get("Retry-After")
    assert "Traceback" not in body and "OperationalError" not in body and "psycopg" not in body
    assert "sqlite" not in body.lower()


def test_item_111_database_down_gives_503_and_leaves_no_partial_state(app, client):
    client_id, secret = make_client(app)
    user_sub = make_user(app)
    login(client)
    verifier, challenge = pkce_pair()
    first = exchange(client, client_id, secret, get_code(client, client_id, challenge), verifier).get_json()
    verifier2, challenge2 = pkce_pair()
    code = get_code(client, client_id, challenge2)
    with app.app_context():
        user = db.session.scalar(db.select(User).where(User.sub == user_sub))
        user_id, old_hash = user.id, user.password_hash
        reset = action_tokens.issue(user_id, action_tokens.RESET_PASSWORD)
    newcomer = app.test_client()
    register_token = csrf_token(newcomer.get("/register").get_data(as_text=True))
    resetter = app.test_client()
    reset_page = open_link(resetter, f"/reset-password/{reset}")
    reset_token, reset_form = csrf_token(reset_page.get_data(as_text=True)), reset_page.request.path
    jwks = client.get("/jwks.json").get_json()

    with database_down(app):
        _clean_503(newcomer.post("/register", data={"csrf_token": register_token, "name": "New Resident",
                                                    "email": "new@example.org", "password": NEW_PASSWORD}))
        refused = exchange(client, client_id, secret, code, verifier2)
        _clean_503(refused)
        assert refused.get_json()["error"] == "temporarily_unavailable"  # JSON for a department's back end
        _clean_503(client.post("/token", data={"grant_type": "refresh_token", "refresh_token": first["refresh_token"]},
                               auth=(client_id, secret)))
        _clean_503(resetter.post(reset_form, data={"csrf_token": reset_token,
                                                   "password": NEW_PASSWORD, "confirm": NEW_PASSWORD}))
        assert client.get("/readyz").status_code == 503
        assert client.get("/healthz").status_code == 200
        assert client.get("/.well-known/openid-configuration").status_code == 200
        served = client.get("/jwks.json")
        assert served.status_code == 200 and served.get_json() == jwks

    # Back: the very first requests succeed, and nothing was half-done during the outage.
    assert client.get("/readyz").status_code == 200
    with app.app_context():
        assert db.session.scalar(db.select(User).where(User.email == "new@example.org")) is None
        assert db.session.get(User, user_id).password_hash == old_hash
        assert db.session.scalar(db.select(ActionToken.used_at).where(
            ActionToken.digest == action_tokens.digest(reset))) is None
    redeemed = exchange(client, client_id, secret, code, verifier2)
    assert redeemed.status_code == 200  # the code was not burned by the failed attempt
    refreshed = client.post("/token", data={"grant_type": "refresh_token", "refresh_token": first["refresh_token"]},
                            auth=(client_id, secret))
    assert refreshed.status_code == 200  # the refresh token was not rotated away
    done = resetter.post(reset_form, data={"csrf_token": reset_token,
                                           "password": NEW_PASSWORD, "confirm": NEW_PASSWORD})
    assert done.status_code == 303


def test_item_111_signed_in_pages_are_503_not_anonymous_while_the_database_is_down(app, client):
    make_user(app)
    login(client)
    with database_down(app):
        for path in ("/account/", "/account/security", "/"):
            _clean_503(client.get(path))
    assert client.get("/account/").status_code == 200  # the session survived the outage
