"""Checklist 91: header and SMTP injection. CR/LF (and other line breaks) in a name, an email
address or a phone number, on sign-up, reset, resend, profile and phone pages, are refused with a
field error and nothing is stored; no mail goes to an injected Bcc/To address; every mail that
does go out has exactly one recipient, the validated address, and headers without line breaks
from user data."""
from __future__ import annotations

import time

import pytest

from idp.extensions import db
from idp.models import User
from idp.services import delivery_worker
from tests.conftest import csrf_token
from tests.integration.test_pages_account import signed_in_client
from tests.integration.test_signin_flows import make_user

BREAKS = ["\r\n", "\n", "\r", "\u2028", "\u2029", "\x85", "\x0b", "\x0c"]
EVIL = "evil@evil.example"
PASSWORD = "a completely fresh passphrase for me"


def _post(client, path, data):
    page = client.get(path)
    return client.post(path, data={"csrf_token": csrf_token(page.get_data(as_text=True)), **data})


def _mail_to_evil(app, smtp_server) -> list:
    delivery_worker.wait_idle(app)
    time.sleep(0.1)
    return [m for m in smtp_server.messages if EVIL in str(m)]


@pytest.mark.parametrize("brk", BREAKS)
def test_item_91_sign_up_refuses_line_breaks_in_name_and_email(app, client, smtp_server, brk):
    bad_name = _post(client, "/register", {"name": f"Eve{brk}Bcc: {EVIL}", "email": "eve@example.org",
                                           "password": PASSWORD})
    bad_email = _post(client, "/register", {"name": "Eve", "email": f"eve@example.org{brk}Bcc: {EVIL}",
                                            "password": PASSWORD})
    for response in (bad_name, bad_email):
        assert response.status_code == 400
        assert "Remove the line breaks or special characters." in response.get_data(as_text=True)
    with app.app_context():
        assert db.session.scalars(db.select(User.name)).all() == []  # nothing stored
    assert _mail_to_evil(app, smtp_server) == []


@pytest.mark.parametrize("brk", ["\r\n", "\n", "\u2028"])
@pytest.mark.parametrize("path", ["/forgot-password", "/verify-email/resend"])
def test_item_91_mail_request_forms_send_only_to_the_validated_address(app, client, smtp_server, path, brk):
    make_user(app, verified=False)
    response = _post(client, path, {"email": f"amara@example.org{brk}Bcc: {EVIL}"})
    assert response.status_code in (200, 400)
    assert _mail_to_evil(app, smtp_server) == []
    for message in smtp_server.messages:
        assert message["To"].count("@") == 1 and "\n" not in message["To"]


def test_item_91_profile_and_phone_pages_refuse_line_breaks(app, smtp_server):
    http, user_id = signed_in_client(app)
    for brk in BREAKS:
        renamed = _post(http, "/account/name", {"name": f"Amara{brk}X-Injected: yes"})
        assert renamed.status_code == 400, repr(brk)
        changed = _post(http, "/account/email", {"email": f"new@example.org{brk}Bcc: {EVIL}",
                                                 "password": "a long enough resident passphrase"})
        assert changed.status_code == 400, repr(brk)
        phone = _post(http, "/account/security/phone", {"phone": f"+27821234567{brk}+27829999999"})
        assert phone.status_code == 400, repr(brk)
    with app.app_context():
        user = db.session.get(User, user_id)
        assert "\n" not in user.name and "\r" not in user.name and "X-Injected" not in user.name
        assert user.email == "amara@example.org" and user.phone_number is None
    assert _mail_to_evil(app, smtp_server) == []


def test_item_91_every_mail_has_one_recipient_and_clean_headers(app, client, smtp_server):
    make_user(app, name="Amara Dlamini", verified=False)
    _post(client, "/verify-email/resend", {"email": "amara@example.org"})
    _post(client, "/register", {"name": "Someone", "email": "amara@example.org", "password": PASSWORD})
    smtp_server.wait_for("amara@example.org")
    delivery_worker.wait_idle(app)
    assert smtp_server.messages
    for message in smtp_server.messages:
        assert message["To"].strip().endswith("amara@example.org") and message["To"].count("@") == 1
        assert message["Cc"] is None and message["Bcc"] is None
        for name, value in message.items():
            assert "\n" not in str(value).replace("\r\n ", " ").replace("\n ", " "), name
