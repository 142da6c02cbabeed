"""Checklist 46: Host-header / link poisoning. Reset and verification requests sent with a forged
``Host``, ``X-Forwarded-Host`` or odd ``X-Forwarded-Proto`` never produce links to another origin:
an unknown Host is refused with 400 before anything is sent, forwarded headers from an untrusted
client are ignored, and links always use the configured issuer (also behind a trusted proxy)."""
from __future__ import annotations

import pytest

from idp.extensions import db
from idp.models import ActionToken
from tests.conftest import csrf_token, migrated_app
from tests.integration.test_signin_flows import PASSWORD, make_user
from tests.support.smtp import first_link

EVIL = "evil.example"


def _token(client, path, **kw):
    return csrf_token(client.get(path, **kw).get_data(as_text=True))


@pytest.mark.parametrize("host", [EVIL, "localhost.evil.example", "localhost:8080", "localhost@evil.example",
                                  "127.0.0.1:8080", "LOCALHOST.", "[::1]:8081"])
def test_item_46_unknown_host_is_400_and_nothing_is_sent(app, client, smtp_server, host):
    make_user(app)
    assert client.get("/forgot-password", headers={"Host": host}).status_code == 400
    token = _token(client, "/forgot-password")
    response = client.post("/forgot-password", data={"csrf_token": token, "email": "amara@example.org"},
                           headers={"Host": host})
    assert response.status_code == 400
    assert EVIL not in response.get_data(as_text=True)
    with app.app_context():
        assert db.session.scalar(db.select(db.func.count()).select_from(ActionToken)) == 0
    assert smtp_server.messages == []


def test_item_46_a_loopback_issuer_answers_on_every_loopback_name_of_its_port_only():
    from idp.config import load_settings
    from idp.security.hosts import host_allowed

    local = load_settings({"IDP_ISSUER": "http://localhost:5000", "IDP_SECRET_KEY": "k" * 40})
    assert all(host_allowed(local, host, "http") for host in ("localhost:5000", "127.0.0.1:5000", "[::1]:5000"))
    assert not any(host_allowed(local, host, "http") for host in ("127.0.0.1:5001", "10.0.0.1:5000", EVIL))
    public = load_settings({"IDP_ISSUER": "https://id.example.gov.za", "IDP_SECRET_KEY": "k" * 40})
    assert host_allowed(public, "id.example.gov.za", "https")
    assert not any(host_allowed(public, host, "https") for host in ("127.0.0.1", "localhost", "[::1]"))


def test_item_46_operations_endpoints_answer_on_any_host(app, client):
    assert client.get("/healthz", headers={"Host": "10.1.2.3:5000"}).status_code == 200
    assert client.get("/login", headers={"Host": "10.1.2.3:5000"}).status_code == 400


@pytest.mark.parametrize("headers", [
    {"X-Forwarded-Host": EVIL}, {"X-Forwarded-Proto": "https", "X-Forwarded-Host": EVIL},
    {"X-Forwarded-Proto": "javascript"}, {"X-Forwarded-Proto": "https://evil.example/"},
    {"Forwarded": f"host={EVIL};proto=https"}, {"X-Original-Host": EVIL, "X-Host": EVIL},
])
def test_item_46_untrusted_forwarded_headers_are_ignored_for_reset_links(app, client, smtp_server, headers):
    make_user(app)
    token = _token(client, "/forgot-password")
    client.post("/forgot-password", data={"csrf_token": token, "email": "amara@example.org"}, headers=headers)
    link = first_link(smtp_server.wait_for("amara@example.org", subject_contains="Reset"))
    assert link.startswith("http://localhost/reset-password/")


def test_item_46_verification_link_uses_the_issuer(app, client, smtp_server):
    make_user(app, verified=False)
    token = _token(client, "/verify-email/resend")
    client.post("/verify-email/resend", data={"csrf_token": token, "email": "amara@example.org"},
                headers={"X-Forwarded-Host": EVIL, "X-Forwarded-Proto": "https"})
    link = first_link(smtp_server.wait_for("amara@example.org", subject_contains="Confirm"))
    assert link.startswith("http://localhost/verify-email/")


def test_item_46_behind_a_trusted_proxy_a_forged_forwarded_host_is_400(tmp_path, smtp_server):
    with migrated_app(tmp_path, smtp_server.port, IDP_TRUST_PROXY="1",
                      IDP_ISSUER="https://id.example.gov.za") as proxied:
        make_user(proxied)
        http = proxied.test_client()
        good = {"X-Forwarded-Host": "id.example.gov.za", "X-Forwarded-Proto": "https"}
        assert http.get("/forgot-password", headers=good).status_code == 200
        bad = {"X-Forwarded-Host": EVIL, "X-Forwarded-Proto": "https"}
        assert http.get("/forgot-password", headers=bad).status_code == 400
        token = _token(http, "/forgot-password", headers=good)
        assert http.post("/forgot-password", data={"csrf_token": token, "email": "amara@example.org"},
                         headers=bad).status_code == 400
        with proxied.app_context():
            assert db.session.scalar(db.select(db.func.count()).select_from(ActionToken)) == 0
        assert PASSWORD  # the account exists; nothing was issued for it


def test_item_46_allowed_hosts_setting_admits_listed_names_only(tmp_path, smtp_server):
    with migrated_app(tmp_path, smtp_server.port, IDP_ALLOWED_HOSTS="idp.internal:5000, id-alias.example") as app2:
        http = app2.test_client()
        assert http.get("/login", headers={"Host": "idp.internal:5000"}).status_code == 200
        assert http.get("/login", headers={"Host": "idp.internal:5001"}).status_code == 400
        assert http.get("/login", headers={"Host": "id-alias.example:8443"}).status_code == 200
        assert http.get("/login", headers={"Host": EVIL}).status_code == 400


@pytest.mark.parametrize("value", ["*", "evil.example/path", "http://x.example", "a@b.example", "host:notaport"])
def test_item_46_allowed_hosts_setting_is_validated(value):
    from idp.config import ConfigError, load_settings

    with pytest.raises(ConfigError) as info:
        load_settings({"IDP_ALLOWED_HOSTS": value, "IDP_SECRET_KEY": "k" * 40})
    assert any(p.startswith("IDP_ALLOWED_HOSTS:") for p in info.value.problems)
    assert value not in str(info.value)
