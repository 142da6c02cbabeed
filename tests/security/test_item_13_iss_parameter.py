"""Checklist 13: RFC 9207 ``iss`` parameter. A mix-up attacker relies on a client not knowing which
issuer answered: every authorization response sent to the client's redirect URI, success and every
kind of error, carries exactly one ``iss`` equal byte-for-byte to the discovery ``issuer``, and the
metadata advertises ``authorization_response_iss_parameter_supported: true``."""
from __future__ import annotations

from urllib.parse import parse_qs, urlencode, urlsplit

import pytest

from tests.conftest import csrf_token
from tests.support.oidc import REDIRECT, authorize, authorize_params, login, make_client, make_user, pkce_pair

MFA = "urn:ecitizen:acr:mfa"


def _issuer(client) -> str:
    metadata = client.get("/.well-known/openid-configuration").get_json()
    assert metadata["authorization_response_iss_parameter_supported"] is True
    return metadata["issuer"]


def _assert_iss(client, response, expected_error: str | None) -> dict:
    assert response.status_code == 302
    location = response.headers["Location"]
    assert location.startswith(REDIRECT + "?")
    query = parse_qs(urlsplit(location).query)
    assert query["iss"] == [_issuer(client)]  # present exactly once, the exact issuer
    assert query["state"] == ["st-123"]
    if expected_error:
        assert query["error"] == [expected_error] and "code" not in query
    else:
        assert "code" in query and "error" not in query
    return query


@pytest.fixture
def setup(app, client):
    client_id, _ = make_client(app)
    make_user(app)
    return client_id


@pytest.mark.parametrize("extra, error", [
    ({"max_age": "abc"}, "invalid_request"),
    ({"prompt": "none login"}, "invalid_request"),
    ({"scope": "openid phone"}, "invalid_scope"),
    ({"response_type": "code id_token"}, "unsupported_response_type"),
    ({"request": "eyJhbGciOiJub25lIn0.e30."}, "request_not_supported"),
    ({"prompt": "none", "acr_values": MFA}, "login_required"),  # a step-up is a sign-in (checklist 11)
    ({"prompt": "none"}, "consent_required"),
])
def test_item_13_error_responses_for_a_signed_in_resident_carry_iss(client, setup, extra, error):
    login(client)
    _, challenge = pkce_pair()
    _assert_iss(client, authorize(client, authorize_params(setup, challenge, **extra)), error)


def test_item_13_login_required_without_session_carries_iss(client, setup):
    _, challenge = pkce_pair()
    _assert_iss(client, authorize(client, authorize_params(setup, challenge, prompt="none")), "login_required")


def test_item_13_access_denied_and_success_after_consent_carry_iss(client, setup):
    login(client)
    _, challenge = pkce_pair()
    params = authorize_params(setup, challenge)
    page = authorize(client, params)
    assert page.status_code == 200
    token = csrf_token(page.get_data(as_text=True))
    denied = client.post("/authorize?" + urlencode(params), data={"decision": "deny", "csrf_token": token})
    _assert_iss(client, denied, "access_denied")
    allowed = client.post("/authorize?" + urlencode(params), data={"decision": "allow", "csrf_token": token})
    _assert_iss(client, allowed, None)
    # Consent remembered: the direct success response carries it too.
    _assert_iss(client, authorize(client, params), None)
