"""Checklist 3: registered-URI hygiene. Script and data schemes (in any case, with leading space or an
embedded tab), wildcards and regex patterns, fragments, user information, dot-segments, non-loopback
http, loopback look-alike hosts, non-ASCII hosts and stray whitespace submitted as redirect, post-logout
or back-channel URIs through the service, the admin console and the CLI: every one is refused (a field
error in the console), nothing is stored, and what is stored for a good URI is its parsed, normalised
form, which is then the only form /authorize accepts."""
import json
import re

import pytest

from idp.extensions import db
from idp.models import Client
from idp.services import DomainError
from idp.services import clients as client_service
from tests.conftest import csrf_token
from tests.integration.test_admin import staff_client
from tests.support.oidc import authorize, authorize_params, login, make_user, pkce_pair

BAD_URIS = [
    "javascript:alert(1)//", "JaVaScRiPt:alert(1)", " javascript:alert(1)", "java\tscript:alert(1)",
    "data:text/html,<script>alert(1)</script>", "vbscript:msgbox(1)", "file:///etc/passwd",
    "*", "https://*.example.gov.za/cb", "https://billing.example.gov.za/*", "regexp=.*",
    "https://billing.example.gov.za/cb?regexp=.*", "https://billing.example.gov.za/cb#f",
    "https://billing.example.gov.za/cb#", "http://billing.example.gov.za/cb", "http://localhost.evil.tld/cb",
    "http://127.0.0.1.nip.io/cb", "http://localhost@evil.tld/cb", "https://user:pw@billing.example.gov.za/cb",
    "https://billing.example.gov.za/cb/../admin", "https://billing.example.gov.za/%2e%2e/admin",
    "https://billing.example.gov.za/./cb", "https://b\u0456lling.example.gov.za/cb",
    "https://billing.example.gov.za/cb ", "https://billing.example.gov.za/c b", "https://billing.example.gov.za/cb\r\n",
    "https://billing.example.gov.za:99999/cb", "https://billing.example.gov.za:x/cb",
    "https://billing.example.gov.za\\@evil.tld/cb", "//billing.example.gov.za/cb", "/cb", "https:///cb", "",
]


@pytest.mark.parametrize("field", ["redirect", "post_logout", "backchannel"])
def test_item_3_service_refuses_the_uri_and_stores_nothing(app, field):
    for bad in BAD_URIS:
        uris = {"redirect": [bad], "post_logout": ["https://billing.example.gov.za/bye"], "backchannel": None}
        if field == "post_logout":
            uris.update(redirect=["https://billing.example.gov.za/cb"], post_logout=[bad])
        elif field == "backchannel":
            uris.update(redirect=["https://billing.example.gov.za/cb"], backchannel=bad or " ")
        with app.app_context():
            with pytest.raises(DomainError) as refused:
                client_service.create_client("Billing", uris["redirect"], post_logout_redirect_uris=uris["post_logout"],
                                             backchannel_logout_uri=uris["backchannel"])
            assert refused.value.code in ("invalid_uri", "invalid_redirect_uri"), bad
            assert db.session.query(Client).count() == 0


@pytest.mark.parametrize("bad", ["javascript:alert(1)//", "https://*.example.gov.za/cb", "http://localhost.evil.tld/cb",
                                 "data:text/html,x", "https://billing.example.gov.za/cb?regexp=.*"])
def test_item_3_admin_console_shows_a_field_error_and_stores_nothing(app, bad):
    http, _ = staff_client(app, email="admin@capetown.gov.za", roles=("administrator",))
    form = http.get("/admin/clients/new").get_data(as_text=True)
    response = http.post("/admin/clients/new", data={"csrf_token": csrf_token(form), "name": "Permits",
                                                      "redirect_uris": bad, "scopes": ["openid"]})
    assert response.status_code == 400
    html = response.get_data(as_text=True)
    error = re.search(r'<p class="error" id="redirect_uris-error">([^<]*)</p>', html)
    assert error and "redirect URI must" in error.group(1)  # the message is tied to its field
    assert 'href="javascript:' not in html and "<script>alert" not in html
    with app.app_context():
        assert db.session.query(Client).count() == 0


def test_item_3_admin_edit_with_a_bad_uri_keeps_the_stored_value(app):
    http, _ = staff_client(app, email="admin@capetown.gov.za", roles=("administrator",))
    with app.app_context():
        client, _ = client_service.create_client("Permits", ["https://permits.example.gov.za/cb"])
        client_id = client.client_id
    edit = http.get(f"/admin/clients/{client_id}").get_data(as_text=True)
    response = http.post(f"/admin/clients/{client_id}", data={
        "csrf_token": csrf_token(edit), "name": "Permits", "redirect_uris": "https://*.example.gov.za/cb",
        "scopes": ["openid"]})
    assert response.status_code == 400
    with app.app_context():
        assert db.session.scalar(db.select(Client.redirect_uris).where(Client.client_id == client_id)) == [
            "https://permits.example.gov.za/cb"]


@pytest.mark.parametrize("bad", ["javascript:alert(1)//", "http://127.0.0.1.nip.io/cb", "https://*.gov.za/cb"])
def test_item_3_cli_refuses_the_uri_and_stores_nothing(app, bad):
    result = app.test_cli_runner().invoke(args=["clients", "create", "--name", "Bad", "--redirect-uri", bad, "--json"])
    assert result.exit_code != 0 and "redirect URI must" in result.output
    with app.app_context():
        assert db.session.query(Client).count() == 0


def test_item_3_stored_value_is_the_normalised_uri_and_only_it_matches(app, client):
    result = app.test_cli_runner().invoke(args=[
        "clients", "create", "--name", "Billing", "--redirect-uri", "HTTPS://Billing.Example.GOV.za:443/cb?x=1",
        "--redirect-uri", "http://LOCALHOST:8080/cb", "--post-logout-redirect-uri", "https://BILLING.example.gov.za:443/",
        "--scope", "openid", "--json"])
    assert result.exit_code == 0, result.output
    client_id = json.loads(result.output)["client_id"]
    with app.app_context():
        stored = db.session.scalar(db.select(Client).where(Client.client_id == client_id))
        assert stored.redirect_uris == ["https://billing.example.gov.za/cb?x=1", "http://localhost:8080/cb"]
        assert stored.post_logout_redirect_uris == ["https://billing.example.gov.za/"]
        stored.first_party = True
        db.session.commit()
    make_user(app)
    login(client)
    _, challenge = pkce_pair()
    as_typed = authorize(client, authorize_params(client_id, challenge, scope="openid",
                                                  redirect_uri="HTTPS://Billing.Example.GOV.za:443/cb?x=1"))
    assert as_typed.status_code == 400 and "Location" not in as_typed.headers
    normalised = authorize(client, authorize_params(client_id, challenge, scope="openid",
                                                    redirect_uri="https://billing.example.gov.za/cb?x=1"))
    assert normalised.status_code == 302
    assert normalised.headers["Location"].startswith("https://billing.example.gov.za/cb?x=1&code=")
