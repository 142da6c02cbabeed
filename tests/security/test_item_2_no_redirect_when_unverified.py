"""Checklist 2: never redirect when the client or its redirect URI cannot be verified, on every error
path. Unknown, missing or disabled client_id; redirect_uri missing while several are registered; a
mismatching redirect_uri combined with prompt=none, a bad scope, a bad or unprintable response_type,
max_age=-1, missing PKCE or a signed-in session: the error is a 400 page on the OP itself, with no
Location header, no state echoed, no code issued, and never a 500."""
from urllib.parse import urlencode

import pytest

from idp.extensions import db
from idp.models import AuditEvent, AuthorizationCode, Client
from tests.conftest import csrf_token
from tests.support.oidc import REDIRECT, authorize, authorize_params, login, make_client, make_user, pkce_pair

STATE = "state-item2-marker"
EVIL = "https://evil.tld/cb"
OTHER_ERRORS = [{"prompt": "none"}, {"scope": "openid bogus"}, {"scope": ""}, {"response_type": "token"},
                {"response_type": "code id_token"}, {"response_type": "c\\ode"}, {"response_type": None},
                {"max_age": "-1"}, {"max_age": "abc"}, {"code_challenge": None},
                {"code_challenge_method": "plain"}, {"prompt": "login none"}, {"claims": "{not json"},
                {"id_token_hint": "not-a-jwt"}]


@pytest.fixture
def setup(app):
    make_user(app)
    single, _ = make_client(app)
    several, _ = make_client(app, name="Permits", redirect_uris=[REDIRECT, "https://billing.example.gov.za/cb2"])
    return single, several


def _rejected_count(app) -> int:
    with app.app_context():
        return db.session.query(AuditEvent).filter_by(event="authorize.rejected", outcome="failure").count()


def _assert_error_page(app, params, http, what):
    before = _rejected_count(app)
    response = authorize(http, params) if isinstance(params, dict) else params()
    assert response.status_code == 400, what
    assert "Location" not in response.headers, what
    body = response.get_data(as_text=True)
    assert STATE not in body and "code=" not in body, what
    assert "text/html" in response.headers["Content-Type"], what
    with app.app_context():
        assert db.session.query(AuthorizationCode).count() == 0, what
    assert _rejected_count(app) == before + 1, what


@pytest.mark.parametrize("signed_in", [False, True])
def test_item_2_mismatching_redirect_with_another_error_never_redirects(app, client, setup, signed_in):
    if signed_in:
        login(client)
    _, challenge = pkce_pair()
    for extra in OTHER_ERRORS:
        params = authorize_params(setup[0], challenge, redirect_uri=EVIL, state=STATE, **extra)
        _assert_error_page(app, params, client, extra)


def test_item_2_unknown_or_missing_client_is_an_error_page(app, client, setup):
    login(client)
    _, challenge = pkce_pair()
    for client_id in ["no-such-client", "", "x" * 65, "\\", "b\u0456lling", None]:
        for extra in [{}, {"prompt": "none"}, {"response_type": "token"}, {"redirect_uri": None}]:
            params = authorize_params("placeholder", challenge, state=STATE, **extra)
            params.pop("client_id")
            if client_id is not None:
                params["client_id"] = client_id
            _assert_error_page(app, params, client, (client_id, extra))


def test_item_2_missing_redirect_uri_with_several_registered_never_redirects(app, client, setup):
    login(client)
    _, challenge = pkce_pair()
    for extra in [{}, {"prompt": "none"}, {"scope": "openid bogus"}, {"response_type": "token"}, {"max_age": "-1"},
                  {"code_challenge": None}]:
        params = authorize_params(setup[1], challenge, redirect_uri=None, state=STATE, **extra)
        _assert_error_page(app, params, client, extra)


def test_item_2_disabled_client_with_its_registered_uri_never_redirects(app, client, setup):
    """A client the city switched off cannot be verified any more: not even its own URI is used."""
    with app.app_context():
        db.session.query(Client).filter_by(client_id=setup[0]).update({"disabled": True})
        db.session.commit()
    login(client)
    _, challenge = pkce_pair()
    for extra in ({}, {"prompt": "none"}, {"response_type": "token"}):
        _assert_error_page(app, authorize_params(setup[0], challenge, state=STATE, **extra), client, extra)


def test_item_2_consent_post_for_an_unknown_client_issues_nothing(app, client, setup):
    login(client)
    _, challenge = pkce_pair()
    page = authorize(client, authorize_params(setup[0], challenge))
    assert page.status_code == 200
    forged = authorize_params("no-such-client", challenge, state=STATE)
    _assert_error_page(app, lambda: client.post("/authorize?" + urlencode(forged), data={
        "decision": "allow", "csrf_token": csrf_token(page.get_data(as_text=True))}), client, "consent POST")
