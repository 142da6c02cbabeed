"""The authorization endpoint: exact redirect URIs, no redirect on unverifiable errors,
PKCE S256 for everyone, prompt and max_age, consent, RFC 9207 iss."""
from urllib.parse import urlencode

import pytest

from idp.extensions import db
from idp.models import AuditEvent, AuthorizationCode, Consent
from tests.conftest import csrf_token
from tests.support.oidc import (
    REDIRECT,
    authorize,
    authorize_params,
    get_code,
    login,
    make_client,
    make_user,
    pkce_pair,
    query_of,
)


@pytest.fixture
def setup(app, client):
    client_id, secret = make_client(app)
    make_user(app)
    return client_id, secret


def _codes(app):
    with app.app_context():
        return db.session.query(AuthorizationCode).count()


@pytest.mark.parametrize("bad_uri", [
    REDIRECT + "/", "https://billing.example.gov.za/CB", "https://BILLING.example.gov.za/cb",
    REDIRECT + "/extra", REDIRECT + "?x=1", REDIRECT + "#f", "https://billing.example.gov.za.evil.tld/cb",
    "https://billing.example.gov.za@evil.tld/cb", "http://billing.example.gov.za/cb",
    "https://billing.example.gov.za:443/cb", "https://billing.example.gov.za/cb/../admin",
    "https://billing.example.gov.za/%2e%2e/cb",
])
def test_altered_redirect_uri_gets_an_error_page_never_a_redirect(app, client, setup, bad_uri):
    login(client)
    _, challenge = pkce_pair()
    response = authorize(client, authorize_params(setup[0], challenge, redirect_uri=bad_uri))
    assert response.status_code == 400
    assert "Location" not in response.headers
    assert b"st-123" not in response.data
    assert _codes(app) == 0
    with app.app_context():
        assert db.session.query(AuditEvent).filter_by(event="authorize.rejected").count() == 1


def test_unknown_client_is_an_error_page(client, setup):
    _, challenge = pkce_pair()
    response = authorize(client, authorize_params("no-such-client", challenge))
    assert response.status_code == 400 and "Location" not in response.headers


def test_missing_redirect_uri_with_several_registered_is_an_error_page(app, client):
    client_id, _ = make_client(app, redirect_uris=[REDIRECT, "https://billing.example.gov.za/cb2"])
    _, challenge = pkce_pair()
    response = authorize(client, authorize_params(client_id, challenge, redirect_uri=None))
    assert response.status_code == 400 and "Location" not in response.headers


@pytest.mark.parametrize("extra", [{"prompt": "none"}, {"scope": "openid bogus"}, {"response_type": "token"},
                                   {"max_age": "-1"}])
def test_bad_redirect_combined_with_other_errors_never_redirects(client, setup, extra):
    _, challenge = pkce_pair()
    params = authorize_params(setup[0], challenge, redirect_uri="https://evil.tld/cb", **extra)
    response = authorize(client, params)
    assert response.status_code == 400 and "Location" not in response.headers


def test_response_type_token_is_refused_and_nothing_issued(app, client, setup):
    login(client)
    _, challenge = pkce_pair()
    response = authorize(client, authorize_params(setup[0], challenge, response_type="token"))
    assert response.status_code in (302, 400)
    if response.status_code == 302:
        assert query_of(response.headers["Location"])["error"] == "unsupported_response_type"
    assert "access_token" not in response.headers.get("Location", "")
    assert _codes(app) == 0


@pytest.mark.parametrize("extra, description", [
    ({"code_challenge": None, "code_challenge_method": None}, "missing PKCE"),
    ({"code_challenge_method": "plain"}, "plain"),
    ({"code_challenge_method": None}, "method omitted (plain by default)"),
])
def test_pkce_s256_is_required_for_confidential_clients_too(app, client, setup, extra, description):
    login(client)
    _, challenge = pkce_pair()
    response = authorize(client, authorize_params(setup[0], challenge, **extra))
    assert response.status_code == 302, description
    query = query_of(response.headers["Location"])
    assert query["error"] == "invalid_request" and query["state"] == "st-123"
    assert "code" not in query
    assert _codes(app) == 0


def test_prompt_none_without_session_returns_login_required_with_state_and_iss(client, setup):
    _, challenge = pkce_pair()
    response = authorize(client, authorize_params(setup[0], challenge, prompt="none"))
    assert response.status_code == 302
    location = response.headers["Location"]
    assert location.startswith(REDIRECT + "?")
    query = query_of(location)
    assert query == {"error": "login_required", "state": "st-123", "iss": "http://localhost"}


def test_without_session_the_resident_is_sent_to_sign_in_and_back(client, setup):
    _, challenge = pkce_pair()
    response = authorize(client, authorize_params(setup[0], challenge))
    assert response.status_code == 302
    assert response.headers["Location"].startswith("/login?next=%2Fauthorize%3F")


def test_success_response_carries_code_state_and_iss(client, setup):
    login(client)
    _, challenge = pkce_pair()
    params = authorize_params(setup[0], challenge)
    page = authorize(client, params)
    assert page.status_code == 200 and b"Billing" in page.data  # consent screen names the department
    response = client.post("/authorize?" + urlencode(params),
                           data={"decision": "allow", "csrf_token": csrf_token(page.get_data(as_text=True))})
    query = query_of(response.headers["Location"])
    assert query["state"] == "st-123" and query["iss"] == "http://localhost" and len(query["code"]) >= 32


def test_consent_is_remembered_per_client_and_scope(app, client, setup):
    login(client)
    _, challenge = pkce_pair()
    get_code(client, setup[0], challenge)
    again = authorize(client, authorize_params(setup[0], challenge))
    assert again.status_code == 302 and "code=" in again.headers["Location"]
    forced = authorize(client, authorize_params(setup[0], challenge, prompt="consent"))
    assert forced.status_code == 200
    with app.app_context():
        assert db.session.query(Consent).count() == 1


def test_consent_denied_returns_access_denied(app, client, setup):
    login(client)
    _, challenge = pkce_pair()
    params = authorize_params(setup[0], challenge)
    page = authorize(client, params)
    response = client.post("/authorize?" + urlencode(params),
                           data={"decision": "deny", "csrf_token": csrf_token(page.get_data(as_text=True))})
    assert query_of(response.headers["Location"])["error"] == "access_denied"
    assert _codes(app) == 0


def test_consent_without_csrf_token_changes_nothing(app, client, setup):
    login(client)
    _, challenge = pkce_pair()
    params = authorize_params(setup[0], challenge)
    response = client.post("/authorize?" + urlencode(params), data={"decision": "allow"})
    assert response.status_code == 403 and "Location" not in response.headers
    with app.app_context():
        assert db.session.query(Consent).count() == 0


def test_prompt_none_when_consent_is_needed_returns_consent_required(client, setup):
    login(client)
    _, challenge = pkce_pair()
    response = authorize(client, authorize_params(setup[0], challenge, prompt="none"))
    assert query_of(response.headers["Location"])["error"] == "consent_required"


def test_first_party_clients_skip_consent(app, client):
    client_id, _ = make_client(app, first_party=True)
    make_user(app)
    login(client)
    _, challenge = pkce_pair()
    response = authorize(client, authorize_params(client_id, challenge))
    assert response.status_code == 302 and "code=" in response.headers["Location"]


def test_prompt_login_forces_a_new_sign_in_once(client, setup):
    login(client)
    _, challenge = pkce_pair()
    get_code(client, setup[0], challenge)
    params = authorize_params(setup[0], challenge, prompt="login")
    first = authorize(client, params)
    assert first.headers["Location"].startswith("/login?next=")
    login(client)
    second = authorize(client, params)
    assert second.status_code == 302 and "code=" in second.headers["Location"]


def test_max_age_zero_forces_reauthentication(client, setup):
    login(client)
    _, challenge = pkce_pair()
    get_code(client, setup[0], challenge)
    response = authorize(client, authorize_params(setup[0], challenge, max_age="0"))
    assert response.headers["Location"].startswith("/login?next=")


def test_negative_max_age_is_invalid_request(client, setup):
    login(client)
    _, challenge = pkce_pair()
    response = authorize(client, authorize_params(setup[0], challenge, max_age="-1"))
    assert query_of(response.headers["Location"])["error"] == "invalid_request"


def test_sign_in_forms_may_end_at_the_requesting_clients_registered_origin_only(client, setup):
    """Chromium applies CSP form-action to the redirects after a form: a returning resident's
    sign-in form ends at the department without a consent page in between."""
    from urllib.parse import quote

    _, challenge = pkce_pair()
    params = authorize_params(setup[0], challenge)
    good = client.get("/login?next=" + quote("/authorize?" + urlencode(params)))
    assert "https://billing.example.gov.za" in good.headers["Content-Security-Policy"].split("form-action")[1]
    forged = dict(params, redirect_uri="https://evil.example/cb")
    bad = client.get("/login?next=" + quote("/authorize?" + urlencode(forged)))
    policy = bad.headers["Content-Security-Policy"]
    assert "evil.example" not in policy and "billing.example" not in policy
