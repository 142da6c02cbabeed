"""Checklist 98: other headers and errors. Every response says ``nosniff`` and sends no referrer
from token-bearing pages (the site-wide policy is ``no-referrer``, stricter than
strict-origin-when-cross-origin); authenticated pages and token responses are ``no-store``; no
framework or server version is announced; a forced exception shows a generic page (HTML or JSON)
with a correlation id equal to the response's X-Request-ID, which the log line carries too, and
never a debugger, stack trace, exception text or link token."""
from __future__ import annotations

import logging

import pytest

from tests.conftest import migrated_app
from tests.integration.test_pages_account import signed_in_client
from tests.support.oidc import make_client

TOKEN_PATH = "/reset-password/SeCrEtLiNkToKeN0123456789abcdef"


def _add_exploding_routes(application):
    @application.get("/_test/boom")
    def boom():
        raise RuntimeError("internal detail: /srv/idp/secret-path line 42")

    @application.get("/reset-password/<token>/_test/boom")
    def boom_with_token(token):
        raise KeyError("secret-key-material")


@pytest.fixture(scope="module")
def failing_app(tmp_path_factory, smtp_server):
    with migrated_app(tmp_path_factory.mktemp("item98"), smtp_server.port, _add_exploding_routes) as application:
        yield application


def _assert_common(response) -> None:
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["Referrer-Policy"] in ("no-referrer", "strict-origin-when-cross-origin")
    server = response.headers.get("Server", "")
    assert not any(banner in server.lower() for banner in ("werkzeug", "python", "flask", "gunicorn", "/"))
    assert "X-Powered-By" not in response.headers


@pytest.mark.parametrize("path", ["/", "/login", "/jwks.json", "/.well-known/openid-configuration", "/nope",
                                  TOKEN_PATH, "/verify-email/SeCrEtLiNkToKeN0123456789abcdef"])
def test_item_98_every_response_has_nosniff_and_no_banner(app, client, path):
    response = client.get(path)
    _assert_common(response)
    if path.startswith(("/reset-password/", "/verify-email/")):
        assert response.headers["Referrer-Policy"] == "no-referrer"  # the token never leaks onward
        assert "no-store" in response.headers["Cache-Control"]


def test_item_98_authenticated_pages_and_tokens_are_no_store(app):
    http, _ = signed_in_client(app)
    for path in ("/account/", "/account/security", "/account/name"):
        response = http.get(path)
        assert response.status_code == 200
        assert "no-store" in response.headers["Cache-Control"], path
        _assert_common(response)
    client_id, secret = make_client(app)
    token = http.post("/token", data={"grant_type": "client_credentials"}, auth=(client_id, secret))
    assert token.status_code == 200 and "no-store" in token.headers["Cache-Control"]
    _assert_common(token)


@pytest.mark.parametrize("accept", ["text/html", "application/json"])
def test_item_98_a_forced_exception_is_generic_with_a_correlation_id(failing_app, accept, caplog):
    with caplog.at_level(logging.ERROR, logger="idp.errors"):
        response = failing_app.test_client().get("/_test/boom", headers={"Accept": accept})
    assert response.status_code == 500
    body = response.get_data(as_text=True)
    for leak in ("Traceback", "RuntimeError", "internal detail", "secret-path", "Werkzeug Debugger", "__debugger__"):
        assert leak not in body
    reference = response.headers["X-Request-ID"]
    assert len(reference) >= 8
    if accept == "application/json":
        assert response.get_json()["request_id"] == reference
    else:
        assert reference in body
    _assert_common(response)
    logged = [r for r in caplog.records if r.name == "idp.errors"]
    assert any(reference in r.getMessage() for r in logged)


def test_item_98_the_error_log_line_never_holds_a_link_token(failing_app, caplog):
    with caplog.at_level(logging.ERROR, logger="idp.errors"):
        response = failing_app.test_client().get(TOKEN_PATH + "/_test/boom")
    assert response.status_code == 500
    assert "SeCrEtLiNkToKeN" not in response.get_data(as_text=True)
    messages = " ".join(r.getMessage() for r in caplog.records if r.name == "idp.errors")
    assert "unhandled error" in messages and "SeCrEtLiNkToKeN" not in messages


def test_item_98_client_errors_carry_no_reference_or_detail(app, client):
    response = client.get("/authorize?client_id=%3Cscript%3E")
    assert response.status_code == 400
    assert "Reference for the help desk" not in response.get_data(as_text=True)
    _assert_common(response)


@pytest.mark.parametrize("path", ["/token", "/revoke", "/introspect"])
def test_item_98_a_failed_client_authentication_says_only_that(app, client, path):
    import base64

    client_id, _ = make_client(app)
    wrong = base64.b64encode(f"{client_id}:not-the-secret".encode()).decode()
    response = client.post(path, data={"grant_type": "client_credentials", "token": "x"},
                           headers={"Authorization": "Basic " + wrong})
    assert response.status_code == 401
    assert response.get_json() == {"error": "invalid_client", "error_description": "client authentication failed"}
    assert "client_secret_basic" not in response.headers["WWW-Authenticate"]  # no list of what was tried
