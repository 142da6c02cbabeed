"""With the session store unreachable, pages answer a clear 503, never an anonymous page."""
import pytest
from flask import session

from tests.conftest import migrated_app
from tests.support.smtp import free_port


def _add_session_writer(application):
    @application.get("/_test/write-session")
    def write_session():
        session["seen"] = True
        return "written"


@pytest.fixture
def outage_app(tmp_path, smtp_server):
    # Nothing listens on this port: every store call fails as when Redis is down.
    with migrated_app(tmp_path, smtp_server.port, _add_session_writer,
                      IDP_REDIS_URL=f"redis://127.0.0.1:{free_port()}/0") as application:
        yield application


def test_reading_a_session_when_the_store_is_down_is_503(outage_app):
    client = outage_app.test_client()
    client.set_cookie("idp_session", "x" * 43)
    response = client.get("/", headers={"Accept": "text/html"})
    assert response.status_code == 503
    assert response.headers["Retry-After"]
    assert b"temporarily unavailable" in response.data
    assert b"Traceback" not in response.data


def test_writing_a_session_when_the_store_is_down_is_503(outage_app):
    response = outage_app.test_client().get("/_test/write-session")
    assert response.status_code == 503
    assert b"written" not in response.data


def test_pages_recover_when_redis_comes_back_without_a_restart(tmp_path, smtp_server):
    """A real redis-server of the test's own is stopped and started again on the same port."""
    import shutil
    import subprocess
    import time

    import redis

    binary = shutil.which("redis-server")
    if binary is None:
        pytest.skip("redis-server is not installed")
    port = free_port()

    def start():
        process = subprocess.Popen([binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                                    "--appendonly", "no"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                if redis.Redis(port=port, socket_timeout=0.5).ping():
                    return process
            except redis.ConnectionError:
                time.sleep(0.05)
        raise AssertionError("redis-server did not start")

    server = start()
    try:
        with migrated_app(tmp_path, smtp_server.port, _add_session_writer,
                          IDP_REDIS_URL=f"redis://127.0.0.1:{port}/0") as application:
            client = application.test_client()
            assert client.get("/_test/write-session").status_code == 200
            server.terminate()
            server.wait(timeout=10)
            down = client.get("/_test/write-session")
            assert down.status_code == 503 and client.get("/readyz").status_code == 503
            server = start()
            assert client.get("/_test/write-session").status_code == 200
            assert client.get("/readyz").get_json()["store"] == "ok"
    finally:
        server.terminate()
        server.wait(timeout=10)


def test_database_connections_cut_by_a_restart_are_replaced(app, client):
    """What a PostgreSQL restart does to the pool: every server-side connection ends."""
    from sqlalchemy import text

    from idp.extensions import db

    with app.app_context():
        if db.engine.dialect.name != "postgresql":
            pytest.skip("runs on PostgreSQL (IDP_TEST_DATABASE_URL)")
    assert client.get("/readyz").status_code == 200
    with app.app_context():
        with db.engine.connect() as admin:
            admin.execute(text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                               "WHERE datname = current_database() AND pid <> pg_backend_pid()"))
    assert client.get("/readyz").status_code == 200  # pre-ping found the dead connections and replaced them
    assert client.get("/.well-known/openid-configuration").status_code == 200
