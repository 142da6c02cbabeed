"""Checklist 20: Malformed requests. An attacker repeats authorization parameters (hoping one copy
is validated and another used), smuggles control characters into ``scope``, or sends ``request`` /
``request_uri`` objects the server does not support: each is an explicit error (``invalid_request``,
``request_not_supported``, ``request_uri_not_supported``), never silently ignored; when the repeated
parameter makes the client or redirect URI ambiguous the error stays on the OP (no redirect at all);
nothing is issued."""
from __future__ import annotations

from urllib.parse import parse_qs, urlencode, urlsplit

import pytest

from idp.extensions import db
from idp.models import AuditEvent, AuthorizationCode
from tests.support.oidc import REDIRECT, authorize, authorize_params, get_code, login, make_client, make_user, pkce_pair


@pytest.fixture
def rp(app, client):
    client_id, secret = make_client(app)
    make_user(app)
    login(client)
    _, challenge = pkce_pair()
    get_code(client, client_id, challenge)  # consent given: a request that slipped through would get a code
    with app.app_context():
        db.session.query(AuthorizationCode).delete()
        db.session.commit()
    return client_id, secret


def _no_code(app):
    with app.app_context():
        assert db.session.query(AuthorizationCode).count() == 0


def _redirect_error(response) -> dict:
    assert response.status_code == 302
    location = response.headers["Location"]
    assert location.startswith(REDIRECT + "?")
    query = {k: v[0] for k, v in parse_qs(urlsplit(location).query).items()}
    assert "code" not in query
    return query


@pytest.mark.parametrize("duplicate", [
    ("client_id", "other-client"), ("redirect_uri", "https://evil.example/cb"), ("redirect_uri", REDIRECT),
    ("response_type", "token"),
])
def test_item_20_repeated_client_or_redirect_stays_on_the_op(app, client, rp, duplicate):
    _, challenge = pkce_pair()
    query = urlencode(authorize_params(rp[0], challenge)) + "&" + urlencode([duplicate])
    response = client.get("/authorize?" + query)
    assert response.status_code == 400 and "Location" not in response.headers
    html = response.get_data(as_text=True)
    assert "st-123" not in html and "evil.example" not in html
    _no_code(app)
    with app.app_context():
        assert db.session.query(AuditEvent).filter_by(event="authorize.rejected").count() == 1


@pytest.mark.parametrize("duplicate", [
    ("scope", "openid"), ("state", "attacker"), ("code_challenge", "A" * 43), ("code_challenge_method", "plain"),
    ("nonce", "n-other"), ("prompt", "consent"), ("max_age", "99999"), ("acr_values", "urn:ecitizen:acr:password"),
    ("login_hint", "victim@example.org"), ("ui_locales", "af"),
])
def test_item_20_any_other_repeated_parameter_is_invalid_request(app, client, rp, duplicate):
    _, challenge = pkce_pair()
    params = authorize_params(rp[0], challenge)
    params.setdefault(duplicate[0], duplicate[1])  # present once in the request, then repeated
    response = client.get("/authorize?" + urlencode(params) + "&" + urlencode([duplicate]))
    if response.status_code == 400:  # Authlib refuses some repetitions on the OP itself
        assert "Location" not in response.headers
    else:
        assert _redirect_error(response)["error"] == "invalid_request"
    _no_code(app)


@pytest.mark.parametrize("scope", ["openid\nprofile", "openid\tprofile", "openid\rprofile",
                                   "openid\x7fprofile", 'openid "profile"', "openid\\profile"])
def test_item_20_control_characters_in_scope_are_invalid_request(app, client, rp, scope):
    _, challenge = pkce_pair()
    query = _redirect_error(authorize(client, authorize_params(rp[0], challenge, scope=scope)))
    assert query["error"] == "invalid_request" and query["state"] == "st-123"
    assert "profile" not in query.get("error_description", "")
    _no_code(app)


def test_item_20_a_nul_anywhere_in_the_query_is_refused_on_the_op(app, client, rp):
    """NUL never reaches the OAuth layer: the shared strict-request check answers 400 first."""
    _, challenge = pkce_pair()
    response = authorize(client, authorize_params(rp[0], challenge, scope="openid\x00profile"))
    assert response.status_code == 400 and "Location" not in response.headers
    _no_code(app)


def test_item_20_control_characters_in_scope_at_the_token_endpoint(app, client, rp):
    response = client.post("/token", data={"grant_type": "client_credentials", "scope": "openid\nprofile"}, auth=rp)
    assert response.status_code == 400 and response.get_json()["error"] == "invalid_request"
    assert "access_token" not in response.get_json()


@pytest.mark.parametrize("name, value, error", [
    ("request", "eyJhbGciOiJub25lIn0.eyJzY29wZSI6Im9wZW5pZCBwaG9uZSJ9.", "request_not_supported"),
    ("request_uri", "https://evil.example/request.jwt", "request_uri_not_supported"),
    ("request_uri", "urn:ietf:params:oauth:request_uri:abc", "request_uri_not_supported"),
])
def test_item_20_request_objects_are_refused_not_ignored(app, client, rp, name, value, error):
    _, challenge = pkce_pair()
    query = _redirect_error(authorize(client, authorize_params(rp[0], challenge, **{name: value})))
    assert query["error"] == error and query["state"] == "st-123"
    _no_code(app)


def test_item_20_request_object_with_an_unverified_redirect_stays_on_the_op(app, client, rp):
    _, challenge = pkce_pair()
    response = authorize(client, authorize_params(rp[0], challenge, redirect_uri="https://evil.example/cb",
                                                  request="eyJhbGciOiJub25lIn0.e30."))
    assert response.status_code == 400 and "Location" not in response.headers
    _no_code(app)
