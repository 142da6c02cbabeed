"""Operations: liveness and readiness, Prometheus metrics behind a token, request ids, JSON logs."""
from __future__ import annotations

import json
import logging

from tests.conftest import migrated_app
from tests.integration.test_signin_flows import login, make_user

METRICS_TOKEN = "metrics-token-0123456789-abcdefghijklmnop"


def test_healthz_and_readyz(client):
    assert client.get("/healthz").data == b"ok\n"
    ready = client.get("/readyz")
    assert ready.status_code == 200 and ready.get_json() == {"ready": True, "database": "ok", "store": "ok"}


def test_readyz_says_which_dependency_is_down(app, client, monkeypatch):
    from idp.store import StoreUnavailable

    def down():
        raise StoreUnavailable("down")

    monkeypatch.setattr(app.extensions["idp.store"], "ping", down)
    response = client.get("/readyz")
    assert response.status_code == 503 and response.get_json() == {"ready": False, "database": "ok",
                                                                    "store": "unavailable"}
    assert client.get("/healthz").status_code == 200  # alive, just not ready


def test_metrics_are_off_when_no_token_is_configured(client):
    assert client.get("/metrics").status_code == 404


def test_metrics_count_requests_sign_ins_and_tokens(tmp_path, smtp_server):
    with migrated_app(tmp_path, smtp_server.port, IDP_METRICS_TOKEN=METRICS_TOKEN) as app:
        try:
            http = app.test_client()
            make_user(app)
            assert login(http).status_code == 303
            login(app.test_client(), password="not the right password")
            assert http.get("/metrics").status_code == 401
            assert http.get("/metrics", headers={"Authorization": "Bearer wrong"}).status_code == 401
            page = http.get("/metrics", headers={"Authorization": f"Bearer {METRICS_TOKEN}"}).get_data(as_text=True)
        finally:
            app.extensions["idp.store"].flush()
    assert 'idp_security_events_total{event="signin.success",outcome="success"}' in page
    assert 'idp_security_events_total{event="signin.failure",outcome="failure"}' in page
    assert 'idp_http_requests_total{endpoint="auth.login",method="POST",status="303"}' in page
    assert "idp_http_request_seconds_bucket" in page and "idp_tokens_issued_total" in page
    assert METRICS_TOKEN not in page


def test_every_response_carries_a_request_id(client):
    fresh = client.get("/healthz").headers["X-Request-ID"]
    assert len(fresh) >= 8
    assert client.get("/healthz", headers={"X-Request-ID": "lb-1234abcd"}).headers["X-Request-ID"] == "lb-1234abcd"
    forged = client.get("/healthz", headers={"X-Request-ID": "<script>alert(1)</script>"}).headers["X-Request-ID"]
    assert "<" not in forged


def test_json_log_lines_carry_the_request_id_and_no_query_string(app):
    from idp.observability import JsonFormatter

    formatter = JsonFormatter()
    with app.test_request_context("/token?code=secret-code-value", headers={"X-Request-ID": "req-00000001"}):
        record = logging.LogRecord("idp.test", logging.INFO, __file__, 1, "token issued", None, None)
        line = json.loads(formatter.format(record))
    assert line["request_id"] == "req-00000001" and line["path"] == "/token" and line["message"] == "token issued"
    assert "secret-code-value" not in json.dumps(line)
