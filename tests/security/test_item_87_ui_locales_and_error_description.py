"""Checklist 87 (the rest): reflected XSS through ``ui_locales``, ``error_description`` and the
error details the OP renders itself. Markup payloads in those parameters never reach a page as
markup (escaped or dropped), the chosen language stays a supported one, an error redirect to a
verified client carries a fixed description (never the input), and the CSP refuses inline scripts
that lack this response's nonce. (test_item_87_reflected_xss.py covers state, login_hint,
client_id, redirect_uri and next.)"""
from __future__ import annotations

import re
from urllib.parse import urlencode

import pytest

from idp.i18n import LANGUAGES
from tests.security.test_item_87_reflected_xss import PAYLOADS, _assert_inert
from tests.support.oidc import authorize_params, make_client, pkce_pair, query_of


@pytest.mark.parametrize("payload", PAYLOADS)
def test_item_87_ui_locales_payload_is_never_reflected(app, client, payload):
    client_id, _ = make_client(app)
    _, challenge = pkce_pair()
    for value in (payload, f"zu {payload}", f"{payload} af"):
        response = client.get("/authorize?" + urlencode(authorize_params(client_id, challenge, ui_locales=value)))
        assert response.status_code in (302, 303)
        page = client.get(response.headers["Location"])
        html = page.get_data(as_text=True)
        _assert_inert(html, payload)
        lang = re.search(r'<html[^>]*\blang="([^"]*)"', html).group(1)
        assert lang in LANGUAGES
    login_page = client.get("/login?" + urlencode({"ui_locales": payload})).get_data(as_text=True)
    _assert_inert(login_page, payload)


@pytest.mark.parametrize("payload", PAYLOADS)
def test_item_87_error_description_and_error_details_are_escaped(app, client, payload):
    client_id, _ = make_client(app)
    _, challenge = pkce_pair()
    # Rendered on the OP (client unverifiable): every field that may end up in the error detail.
    for target, extra in ((payload, {}), (client_id, {"scope": payload, "redirect_uri": payload}),
                          (client_id, {"response_type": payload, "redirect_uri": payload}),
                          (client_id, {"error_description": payload, "redirect_uri": payload})):
        params = authorize_params(target, challenge, **extra)
        response = client.get("/authorize?" + urlencode(params))
        if response.status_code == 400:
            _assert_inert(response.get_data(as_text=True), payload)
            assert "'unsafe-inline'" not in response.headers["Content-Security-Policy"]


@pytest.mark.parametrize("payload", PAYLOADS)
def test_item_87_error_redirects_never_echo_the_input_as_description(app, client, payload):
    client_id, _ = make_client(app)
    _, challenge = pkce_pair()
    for extra in ({"scope": f"openid {payload}"}, {"response_type": payload}, {"error_description": payload},
                  {"prompt": payload}, {"max_age": payload}):
        response = client.get("/authorize?" + urlencode(authorize_params(client_id, challenge, **extra)))
        location = response.headers.get("Location", "")
        if location.startswith("https://billing.example.gov.za/cb"):
            description = query_of(location).get("error_description", "")
            assert payload not in description and "<" not in description and "{{" not in description


def test_item_87_csp_nonce_is_fresh_and_blocks_injected_inline_script(app, client):
    first = client.get("/login").headers["Content-Security-Policy"]
    second = client.get("/login").headers["Content-Security-Policy"]
    script_src = next(d.strip() for d in first.split(";") if d.strip().startswith("script-src"))
    assert "'nonce-" in script_src
    assert "'unsafe-inline'" not in script_src and "'unsafe-eval'" not in script_src and "*" not in script_src
    assert first != second  # a nonce seen once cannot be reused by an injected script
