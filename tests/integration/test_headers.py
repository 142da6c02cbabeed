"""Every response carries the security headers; pages are not cached; error pages never show
a stack trace."""
import pytest

from tests.conftest import migrated_app


def _csp(response) -> dict[str, str]:
    policy = response.headers["Content-Security-Policy"]
    directives = {}
    for part in policy.split(";"):
        name, _, value = part.strip().partition(" ")
        directives[name] = value
    return directives


@pytest.mark.parametrize("path", ["/", "/does-not-exist"])
def test_security_headers(client, path):
    response = client.get(path, headers={"Accept": "text/html"})
    assert "unsafe-inline" not in response.headers["Content-Security-Policy"]
    assert "unsafe-eval" not in response.headers["Content-Security-Policy"]
    csp = _csp(response)
    assert csp["frame-ancestors"] == "'none'"
    assert csp["default-src"] == "'self'"
    assert csp["object-src"] == "'none'"
    assert csp["base-uri"] == "'none'"
    assert response.headers["X-Frame-Options"] == "DENY"
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["Referrer-Policy"] == "no-referrer"
    assert "no-store" in response.headers["Cache-Control"]


def test_script_nonce_changes_per_response(client):
    first = _csp(client.get("/"))["script-src"]
    second = _csp(client.get("/"))["script-src"]
    assert "'nonce-" in first and first != second


def test_no_hsts_over_plain_http_development(client):
    assert "Strict-Transport-Security" not in client.get("/").headers


def test_static_files_may_be_cached(client):
    response = client.get("/static/site.css")
    assert response.status_code == 200
    assert "no-store" not in response.headers.get("Cache-Control", "")
    assert response.headers["X-Content-Type-Options"] == "nosniff"


def test_404_page_is_friendly(client):
    response = client.get("/no/such/page", headers={"Accept": "text/html"})
    assert response.status_code == 404
    assert b"Page not found" in response.data
    assert b"Traceback" not in response.data


def test_404_json_for_api_clients(client):
    response = client.get("/no/such/page", headers={"Accept": "application/json"})
    assert response.status_code == 404
    assert response.is_json and response.json["error"]


def _add_exploding_route(application):
    @application.get("/_test/explode")
    def explode():
        raise RuntimeError("internal detail: /srv/idp/secret-path line 42")


@pytest.fixture(scope="module")
def failing_app(tmp_path_factory, smtp_server):
    with migrated_app(tmp_path_factory.mktemp("failing"), smtp_server.port, _add_exploding_route,
                      IDP_ISSUER="https://id.example.gov.za") as application:
        yield application


@pytest.mark.parametrize("accept", ["text/html", "application/json"])
def test_500_shows_no_stack_trace(failing_app, accept, caplog):
    response = failing_app.test_client().get("/_test/explode", headers={"Accept": accept},
                                             base_url="https://id.example.gov.za")
    assert response.status_code == 500
    body = response.get_data(as_text=True)
    assert "Traceback" not in body
    assert "internal detail" not in body and "RuntimeError" not in body
    assert "secret-path" not in body
    assert response.headers["X-Frame-Options"] == "DENY"
    assert "no-store" in response.headers["Cache-Control"]
    # The operator still gets the trace in the log.
    assert any("RuntimeError" in (r.exc_text or "") or r.exc_info for r in caplog.records)


def test_https_issuer_adds_hsts(failing_app):
    response = failing_app.test_client().get("/", base_url="https://id.example.gov.za")
    assert "max-age=" in response.headers["Strict-Transport-Security"]
