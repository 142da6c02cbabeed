"""Checklist 87: reflected XSS on hosted pages. Attacker-chosen values in state, login_hint,
client_id, redirect_uri, next and error fields are escaped (never rendered as markup), template
syntax is never evaluated, and no inline script could run (CSP has no 'unsafe-inline')."""
from urllib.parse import urlencode

import pytest

from tests.support.oidc import authorize_params, make_client, make_user, pkce_pair

PAYLOADS = ['"><svg onload=alert(1)>', "javascript:alert(1)", "{{7*7}}", "<script>alert(1)</script>"]


def _assert_inert(html: str, payload: str) -> None:
    """Markup arrives escaped, no link or action points at javascript:, templates are not run."""
    if "<" in payload:
        assert payload not in html
    assert "<svg onload" not in html and "<script>alert" not in html
    assert 'href="javascript:' not in html and 'action="javascript:' not in html
    for evaluated in ('"/49"', ">49<", "=49&", '"49"'):
        assert evaluated not in html


@pytest.mark.parametrize("payload", PAYLOADS)
def test_authorize_error_page_escapes_client_and_redirect_values(app, client, payload):
    _, challenge = pkce_pair()
    response = client.get("/authorize?" + urlencode(authorize_params(payload, challenge, state=payload,
                                                                     redirect_uri=payload, login_hint=payload)))
    assert response.status_code == 400
    _assert_inert(response.get_data(as_text=True), payload)
    assert "'unsafe-inline'" not in response.headers["Content-Security-Policy"]


@pytest.mark.parametrize("payload", PAYLOADS)
def test_login_page_escapes_next_and_echoed_email(app, client, payload):
    page = client.get("/login?" + urlencode({"next": "/" + payload, "login_hint": payload}))
    _assert_inert(page.get_data(as_text=True), payload)
    from tests.conftest import csrf_token

    posted = client.post("/login", data={"email": payload, "password": "x", "next": "/" + payload,
                                         "csrf_token": csrf_token(page.get_data(as_text=True))})
    _assert_inert(posted.get_data(as_text=True), payload)


@pytest.mark.parametrize("payload", PAYLOADS)
def test_consent_page_escapes_state_in_its_form_action(app, client, payload):
    client_id, _ = make_client(app)
    make_user(app)
    from tests.support.oidc import login

    login(client)
    _, challenge = pkce_pair()
    response = client.get("/authorize?" + urlencode(authorize_params(client_id, challenge, state=payload)))
    assert response.status_code == 200
    _assert_inert(response.get_data(as_text=True), payload)
