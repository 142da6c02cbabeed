"""Server-side sessions: the cookie is an opaque id with strict attributes; the data lives in
the store, and destroying a session removes its record."""
import pytest
from flask import session
from flask_migrate import upgrade

from idp import create_app
from idp.extensions import db
from idp.security import server_session
from tests.conftest import make_settings
from tests.support.databases import create_database, drop_database


def _build(tmp_path, smtp_port, **overrides):
    database_url = create_database(tmp_path)
    application = create_app(make_settings(tmp_path, database_url, smtp_port, **overrides))

    @application.get("/_test/write")
    def write():
        session["favourite"] = "rooibos-and-a-long-marker-value"
        return "written"

    @application.get("/_test/read")
    def read():
        return session.get("favourite", "nothing")

    @application.get("/_test/destroy")
    def destroy():
        server_session.destroy()
        return "destroyed"

    @application.get("/_test/rotate")
    def rotate():
        server_session.rotate()
        return "rotated"

    with application.app_context():
        upgrade()
    return application, database_url


@pytest.fixture(scope="module")
def session_app(tmp_path_factory, smtp_server):
    application, database_url = _build(tmp_path_factory.mktemp("sess"), smtp_server.port)
    yield application
    with application.app_context():
        db.engine.dispose()
    drop_database(database_url)


@pytest.fixture(scope="module")
def https_app(tmp_path_factory, smtp_server):
    application, database_url = _build(tmp_path_factory.mktemp("sess-https"), smtp_server.port,
                                       IDP_ISSUER="https://id.example.gov.za")
    yield application
    with application.app_context():
        db.engine.dispose()
    drop_database(database_url)


def _set_cookie(response, name):
    headers = [h for h in response.headers.getlist("Set-Cookie") if h.startswith(name + "=")]
    assert len(headers) == 1, response.headers.getlist("Set-Cookie")
    value, *attributes = [part.strip() for part in headers[0].split(";")]
    return value.split("=", 1)[1], {a.split("=")[0].lower(): (a.split("=", 1)[1] if "=" in a else True)
                                    for a in attributes}


def test_cookie_is_opaque_httponly_lax_and_site_wide(session_app):
    response = session_app.test_client().get("/_test/write")
    sid, attrs = _set_cookie(response, "idp_session")
    assert "rooibos" not in sid and "." not in sid  # a random id, not signed data
    assert len(sid) >= 40
    assert attrs.get("httponly") is True
    assert attrs.get("samesite") == "Lax"
    assert attrs.get("path") == "/"
    assert "secure" not in attrs  # http issuer (development)
    assert "domain" not in attrs


def test_data_lives_in_the_store_not_in_the_cookie(session_app):
    client = session_app.test_client()
    sid, _ = _set_cookie(client.get("/_test/write"), "idp_session")
    store = session_app.extensions["idp.store"]
    assert "rooibos" in store.get("sess:" + sid)
    assert client.get("/_test/read").text == "rooibos-and-a-long-marker-value"
    # Another browser with the same data but no cookie sees nothing.
    assert session_app.test_client().get("/_test/read").text == "nothing"


def test_a_forged_cookie_is_a_fresh_anonymous_session(session_app):
    client = session_app.test_client()
    client.set_cookie("idp_session", "A" * 43)
    assert client.get("/_test/read").text == "nothing"


def test_destroy_removes_the_record_and_the_cookie(session_app):
    client = session_app.test_client()
    sid, _ = _set_cookie(client.get("/_test/write"), "idp_session")
    store = session_app.extensions["idp.store"]
    response = client.get("/_test/destroy")
    assert store.get("sess:" + sid) is None
    value, attrs = _set_cookie(response, "idp_session")
    assert value == "" or attrs.get("max-age") == "0"
    assert client.get("/_test/read").text == "nothing"


def test_rotate_gives_a_new_id_and_kills_the_old(session_app):
    client = session_app.test_client()
    old, _ = _set_cookie(client.get("/_test/write"), "idp_session")
    new, _ = _set_cookie(client.get("/_test/rotate"), "idp_session")
    store = session_app.extensions["idp.store"]
    assert new != old
    assert store.get("sess:" + old) is None
    assert "rooibos" in store.get("sess:" + new)


def test_pages_that_do_not_touch_the_session_set_no_cookie(session_app):
    response = session_app.test_client().get("/_test/read")
    assert not response.headers.getlist("Set-Cookie")


def test_https_issuer_uses_a_host_prefixed_secure_cookie(https_app):
    client = https_app.test_client()
    response = client.get("/_test/write", base_url="https://id.example.gov.za")
    sid, attrs = _set_cookie(response, "__Host-idp_session")
    assert attrs.get("secure") is True
    assert attrs.get("httponly") is True
    assert attrs.get("path") == "/"
    assert "domain" not in attrs
    assert not [h for h in response.headers.getlist("Set-Cookie") if h.startswith("idp_session=")]
    assert client.get("/_test/read", base_url="https://id.example.gov.za").text.startswith("rooibos")
