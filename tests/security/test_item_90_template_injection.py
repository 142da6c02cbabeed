"""Checklist 90: template injection. A resident's stored display name (and a department's name)
holding Jinja syntax is shown literally in pages and in mails: never evaluated (no ``49``, no
configuration or secret key in the output), and no template is ever built from user data."""
from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.conftest import csrf_token
from tests.integration.test_signin_flows import login, make_user
from tests.support.oidc import authorize_params, make_client, pkce_pair
from tests.support.smtp import body_of

PAYLOADS = ["{{7*7}}", "{{config}}", "{% for x in [1,2,3] %}loop{% endfor %}", "{{ self.__init__.__globals__ }}",
            "${7*7}", "#{7*7}"]


def _assert_literal(text: str, payload: str, app) -> None:
    assert app.config["SECRET_KEY"] not in text
    assert "<Config" not in text and "looploop" not in text and "__builtins__" not in text
    assert not re.search(r"(?<![\w.\-/=%])49(?![\w.\-%])", text)  # "7*7" evaluated


@pytest.mark.parametrize("payload", PAYLOADS)
def test_item_90_display_name_is_literal_in_pages(app, client, payload):
    make_user(app, name=payload)
    assert login(client).status_code == 303
    for path in ("/account/", "/account/name"):
        html = client.get(path).get_data(as_text=True)
        _assert_literal(html, payload, app)
    import html as html_lib

    assert html_lib.escape(payload, quote=False) in client.get("/account/").get_data(as_text=True)


@pytest.mark.parametrize("payload", PAYLOADS)
def test_item_90_display_name_is_literal_in_mails(app, client, smtp_server, payload):
    make_user(app, name=payload, verified=False)
    page = client.get("/verify-email/resend")
    client.post("/verify-email/resend", data={"csrf_token": csrf_token(page.get_data(as_text=True)),
                                              "email": "amara@example.org"})
    mail = smtp_server.wait_for("amara@example.org")
    text = body_of(mail)
    _assert_literal(text, payload, app)
    assert payload in text or payload.replace("'", "&#39;") in text
    for part in mail.walk():
        if part.get_content_type() == "text/html":
            _assert_literal(part.get_content(), payload, app)


@pytest.mark.parametrize("payload", PAYLOADS[:3])
def test_item_90_department_name_is_literal_on_the_consent_page(app, client, payload):
    client_id, _ = make_client(app, name=payload)
    make_user(app)
    assert login(client).status_code == 303
    _, challenge = pkce_pair()
    from urllib.parse import urlencode

    consent = client.get("/authorize?" + urlencode(authorize_params(client_id, challenge)))
    assert consent.status_code == 200
    _assert_literal(consent.get_data(as_text=True), payload, app)


def test_item_90_no_template_is_built_from_strings_at_run_time():
    """The product renders files only: no render_template_string / Template(...) / from_string."""
    source = Path(__file__).parents[2] / "idp"
    found = [str(path) for path in source.rglob("*.py")
             if re.search(r"render_template_string|from_string\(|jinja2\.Template\(|Environment\(\)\.from",
                          path.read_text(encoding="utf-8"))]
    assert found == []
