"""Checklist 4: error responses to a valid client and redirect URI. Invalid scope, unsupported or
unprintable response_type, bad PKCE parameters, bad max_age/prompt/claims, access_denied and the
prompt=none errors, each sent with attacker-chosen text in the offending parameter: the answer
redirects only to the registered URI, carries error, state and iss (RFC 9207) and nothing else
besides an error_description that is a fixed server string (the same whatever was sent, never
echoing it), and no code."""
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest

from idp.extensions import db
from idp.models import AuthorizationCode
from idp.oidc.acr import ACR_MFA
from tests.conftest import csrf_token
from tests.support.oidc import REDIRECT, authorize, authorize_params, get_code, login, make_client, make_user, pkce_pair

MARKERS = ("zqxMARKERone", "Evil\\Input<svg>\u00e9")
ISSUER = "http://localhost"

# name -> (error expected, whether signed in first, parameters carrying the marker)
CASES = {
    # printable markers only for scope: a malformed scope token is invalid_request (item 20)
    "invalid_scope": ("invalid_scope", True, lambda m: {"scope": "openid " + m.encode("ascii", "ignore").decode()
                                                        .replace("\\", "")}),
    "scope_only_unknown": ("invalid_scope", True, lambda m: {"scope": m.encode("ascii", "ignore").decode()
                                                             .replace("\\", "")}),
    "response_type": ("unsupported_response_type", True, lambda m: {"response_type": m}),
    "response_type_token": ("unsupported_response_type", True, lambda m: {"response_type": "token", "nonce": m}),
    "response_type_hybrid": ("unsupported_response_type", False, lambda m: {"response_type": "code id_token",
                                                                              "nonce": m}),
    "code_challenge_method": ("invalid_request", True, lambda m: {"code_challenge_method": m}),
    "code_challenge": ("invalid_request", True, lambda m: {"code_challenge": m}),
    "max_age": ("invalid_request", True, lambda m: {"max_age": m}),
    "prompt": ("invalid_request", True, lambda m: {"prompt": m}),
    "claims": ("invalid_request", True, lambda m: {"claims": m}),
    "login_required": ("login_required", False, lambda m: {"prompt": "none", "nonce": m, "login_hint": m}),
    "consent_required": ("consent_required", True, lambda m: {"prompt": "none", "nonce": m}),
    "step_up_without_interaction": ("login_required", True, lambda m: {"prompt": "none", "acr_values": ACR_MFA + " " + m}),
}


@pytest.fixture
def rp(app):
    make_user(app)
    return make_client(app)[0]


def _error_query(response) -> dict:
    assert response.status_code == 302
    location = response.headers["Location"]
    base, _, query = location.partition("?")
    assert base == REDIRECT
    parsed = parse_qs(query, keep_blank_values=True)
    assert all(len(values) == 1 for values in parsed.values())
    result = {k: v[0] for k, v in parsed.items()}
    assert {"error", "state", "iss"} <= set(result) <= {"error", "error_description", "state", "iss"}
    assert result["state"] == "st-123" and result["iss"] == ISSUER
    return result


@pytest.mark.parametrize("case", sorted(CASES))
def test_item_4_error_redirect_has_only_fixed_fields(app, client, rp, case):
    expected, signed_in, extra = CASES[case]
    if signed_in:
        login(client)
    descriptions = []
    for marker in MARKERS:
        _, challenge = pkce_pair()
        answer = _error_query(authorize(client, authorize_params(rp, challenge, **extra(marker))))
        assert answer["error"] == expected
        description = answer.get("error_description", "")
        assert all(m not in description and m.lower() not in description.lower() for m in MARKERS)
        assert "svg" not in description and "MARKER" not in description
        descriptions.append(description)
    assert descriptions[0] == descriptions[1]  # a fixed server string
    with app.app_context():
        assert db.session.query(AuthorizationCode).count() == 0


def test_item_4_access_denied_has_state_iss_and_nothing_else(app, client, rp):
    login(client)
    _, challenge = pkce_pair()
    params = authorize_params(rp, challenge, nonce=MARKERS[0])
    page = authorize(client, params)
    assert page.status_code == 200
    denied = client.post("/authorize?" + urlencode(params),
                         data={"decision": "deny", "csrf_token": csrf_token(page.get_data(as_text=True))})
    answer = _error_query(denied)
    assert answer["error"] == "access_denied" and MARKERS[0] not in denied.headers["Location"]
    with app.app_context():
        assert db.session.query(AuthorizationCode).count() == 0


def test_item_4_error_redirect_keeps_the_registered_query_and_adds_only_error_fields(app, client):
    """A registered URI with its own query keeps it; the error fields are added, never replacing it."""
    make_user(app)
    registered = "https://billing.example.gov.za/cb?dept=billing"
    client_id, _ = make_client(app, redirect_uris=[registered])
    login(client)
    _, challenge = pkce_pair()
    response = authorize(client, authorize_params(client_id, challenge, redirect_uri=registered,
                                                  scope="openid " + MARKERS[0]))
    location = response.headers["Location"]
    assert location.startswith(registered + "&")
    query = parse_qs(urlsplit(location).query)
    assert set(query) == {"dept", "error", "error_description", "state", "iss"} and query["dept"] == ["billing"]
    assert MARKERS[0] not in location


def test_item_4_success_after_errors_still_goes_to_the_registered_uri(app, client, rp):
    """The control: the same client and URI do get a code when the request is good."""
    login(client)
    _, challenge = pkce_pair()
    assert get_code(client, rp, challenge)
