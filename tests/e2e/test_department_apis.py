"""Department APIs against a real ``idp serve``: billing's API takes only RFC 9068 access tokens
issued for it (good, expired, wrong-audience, revoked and forged tokens), and complaints asks
billing, with a ``client_credentials`` token, whether an account is in arrears."""
from __future__ import annotations

import re
import time

import pytest
import requests

from relying_party_examples.common import tokens as token_checks
from tests.support.departments import DepartmentServer
from tests.support.server import IdpServer

pytestmark = pytest.mark.e2e

ACCOUNT = "4001234568"


@pytest.fixture(scope="module")
def city(tmp_path_factory, smtp_server):
    tmp_path = tmp_path_factory.mktemp("city")
    idp_server = IdpServer(tmp_path, smtp_port=smtp_server.port).start()
    billing = DepartmentServer("billing", idp_server, tmp_path).start()
    complaints = DepartmentServer("complaints", idp_server, tmp_path, extra={
        "RP_BILLING_API_URL": billing.api, "RP_BILLING_API_RESOURCE": billing.api}).start()
    permits = DepartmentServer("permits", idp_server, tmp_path).start()
    yield {"idp": idp_server, "billing": billing, "complaints": complaints, "permits": permits}
    for department in (billing, complaints, permits):
        department.stop()
    idp_server.stop()


def token_for(city, caller: str, resource: str | None) -> dict:
    department = city[caller]
    data = {"grant_type": "client_credentials"}
    if resource:
        data["resource"] = resource
    response = requests.post(f"{city['idp'].url}/token", data=data,
                             auth=(department.client_id, department.client_secret), timeout=10)
    assert response.status_code == 200, response.text
    return response.json()


def standing(city, token: str | None) -> requests.Response:
    headers = {"Authorization": f"Bearer {token}"} if token is not None else {}
    return requests.get(f"{city['billing'].api}/accounts/{ACCOUNT}/standing", headers=headers, timeout=10)


def test_billing_answers_a_token_issued_for_its_api(city):
    response = standing(city, token_for(city, "complaints", city["billing"].api)["access_token"])
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["account_number"] == ACCOUNT and isinstance(body["in_arrears"], bool)
    assert body["currency"] == "ZAR"


@pytest.mark.parametrize("audience", ["permits", "caller itself"])
def test_billing_refuses_a_token_for_another_audience(city, audience):
    resource = city["permits"].api if audience == "permits" else None
    response = standing(city, token_for(city, "complaints", resource)["access_token"])
    assert response.status_code == 401
    assert response.json()["error"] == "invalid_token" and "audience" in response.json()["error_description"]
    assert response.headers["WWW-Authenticate"].startswith("Bearer error=\"invalid_token\"")


def test_billing_refuses_a_revoked_token(city):
    issued = token_for(city, "complaints", city["billing"].api)["access_token"]
    assert standing(city, issued).status_code == 200
    complaints = city["complaints"]
    revoked = requests.post(f"{city['idp'].url}/revoke", data={"token": issued},
                            auth=(complaints.client_id, complaints.client_secret), timeout=10)
    assert revoked.status_code == 200
    response = standing(city, issued)
    assert response.status_code == 401 and "revoked" in response.json()["error_description"]


def test_billing_refuses_an_expired_token(city, monkeypatch):
    issued = token_for(city, "complaints", city["billing"].api)
    assert standing(city, issued["access_token"]).status_code == 200
    later = time.time() + issued["expires_in"] + token_checks.LEEWAY + 5
    monkeypatch.setattr(token_checks, "time", type("Clock", (), {"time": staticmethod(lambda: later)}))
    response = standing(city, issued["access_token"])
    assert response.status_code == 401 and response.json()["error_description"] == "expired"


@pytest.mark.parametrize("header", [None, "Basic abc", "Bearer not-a-jwt", "Bearer a.b.c"])
def test_billing_refuses_missing_or_malformed_tokens(city, header):
    headers = {"Authorization": header} if header else {}
    response = requests.get(f"{city['billing'].api}/accounts/{ACCOUNT}/standing", headers=headers, timeout=10)
    assert response.status_code == 401 and response.json()["error"] == "invalid_token"


def test_billing_refuses_a_token_signed_by_someone_else(city):
    from joserfc import jwt
    from joserfc.jwk import RSAKey

    key = RSAKey.generate_key(2048, parameters={"kid": "attacker"})
    now = int(time.time())
    forged = jwt.encode({"alg": "RS256", "kid": "attacker", "typ": "at+jwt"},
                        {"iss": city["idp"].url, "aud": city["billing"].api, "sub": "x", "client_id": "x",
                         "iat": now, "exp": now + 300, "jti": "j"}, key)
    response = standing(city, forged)
    assert response.status_code == 401 and "signature" in response.json()["error_description"]


def test_a_billing_query_at_complaints_is_routed_by_billings_answer(city):
    """Complaints asks billing's API over HTTP with a client_credentials token; a fresh demo
    account is in arrears, so the query goes to collections."""
    complaints = city["complaints"]
    http = requests.Session()
    complaints.sign_in(http, {"sub": "resident-1", "name": "Thandi Nkosi", "sid": "sid-1",
                              "acr": "urn:ecitizen:acr:password",
                              "municipal_accounts": [{"account_number": ACCOUNT, "account_type": "residential",
                                                      "role": "owner"}]})
    form = http.get(f"{complaints.url}/report", timeout=10).text
    token = re.search(r'name="csrf_token" value="([^"]+)"', form)[1]
    response = http.post(f"{complaints.url}/report", timeout=20, data={
        "csrf_token": token, "category": "billing query", "account_number": ACCOUNT,
        "location": "14 Bree Street, Cape Town", "description": "My last statement charged water twice."})
    assert response.status_code == 200 and "/requests/CMP-" in response.url, response.text[:500]
    assert standing(city, token_for(city, "complaints", city["billing"].api)["access_token"]).json()["in_arrears"]
    assert "Revenue: collections" in response.text
