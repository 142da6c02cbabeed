"""Residents see which department is asking: its name, purpose line and logo on the sign-in and
consent pages; logos are PNG or JPEG (by content), small, and served by the IdP itself."""
from __future__ import annotations

import io
from urllib.parse import quote, urlencode

from idp.cli.clients import clients as clients_cli
from idp.extensions import db
from idp.models import Client
from tests.conftest import csrf_token
from tests.integration.test_admin import staff_client
from tests.support.oidc import authorize_params, login, make_client, make_user, pkce_pair

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64


def test_the_sign_in_and_consent_pages_name_the_department(app, client):
    client_id, _ = make_client(app, name="Billing")
    with app.app_context():
        from idp.services import clients

        clients.set_branding(db.session.scalar(db.select(Client)), purpose="Pay and view your municipal bills",
                             logo=PNG)
    params = authorize_params(client_id, pkce_pair()[1])
    sign_in = client.get("/login?next=" + quote("/authorize?" + urlencode(params))).get_data(as_text=True)
    assert "Billing" in sign_in and "Pay and view your municipal bills" in sign_in
    assert f"/client-logo/{client_id}" in sign_in
    logo = client.get(f"/client-logo/{client_id}")
    assert logo.data == PNG and logo.headers["Content-Type"] == "image/png"
    assert client.get("/login?next=/account/").get_data(as_text=True).count("client-banner") == 0
    make_user(app)
    login(client)
    consent = client.get("/authorize?" + urlencode(params)).get_data(as_text=True)
    assert "Pay and view your municipal bills" in consent and f"/client-logo/{client_id}" in consent
    assert client.get("/client-logo/unknown").status_code == 404


def test_logos_are_checked_by_content_and_size_and_nothing_is_half_written(app, tmp_path):
    runner = app.test_cli_runner()
    fake = tmp_path / "logo.png"
    fake.write_bytes(b"<svg onload=alert(1)>")
    result = runner.invoke(clients_cli, ["create", "--name", "Permits", "--redirect-uri", "https://permits.example/cb",
                                         "--logo", str(fake)])
    assert result.exit_code != 0 and "PNG or JPEG" in result.output
    big = tmp_path / "big.png"
    big.write_bytes(PNG + b"0" * 70_000)
    assert runner.invoke(clients_cli, ["create", "--name", "Permits", "--redirect-uri", "https://permits.example/cb",
                                       "--logo", str(big)]).exit_code != 0
    with app.app_context():
        assert db.session.scalar(db.select(db.func.count()).select_from(Client)) == 0
    good = tmp_path / "good.png"
    good.write_bytes(PNG)
    ok = runner.invoke(clients_cli, ["create", "--name", "Permits", "--redirect-uri", "https://permits.example/cb",
                                     "--logo", str(good), "--purpose", "Apply for building permits"])
    assert ok.exit_code == 0, ok.output
    with app.app_context():
        client = db.session.scalar(db.select(Client))
        assert client.logo == PNG and client.purpose == "Apply for building permits"


def test_administrators_set_the_purpose_and_logo_in_the_console(app):
    http, _ = staff_client(app, email="admin@capetown.gov.za", roles=("administrator",))
    client_id, _ = make_client(app, name="Complaints")
    page = http.get(f"/admin/clients/{client_id}").get_data(as_text=True)
    response = http.post(f"/admin/clients/{client_id}", content_type="multipart/form-data", data={
        "csrf_token": csrf_token(page), "name": "Complaints", "redirect_uris": "https://billing.example.gov.za/cb",
        "scopes": ["openid"], "purpose": "Report a burst pipe or a pothole",
        "logo": (io.BytesIO(PNG), "logo.png")})
    assert response.status_code == 303
    with app.app_context():
        client = db.session.scalar(db.select(Client).where(Client.client_id == client_id))
        assert client.purpose == "Report a burst pipe or a pothole" and client.logo == PNG
