"""The resident's dashboard: a card per department used, filled in parallel from each one's
summary endpoint with an access token for that department's API; a slow or down department
shows "not available right now" without holding the page up."""
from __future__ import annotations

import pytest
from joserfc import jwt
from joserfc.jwk import KeySet

from tests.support.oidc import exchange, get_code, login, make_client, make_user, pkce_pair
from tests.support.smtp import free_port
from tests.support.summary_server import SummaryServer

BILLS = {"department": "billing", "count_open": 1, "items": [
    {"title": "Account 4001234568", "status": "in arrears", "amount_due": "812.40", "due_on": "2026-11-07",
     "url": "https://billing.example.gov.za/accounts/4001234568"},
    {"title": "<script>alert(1)</script>", "status": "odd", "url": "javascript:alert(1)"}]}
PERMITS = {"department": "permits", "count_open": 1, "items": [
    {"title": "Event permit: Street soccer final", "status": "submitted", "reference": "PRM-2026-000042",
     "url": "https://permits.example.gov.za/applications/PRM-2026-000042"}]}


@pytest.fixture
def departments():
    servers = {"billing": SummaryServer(BILLS).start(), "permits": SummaryServer(PERMITS, delay=4).start()}
    yield servers
    for server in servers.values():
        server.stop()


def use(app, client, name, api_resource):
    """Register a department and have the resident sign in to it once (a real code exchange)."""
    client_id, secret = make_client(app, name=name, api_resource=api_resource, first_party=True)
    verifier, challenge = pkce_pair()
    code = get_code(client, client_id, challenge)
    assert exchange(client, client_id, secret, code, verifier).status_code == 200
    return client_id, secret


def test_cards_for_the_departments_used_with_slow_and_down_ones_marked(app, client, departments):
    sub = make_user(app)
    login(client)
    use(app, client, "City Billing", departments["billing"].api)
    use(app, client, "City Permits", departments["permits"].api)  # answers after 4 s: too slow
    use(app, client, "Report a Problem", f"http://127.0.0.1:{free_port()}/api")  # nothing listens
    make_client(app, name="Unused Department", api_resource="https://unused.example.gov.za/api")

    page = client.get("/account/dashboard").get_data(as_text=True)  # timeout 2 s; permits answers after 4 s

    assert "Unused Department" not in page
    billing = page.split("City Billing", 1)[1].split("</section>", 1)[0]
    assert "Account 4001234568" in billing and "R812.40 due" in billing
    assert 'href="https://billing.example.gov.za/accounts/4001234568"' in billing
    assert "<script>alert" not in page and "javascript:" not in page  # escaped text, no script link
    for slow_or_down in ("City Permits", "Report a Problem"):
        card = page.split(slow_or_down, 1)[1].split("</section>", 1)[0]
        assert "Not available right now" in card

    asked = departments["billing"].asked
    assert asked[0]["path"] == f"/api/residents/{sub}/summary"


def test_the_token_is_for_that_department_only_and_it_can_introspect_it(app, client, departments):
    make_user(app)
    login(client)
    billing = use(app, client, "City Billing", departments["billing"].api)
    other = make_client(app, name="City Permits", api_resource="https://permits.example.gov.za/api")
    client.get("/account/dashboard")
    client.get("/account/dashboard")  # the token is reused, not minted per page view
    headers = {a["authorization"] for a in departments["billing"].asked}
    assert len(departments["billing"].asked) == 2 and len(headers) == 1
    token = headers.pop().removeprefix("Bearer ")
    claims = jwt.decode(token, KeySet.import_key_set(client.get("/jwks.json").get_json()),
                        algorithms=["RS256", "ES256"]).claims
    assert claims["aud"] == departments["billing"].api and claims["client_id"] == "ecitizen-passport-dashboard"
    assert client.post("/introspect", data={"token": token}, auth=billing).get_json()["active"] is True
    assert client.post("/introspect", data={"token": token}, auth=other).get_json() == {"active": False}


def test_a_disconnected_department_leaves_the_dashboard(app, client, departments):
    make_user(app)
    login(client)
    client_id, _ = use(app, client, "City Billing", departments["billing"].api)
    assert "City Billing" in client.get("/account/dashboard").get_data(as_text=True)
    from tests.conftest import csrf_token

    page = client.get("/account/services").get_data(as_text=True)
    client.post("/account/services/revoke", data={"client_id": client_id, "csrf_token": csrf_token(page)})
    page = client.get("/account/dashboard").get_data(as_text=True)
    main = page.split("<main", 1)[1].split("</main>", 1)[0]  # the footer's language switcher has its own heading
    assert "<h2" not in main and "not used a city service" in main


def test_the_dashboard_needs_a_signed_in_resident(client):
    response = client.get("/account/dashboard")
    assert response.status_code == 302 and "/login" in response.headers["Location"]
