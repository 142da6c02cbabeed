"""Two `idp serve` instances of one deployment share PostgreSQL and Redis: a resident signs in at
one and is known at the other, a code issued by one is exchanged at the other, signing out at one
ends the session at both, and a key rotation is published by both."""
from __future__ import annotations

import base64
import hashlib
import json
import re
import secrets
import time
from urllib.parse import parse_qs, urlsplit

import pytest
import requests

from tests.support.databases import postgres_admin_url, redis_url
from tests.support.server import IdpServer

pytestmark = pytest.mark.e2e

EMAIL, PASSWORD = "nandi@example.org", "two instances one resident"
REDIRECT = "https://billing.example.gov.za/cb"
CSRF = re.compile(r'name="csrf_token"[^>]*value="([^"]+)"')


@pytest.fixture
def pair(tmp_path, smtp_server):
    if not (postgres_admin_url() and redis_url(3)):
        pytest.skip("needs IDP_TEST_DATABASE_URL and IDP_TEST_REDIS_URL (shared PostgreSQL and Redis)")
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    first = IdpServer(tmp_path / "a", smtp_port=smtp_server.port, extra_env={"IDP_REDIS_URL": redis_url(3)})
    first.start()
    second = IdpServer(tmp_path / "b", smtp_port=smtp_server.port, share_with=first)
    try:
        second.start()
        yield first, second
    finally:
        second.stop()
        first.stop()


def test_one_resident_across_two_instances(pair):
    first, second = pair
    first.cli("users", "create", "--email", EMAIL, "--password", PASSWORD, "--verified-email")
    created = json.loads(first.cli("clients", "create", "--name", "Billing", "--redirect-uri", REDIRECT,
                                   "--first-party", "--json").stdout)
    browser = requests.Session()
    page = browser.get(first.url + "/login", timeout=10).text
    signed_in = browser.post(first.url + "/login", data={"csrf_token": CSRF.search(page).group(1), "email": EMAIL,
                                                          "password": PASSWORD, "next": "/account/"},
                             allow_redirects=False, timeout=10)
    assert signed_in.status_code == 303
    assert browser.get(second.url + "/account/", allow_redirects=False, timeout=10).status_code == 200

    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    authorized = browser.get(second.url + "/authorize", params={
        "response_type": "code", "client_id": created["client_id"], "redirect_uri": REDIRECT, "scope": "openid email",
        "state": "s1", "nonce": "n1", "code_challenge": challenge, "code_challenge_method": "S256"},
        allow_redirects=False, timeout=10)
    assert authorized.status_code == 302, authorized.text[:300]
    query = parse_qs(urlsplit(authorized.headers["Location"]).query)
    assert query["iss"] == [first.url]  # one issuer, whichever instance answered
    tokens = requests.post(first.url + "/token", data={"grant_type": "authorization_code", "code": query["code"][0],
                                                       "redirect_uri": REDIRECT, "code_verifier": verifier},
                           auth=(created["client_id"], created["client_secret"]), timeout=10)
    assert tokens.status_code == 200, tokens.text
    userinfo = requests.get(second.url + "/userinfo", timeout=10,
                            headers={"Authorization": "Bearer " + tokens.json()["access_token"]})
    assert userinfo.json()["email"] == EMAIL

    page = browser.get(second.url + "/account/", timeout=10).text
    browser.post(second.url + "/logout", data={"csrf_token": CSRF.search(page).group(1)}, timeout=10)
    assert browser.get(first.url + "/account/", allow_redirects=False, timeout=10).status_code == 302
    assert browser.get(second.url + "/account/", allow_redirects=False, timeout=10).status_code == 302

    before = {k["kid"] for k in requests.get(second.url + "/jwks.json", timeout=10).json()["keys"]}
    rotated = first.cli("keys", "rotate").stdout
    new_kid = re.search(r"new signing key (\S+)", rotated).group(1)
    assert new_kid not in before
    deadline = time.monotonic() + 20  # each instance checks the store's key marker every few seconds
    while time.monotonic() < deadline:
        published = [{k["kid"] for k in requests.get(s.url + "/jwks.json", timeout=10).json()["keys"]}
                     for s in (first, second)]
        if all(new_kid in kids for kids in published):
            break
        time.sleep(0.5)
    assert all(new_kid in kids for kids in published), published


def _service_token(server, client_id: str, secret: str) -> int:
    return requests.post(server.url + "/token", data={"grant_type": "client_credentials"}, auth=(client_id, secret),
                         timeout=10).status_code


def test_a_client_change_at_one_place_holds_at_every_instance_at_once(pair):
    """Each instance keeps its callers in memory; a rotation made elsewhere (here by the CLI, a third
    process) is seen by both at their next request, not when their copy ages out."""
    first, second = pair
    created = json.loads(first.cli("clients", "create", "--name", "Billing", "--redirect-uri", REDIRECT,
                                   "--grant-type", "client_credentials", "--json").stdout)
    client_id, old = created["client_id"], created["client_secret"]
    assert [_service_token(s, client_id, old) for s in (first, second)] == [200, 200]  # both copies warm
    rotated = json.loads(first.cli("clients", "rotate-secret", client_id, "--reason", "yearly").stdout)
    assert [_service_token(s, client_id, rotated["client_secret"]) for s in (first, second)] == [200, 200]
    assert [_service_token(s, client_id, "not-the-secret") for s in (first, second)] == [401, 401]
