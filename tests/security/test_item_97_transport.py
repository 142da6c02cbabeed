"""Checklist 97: transport. With an https issuer every response carries
``Strict-Transport-Security`` with max-age of at least a year and includeSubDomains; a request that
reaches the IdP over plain HTTP (directly, or marked http by the trusted proxy) is never served:
no page, no cookie, no sign-in, no token. At the edge, the shipped proxy configurations listen on
HTTPS only (or force the redirect to it) and never lower the TLS floor below 1.2."""
from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.conftest import csrf_token, migrated_app

DEPLOY = Path(__file__).parents[2] / "deploy"
ISSUER = "https://id.example.gov.za"


@pytest.fixture(scope="module")
def https_app(tmp_path_factory, smtp_server):
    with migrated_app(tmp_path_factory.mktemp("item97"), smtp_server.port, IDP_ISSUER=ISSUER,
                      IDP_TRUST_PROXY="1") as application:
        yield application


def _hsts(response) -> dict[str, str | bool]:
    value = response.headers.get("Strict-Transport-Security", "")
    parts = [p.strip() for p in value.split(";") if p.strip()]
    return {p.split("=")[0].lower(): (p.split("=", 1)[1] if "=" in p else True) for p in parts}


@pytest.mark.parametrize("path", ["/", "/login", "/.well-known/openid-configuration", "/no/such/page"])
def test_item_97_hsts_is_at_least_a_year_with_subdomains(https_app, path):
    response = https_app.test_client().get(path, base_url=ISSUER)
    hsts = _hsts(response)
    assert int(hsts["max-age"]) >= 31536000
    assert hsts.get("includesubdomains") is True


@pytest.mark.parametrize("how", ["direct", "proxy-says-http"])
def test_item_97_plain_http_is_never_served_and_sets_no_cookie(https_app, how):
    http = https_app.test_client()
    kwargs = ({"base_url": "http://id.example.gov.za"} if how == "direct" else
              {"base_url": "http://id.example.gov.za", "headers": {"X-Forwarded-Proto": "http"}})
    for path in ("/", "/login", "/authorize?client_id=x"):
        response = http.get(path, **kwargs)
        assert response.status_code in (301, 302, 307, 308, 400), path
        if response.status_code != 400:
            assert response.headers["Location"].startswith("https://id.example.gov.za/")
        assert response.headers.getlist("Set-Cookie") == [], path
    # A credential sent over plain HTTP is not looked at.
    page = https_app.test_client().get("/login", base_url=ISSUER, headers={"X-Forwarded-Proto": "https"})
    posted = http.post("/login", data={"csrf_token": csrf_token(page.get_data(as_text=True)),
                                       "email": "a@example.org", "password": "x" * 20}, **kwargs)
    assert posted.status_code in (307, 308, 400) and posted.headers.getlist("Set-Cookie") == []
    token = http.post("/token", data={"grant_type": "client_credentials"}, auth=("c", "s"), **kwargs)
    assert token.status_code == 400 and "access_token" not in token.get_data(as_text=True)


def test_item_97_over_https_the_session_cookie_is_secure(https_app):
    http = https_app.test_client()
    page = http.get("/login", base_url=ISSUER)
    for cookie in page.headers.getlist("Set-Cookie"):
        assert "Secure" in cookie and cookie.startswith("__Host-")


def test_item_97_the_shipped_proxies_are_https_only_with_a_tls_floor_of_1_2():
    caddy = (DEPLOY / "proxy" / "Caddyfile").read_text()
    sites = [s for s in re.findall(r"^(\S+)\s*\{", caddy, flags=re.M) if not s.startswith("(")]  # not snippets
    assert sites and all(site.startswith("https://") for site in sites), sites
    assert not re.search(r"protocols\s+tls1\.[01]", caddy)  # Caddy's floor is TLS 1.2 unless lowered
    hsts = re.search(r'Strict-Transport-Security\s+"max-age=(\d+);\s*includeSubDomains', caddy)
    assert hsts and int(hsts.group(1)) >= 31536000
    ingress = (DEPLOY / "k8s" / "ingress.yaml").read_text()
    assert 'force-ssl-redirect: "true"' in ingress and "tls:" in ingress
    assert not re.search(r"ssl-protocols:.*TLSv1(\.[01])?\b(?!\.[23])", ingress)
