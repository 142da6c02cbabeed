"""Checklist 84: client-IP trust. Attackers send spoofed, rotating, multiple, unparsable and
IPv4-mapped X-Forwarded-For values to get a fresh per-IP rate-limit bucket or a forged address in
the audit log. The address must be the one the trusted proxy hop (IDP_TRUST_PROXY, none by
default) appended, normalised; nothing a client writes before it counts; no 500."""
from __future__ import annotations

import pytest

from idp.extensions import db
from idp.models import AuditEvent
from tests.conftest import csrf_token, empty_tables_and_store, migrated_app
from tests.support.oidc import PASSWORD, make_user

IP_LIMIT = 5  # IDP_IP_MAX_FAILURES (its minimum), so the per-IP bucket fills quickly
PROXY = "10.0.0.2"  # the reverse proxy's own address, as the socket sees it


@pytest.fixture(scope="module")
def proxied_app(tmp_path_factory, smtp_server):
    with migrated_app(tmp_path_factory.mktemp("item84"), smtp_server.port, IDP_TRUST_PROXY="1",
                      IDP_IP_MAX_FAILURES=str(IP_LIMIT)) as application:
        yield application


@pytest.fixture
def proxied(proxied_app):
    """The proxied application with empty tables and store for each test."""
    yield proxied_app
    empty_tables_and_store(proxied_app)


def _sign_in(application, email: str, password: str, headers=(), remote: str = PROXY):
    http = application.test_client()
    environ = {"REMOTE_ADDR": remote}
    page = http.get("/login", environ_base=environ, headers=list(headers))
    assert page.status_code == 200
    return http.post("/login", environ_base=environ, headers=list(headers),
                     data={"csrf_token": csrf_token(page.get_data(as_text=True)), "email": email,
                           "password": password, "next": ""})


def _audited_ips(application) -> list[str]:
    with application.app_context():
        return list(db.session.scalars(db.select(AuditEvent.ip_address)
                                       .where(AuditEvent.event.in_(["signin.failure", "signin.success"]))
                                       .order_by(AuditEvent.id)))


def test_item_84_without_trusted_proxies_the_header_is_ignored(app):
    """The default (IDP_TRUST_PROXY=0): X-Forwarded-For is the client's own text and means nothing."""
    assert app.config["IDP_SETTINGS"].trust_proxy == 0
    response = _sign_in(app, "nobody@example.org", "wrong password here",
                        headers=[("X-Forwarded-For", "203.0.113.66")], remote="192.0.2.10")
    assert response.status_code == 401
    assert _audited_ips(app) == ["192.0.2.10"]


def test_item_84_rotating_spoofed_values_share_the_real_clients_bucket(proxied):
    """The client prepends a new fake address each time; the proxy appends the real one."""
    for n in range(IP_LIMIT):
        spoof = f"198.51.100.{n + 1}, 203.0.113.9"
        response = _sign_in(proxied, f"victim{n}@example.org", "wrong password here",
                            headers=[("X-Forwarded-For", spoof)])
        assert response.status_code in (401, 429)
    make_user(proxied)
    refused = _sign_in(proxied, "resident@example.org", PASSWORD,
                       headers=[("X-Forwarded-For", "198.51.100.250, 203.0.113.9")])
    assert refused.status_code == 429
    assert set(_audited_ips(proxied)) == {"203.0.113.9"}
    # Another real client behind the same proxy is not affected.
    assert _sign_in(proxied, "resident@example.org", PASSWORD,
                    headers=[("X-Forwarded-For", "203.0.113.10")]).status_code == 303


def test_item_84_several_header_lines_count_as_one_list(proxied):
    """Two X-Forwarded-For lines (the client's and the proxy's) are one list: the last hop wins."""
    response = _sign_in(proxied, "nobody@example.org", "wrong password here",
                        headers=[("X-Forwarded-For", "198.51.100.7"), ("X-Forwarded-For", "203.0.113.9")])
    assert response.status_code == 401
    assert _audited_ips(proxied) == ["203.0.113.9"]


@pytest.mark.parametrize("value", ["a", "203.0.113.9, a", "203.0.113.9, ", "999.1.1.1", "203.0.113.9:4444",
                                   "unknown", "\"203.0.113.9", "1.2.3.4, ::ffff:zz", "x" * 300])
def test_item_84_an_unparsable_hop_falls_back_to_the_connecting_address(proxied, value):
    for _ in range(IP_LIMIT):
        response = _sign_in(proxied, "nobody@example.org", "wrong password here",
                            headers=[("X-Forwarded-For", value)])
        assert response.status_code in (401, 429)
    ips = _audited_ips(proxied)
    assert ips and all(ip in (PROXY, "203.0.113.9", "1.2.3.4") for ip in ips), ips
    assert len(set(ips)) == 1
    # The bucket it used is full: no fresh bucket was made up from the header's text.
    make_user(proxied)
    assert _sign_in(proxied, "resident@example.org", PASSWORD,
                    headers=[("X-Forwarded-For", value)]).status_code == 429


def test_item_84_ipv4_mapped_ipv6_is_the_same_client(proxied):
    for n in range(IP_LIMIT):
        value = "::ffff:203.0.113.9" if n % 2 else "203.0.113.9"
        _sign_in(proxied, f"victim{n}@example.org", "wrong password here", headers=[("X-Forwarded-For", value)])
    make_user(proxied)
    refused = _sign_in(proxied, "resident@example.org", PASSWORD,
                       headers=[("X-Forwarded-For", "::FFFF:cb00:7109")])  # 203.0.113.9, written in hex
    assert refused.status_code == 429
    assert set(_audited_ips(proxied)) == {"203.0.113.9"}


def test_item_84_too_few_hops_means_the_proxy_address(proxied):
    """No header at all (a request that bypassed the proxy's rewrite): the socket address counts."""
    response = _sign_in(proxied, "nobody@example.org", "wrong password here", remote="192.0.2.44")
    assert response.status_code == 401
    assert _audited_ips(proxied) == ["192.0.2.44"]
