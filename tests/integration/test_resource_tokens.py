"""Department-to-department tokens (RFC 8707 resource indicators with client_credentials): the
token's aud is the API asked for, only registered APIs can be asked for, and introspection shows
a token to the API it is for and to no other client."""
from __future__ import annotations

import pytest
from joserfc import jwt
from joserfc.jwk import KeySet

from idp.extensions import db
from idp.models import Client, Token
from idp.services import DomainError
from idp.services import clients as client_service
from tests.support.oidc import make_client

BILLING_API = "https://billing.example.gov.za/api"


@pytest.fixture
def departments(app):
    billing = make_client(app, name="Billing", api_resource=BILLING_API)
    complaints = make_client(app, name="Complaints", redirect_uris=["https://complaints.example.gov.za/cb"])
    permits = make_client(app, name="Permits", redirect_uris=["https://permits.example.gov.za/cb"],
                          api_resource="https://permits.example.gov.za/api")
    return {"billing": billing, "complaints": complaints, "permits": permits}


def claims_of(client, token: str) -> dict:
    keys = KeySet.import_key_set(client.get("/jwks.json").get_json())
    return jwt.decode(token, keys, algorithms=["RS256", "ES256"]).claims


def service_token(client, who, **form):
    return client.post("/token", data={"grant_type": "client_credentials", **form}, auth=who)


def introspect(client, who, token):
    return client.post("/introspect", data={"token": token}, auth=who).get_json()


def test_a_token_for_another_department_carries_its_api_as_audience(app, client, departments):
    response = service_token(client, departments["complaints"], resource=BILLING_API)
    assert response.status_code == 200, response.get_json()
    token = response.get_json()["access_token"]
    claims = claims_of(client, token)
    assert claims["aud"] == BILLING_API and claims["client_id"] == departments["complaints"][0]
    seen_by_billing = introspect(client, departments["billing"], token)
    assert seen_by_billing["active"] is True and seen_by_billing["aud"] == BILLING_API
    assert introspect(client, departments["complaints"], token)["active"] is True
    assert introspect(client, departments["permits"], token) == {"active": False}


def test_without_a_resource_the_token_is_for_the_client_itself(app, client, departments):
    token = service_token(client, departments["complaints"]).get_json()["access_token"]
    assert claims_of(client, token)["aud"] == departments["complaints"][0]
    assert introspect(client, departments["billing"], token) == {"active": False}


@pytest.mark.parametrize("resources", [["https://unknown.example.gov.za/api"], [BILLING_API + "/"],
                                       [BILLING_API, "https://permits.example.gov.za/api"]])
def test_unregistered_or_several_resources_are_refused(app, client, departments, resources):
    response = service_token(client, departments["complaints"], resource=resources)
    assert response.status_code == 400 and response.get_json()["error"] == "invalid_target"
    with app.app_context():
        assert db.session.scalar(db.select(db.func.count(Token.id))) == 0


def test_a_disabled_department_api_cannot_be_asked_for(app, client, departments):
    with app.app_context():
        client_service.set_disabled(client_service.find_client(departments["billing"][0]), True)
    response = service_token(client, departments["complaints"], resource=BILLING_API)
    assert response.status_code == 400 and response.get_json()["error"] == "invalid_target"


def test_an_api_resource_is_registered_once_and_must_be_an_https_url(app, departments):
    with app.app_context():
        for bad in (BILLING_API, "http://billing.example.gov.za/api", "billing-api", BILLING_API + "#x"):
            with pytest.raises(DomainError):
                client_service.create_client("Copycat", ["https://copy.example.gov.za/cb"], api_resource=bad)
        assert db.session.scalar(db.select(db.func.count(Client.id)).where(Client.name == "Copycat")) == 0
