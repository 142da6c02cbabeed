"""Checklist 96: CSP content. Every hosted page's policy is ``default-src 'self'``, a per-response
nonce for scripts without 'unsafe-inline'/'unsafe-eval'/wildcards, ``object-src 'none'``,
``base-uri 'none'``, ``form-action`` limited to the IdP itself (plus the registered origin of the
client an authorization is returning to, and no other), and it names a violation-reporting
endpoint. That endpoint takes browsers' reports without a CSRF token, logs them without query
strings or tokens, and refuses oversized or malformed bodies."""
from __future__ import annotations

import json
import logging
from urllib.parse import urlencode

import pytest

from tests.integration.test_signin_flows import login, make_user
from tests.support.oidc import authorize_params, make_client, pkce_pair

PAGES = ["/", "/login", "/register", "/forgot-password", "/no/such/page", "/authorize?client_id=unknown"]


def _policy(response) -> dict[str, list[str]]:
    directives = {}
    for part in response.headers["Content-Security-Policy"].split(";"):
        words = part.split()
        if words:
            assert words[0] not in directives, f"{words[0]} given twice"
            directives[words[0]] = words[1:]
    return directives


@pytest.mark.parametrize("path", PAGES)
def test_item_96_every_page_has_the_strict_policy(app, client, path):
    policy = _policy(client.get(path))
    assert policy["default-src"] == ["'self'"]
    script = policy["script-src"]
    assert "'self'" in script and sum(s.startswith("'nonce-") for s in script) == 1
    assert not {"'unsafe-inline'", "'unsafe-eval'", "*", "data:", "http:", "https:"} & set(script)
    assert policy["object-src"] == ["'none'"]
    assert policy["base-uri"] == ["'none'"]
    assert policy["form-action"] == ["'self'"]
    assert policy["frame-ancestors"] == ["'none'"]
    assert "'unsafe-inline'" not in policy.get("style-src", [])
    assert policy["report-uri"] == ["/csp-report"] and policy["report-to"] == ["csp"]
    assert client.get(path).headers["Reporting-Endpoints"] == 'csp="http://localhost/csp-report"'


def test_item_96_form_action_allows_only_the_returning_clients_registered_origin(app, client):
    client_id, _ = make_client(app)
    make_client(app, name="Other", redirect_uris=["https://other.example.gov.za/cb"])
    make_user(app)
    _, challenge = pkce_pair()
    authorize = "/authorize?" + urlencode(authorize_params(client_id, challenge))
    sign_in = client.get("/login?" + urlencode({"next": authorize}))
    assert _policy(sign_in)["form-action"] == ["'self'", "https://billing.example.gov.za"]
    assert login(client).status_code == 303
    consent = client.get(authorize)
    assert _policy(consent)["form-action"] == ["'self'", "https://billing.example.gov.za"]
    # A next that is not an authorization of a registered client widens nothing.
    forged = client.get("/login?" + urlencode({"next": "/authorize?client_id=nope&redirect_uri=https://evil.tld/"}))
    assert _policy(forged)["form-action"] == ["'self'"]


def test_item_96_violation_reports_are_taken_and_logged_without_secrets(app, client, caplog):
    report = {"csp-report": {"document-uri": "http://localhost/reset-password/SECRETTOKEN?code=abc",
                             "violated-directive": "script-src-elem",
                             "effective-directive": "script-src-elem",
                             "blocked-uri": "https://evil.tld/x.js?session=STOLEN#frag",
                             "original-policy": "default-src 'self'", "script-sample": "alert('hi')"}}
    with caplog.at_level(logging.WARNING, logger="idp.csp"):
        response = client.post("/csp-report", data=json.dumps(report), content_type="application/csp-report")
        reporting_api = client.post("/csp-report", content_type="application/reports+json", data=json.dumps([
            {"type": "csp-violation", "url": "http://localhost/login",
             "body": {"effectiveDirective": "img-src", "blockedURL": "https://tracker.tld/p.gif?u=1",
                      "disposition": "enforce"}}]))
    assert response.status_code == 204 and reporting_api.status_code == 204  # no CSRF token needed
    logged = "\n".join(r.getMessage() for r in caplog.records if r.name == "idp.csp")
    assert "script-src-elem" in logged and "evil.tld/x.js" in logged and "tracker.tld/p.gif" in logged
    for secret in ("STOLEN", "code=abc", "alert(", "frag", "u=1"):
        assert secret not in logged


def test_item_96_report_endpoint_refuses_oversized_and_malformed_bodies(app, client, caplog):
    big = client.post("/csp-report", data=json.dumps({"csp-report": {"blocked-uri": "x" * 20_000}}),
                      content_type="application/csp-report")
    assert big.status_code == 413
    assert client.post("/csp-report", data="{not json", content_type="application/csp-report").status_code == 400
    assert client.post("/csp-report", data="[" * 5000, content_type="application/csp-report").status_code == 400
    with caplog.at_level(logging.WARNING, logger="idp.csp"):
        many = client.post("/csp-report", content_type="application/reports+json",
                           data=json.dumps([{"body": {"blockedURL": "https://a.tld/\r\nforged line"}}] * 100))
    assert many.status_code == 204
    lines = [r.getMessage() for r in caplog.records if r.name == "idp.csp"]
    assert len(lines) <= 10 and not any("\n" in line or "\r" in line for line in lines)
    assert client.get("/csp-report").status_code == 405


def test_item_96_one_address_cannot_flood_the_log_with_reports(app, client, caplog, monkeypatch):
    from idp.security import headers

    monkeypatch.setattr(headers, "REPORTS_PER_HOUR", 3)
    report = json.dumps({"csp-report": {"blocked-uri": "https://evil.example/x.js"}})
    with caplog.at_level(logging.WARNING, logger="idp.csp"):
        answers = [client.post("/csp-report", data=report, content_type="application/csp-report") for _ in range(5)]
    assert [a.status_code for a in answers] == [204, 204, 204, 429, 429]
    assert answers[-1].headers["Retry-After"] == "3600"
    assert len([r for r in caplog.records if r.name == "idp.csp"]) == 3
    other = app.test_client()
    other_answer = other.post("/csp-report", data=report, content_type="application/csp-report",
                              environ_base={"REMOTE_ADDR": "203.0.113.9"})
    assert other_answer.status_code == 204  # counted per address
