"""Checklist 34: No enumeration on other identifier-taking endpoints. Password reset, the
passwordless passkey options, sign-in by mobile number and the municipal account-link form are
probed with identifiers that exist and that do not: the answers must be identical (status, page,
headers) and cost the same in the request (mail only queued, never sent while the visitor waits);
an SMS sign-in that starts from a bare identifier is not offered at all."""
from __future__ import annotations

import json
import re

from idp.extensions import db
from idp.models import User
from idp.models.outbound import OutboundMail
from tests.conftest import blank_tokens, csrf_token
from tests.integration.test_signin_flows import login, make_user
from tests.support.register import add_account, with_check_digit

VARYING = {"Date", "X-Request-ID", "Set-Cookie", "Content-Security-Policy", "Content-Length"}


def _shape(response, typed: str = "") -> tuple:
    headers = sorted((k, v) for k, v in response.headers.items() if k not in VARYING)
    body = blank_tokens(response.get_data(as_text=True))
    return response.status_code, headers, body.replace(typed, "@") if typed else body


def _post_form(http, path, data):
    page = http.get(path)
    return http.post(path, data={"csrf_token": csrf_token(page.get_data(as_text=True)), **data})


def test_item_34_password_reset_answers_alike_and_only_queues_mail(app):
    make_user(app)
    known = _post_form(app.test_client(), "/forgot-password", {"email": "amara@example.org"})
    unknown = _post_form(app.test_client(), "/forgot-password", {"email": "nobody.here@example.org"})
    assert known.status_code == 200
    assert _shape(known, "amara@example.org") == _shape(unknown, "nobody.here@example.org")
    with app.app_context():
        assert db.session.scalar(db.select(db.func.count()).select_from(OutboundMail)) == 1


def test_item_34_passwordless_passkey_options_name_no_account(app):
    make_user(app)
    answers = []
    for body in ({}, {"email": "amara@example.org"}, {"username": "nobody.here@example.org"}):
        http = app.test_client()
        token = re.search(r'<meta name="csrf-token" content="([^"]+)"', http.get("/login").get_data(as_text=True))
        response = http.post("/login/passkey/options?mode=passwordless", json=body,
                             headers={"X-CSRFToken": token.group(1)})
        assert response.status_code == 200
        options = json.loads(response.get_data(as_text=True))
        options.pop("challenge")
        answers.append(options)
        assert options.get("allowCredentials", []) == []  # discoverable: no list of the account's keys
    assert answers[0] == answers[1] == answers[2]


def test_item_34_sign_in_by_mobile_number_does_not_reveal_the_number(app):
    user_id = make_user(app)
    with app.app_context():
        user = db.session.get(User, user_id)
        user.phone_number = "+27821234567"
        user.phone_verified_at = user.created_at
        db.session.commit()
    known = login(app.test_client(), email="0821234567", password="not the password at all")
    unknown = login(app.test_client(), email="0829999999", password="not the password at all")
    assert known.status_code == unknown.status_code == 401
    assert _shape(known, "0821234567") == _shape(unknown, "0829999999")


def test_item_34_account_link_answers_alike_for_unknown_and_wrong_pin(app):
    make_user(app)
    existing = with_check_digit("731942650")
    add_account(app, existing, pin="4821")
    missing = with_check_digit("731942651")
    http = app.test_client()
    login(http)
    wrong_pin = _post_form(http, "/account/municipal/link",
                           {"account_number": existing, "proof_kind": "linking_pin", "proof": "1111", "role": "owner"})
    unknown = _post_form(http, "/account/municipal/link",
                         {"account_number": missing, "proof_kind": "linking_pin", "proof": "1111", "role": "owner"})
    assert wrong_pin.status_code == unknown.status_code
    assert wrong_pin.status_code in (400, 401, 403, 422)
    assert _shape(wrong_pin, existing) == _shape(unknown, missing)


def test_item_34_no_sms_sign_in_starts_from_a_bare_identifier(app):
    make_user(app)
    http = app.test_client()
    for path in ("/login/sms", "/login/sms/start", "/login/sms/send", "/login/otp"):
        assert http.post(path, data={"email": "amara@example.org", "phone": "0821234567"}).status_code in (403, 404)
        assert http.get(path).status_code == 404
    # The texted code exists only as a second factor, after the password: without it, nothing is sent.
    token = csrf_token(http.get("/login").get_data(as_text=True))
    refused = http.post("/login/second-factor/sms/send", data={"csrf_token": token, "email": "amara@example.org"})
    assert refused.status_code in (302, 303) and refused.headers["Location"].startswith("/login")
