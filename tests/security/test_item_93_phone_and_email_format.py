"""Checklist 93: phone and email format. Address lists, display-name forms, group syntax, quoted
local parts, over-long addresses (local part > 64, whole > 254) and several numbers in one field
are refused with a field error on sign-up, reset and the profile, and nothing is stored or sent;
a mobile number is stored only as one E.164 number."""
from __future__ import annotations

import time

from idp.extensions import db
from idp.models import User
from idp.services import delivery_worker
from tests.conftest import csrf_token
from tests.integration.test_pages_account import signed_in_client

PASSWORD = "a completely fresh passphrase for me"
BAD_EMAILS = ["a@example.org, b@example.org", "a@example.org;b@example.org", "a@example.org b@example.org",
              "Eve <eve@example.org>", "<eve@example.org>", "undisclosed:a@example.org,b@example.org;",
              '"a,b"@example.org', "a@@example.org", "a@example.org@evil.example", "@example.org", "a@",
              "x" * 65 + "@example.org", "a@" + "b" * 250 + ".org", "a@example..org", "a@-example.org"]
BAD_PHONES = ["+27821234567,+27821234568", "+27821234567;+27821234568", "+27821234567 +27821234568",
              "+27 82 123 4567 ext 2", "+27821234567;ext=2", "+27821234567/8"]


def _post(client, path, data):
    page = client.get(path)
    return client.post(path, data={"csrf_token": csrf_token(page.get_data(as_text=True)), **data})


def test_item_93_sign_up_refuses_lists_and_over_long_addresses(app, client, smtp_server):
    for email in BAD_EMAILS:
        response = _post(client, "/register", {"name": "Eve Example", "email": email, "password": PASSWORD})
        assert response.status_code == 400, email
    with app.app_context():
        assert db.session.scalar(db.select(db.func.count()).select_from(User)) == 0
    delivery_worker.wait_idle(app)
    time.sleep(0.05)
    assert smtp_server.messages == []


def test_item_93_email_change_refuses_lists(app, smtp_server):
    http, user_id = signed_in_client(app)
    for email in BAD_EMAILS:
        response = _post(http, "/account/email", {"email": email, "password": "a long enough resident passphrase"})
        assert response.status_code == 400, email
    with app.app_context():
        assert db.session.get(User, user_id).email == "amara@example.org"
    delivery_worker.wait_idle(app)
    assert not any("example.org," in str(m["To"]) or ";" in str(m["To"]) for m in smtp_server.messages)


def test_item_93_an_address_of_254_characters_is_the_longest_accepted(app, client):
    longest = "a" * 64 + "@" + ".".join(["b" * 61, "c" * 61, "d" * 61]) + ".org"
    assert len(longest) == 254
    assert _post(client, "/register", {"name": "Long Address", "email": longest,
                                       "password": PASSWORD}).status_code == 200
    too_long = "a" + longest
    assert _post(client, "/register", {"name": "Long Address", "email": too_long,
                                       "password": PASSWORD}).status_code == 400


def test_item_93_one_mobile_number_per_field(app):
    http, user_id = signed_in_client(app)
    for phone in BAD_PHONES:
        response = _post(http, "/account/security/phone", {"phone": phone})
        assert response.status_code == 400, phone
    with app.app_context():
        assert db.session.get(User, user_id).phone_number is None


def test_item_93_the_number_is_stored_as_e164_only(app):
    from idp.services import phones

    with app.app_context():
        for written in ("082 123 4567", "+27 82 123 4567", "+27-82-123-4567", "tel:+27821234567"):
            assert phones.normalise(written) == "+27821234567"
