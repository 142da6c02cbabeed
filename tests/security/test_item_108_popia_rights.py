"""Checklist 108: POPIA data-subject rights. The resident's own export (s23) holds every kind of
personal information kept: linked accounts, consents per department, authenticators as metadata
only (never a secret, key or code), sessions and recent sign-in history; a correction (s24) reaches
departments with the next token; the retention job deletes registrations never confirmed (more
kinds in tests/integration/test_retention.py)."""
from __future__ import annotations

import base64
import json

from idp.extensions import db
from idp.models import User
from idp.models.types import utcnow
from idp.services import accounts, recovery_codes, totp
from tests.support.mfa import post_form
from tests.support.oidc import exchange, get_code, login, make_client, make_user, pkce_pair
from tests.support.register import add_account, with_check_digit


def test_item_108_self_export_is_complete_and_holds_no_secret(app, client):
    client_id, secret = make_client(app)
    make_user(app)
    login(client)
    verifier, challenge = pkce_pair()
    tokens = exchange(client, client_id, secret, get_code(client, client_id, challenge), verifier).get_json()
    number = add_account(app, with_check_digit("312345678"), pin="4821")
    assert post_form(client, "/account/municipal/link", {"account_number": number, "proof_kind": "linking_pin",
                                                         "proof": "4821", "role": "owner"}).status_code == 303
    with app.app_context():
        user = db.session.scalar(db.select(User))
        seed = totp.begin_enrolment(user)
        codes = recovery_codes.generate(user)
    response = client.get("/account/export")
    assert response.status_code == 200 and "attachment" in response.headers["Content-Disposition"]
    data = json.loads(response.get_data(as_text=True))
    assert data["account"]["email"] == "resident@example.org"
    assert [a["account_number"] for a in data["municipal_accounts"]] == [number]
    assert [c["client_id"] for c in data["connected_services"]] == [client_id]
    assert data["sign_in_methods"]["recovery_codes_unused"] == len(codes)
    assert data["sessions"] and any(e["event"] == "signin.success" for e in data["events"])
    raw = response.get_data(as_text=True)
    for value in (seed, codes[0], tokens["access_token"], tokens["refresh_token"], secret):
        assert value not in raw
    assert "password_hash" not in raw and "$argon2" not in raw


def test_item_108_a_correction_reaches_departments_with_the_next_token(app, client):
    client_id, secret = make_client(app)
    make_user(app)
    login(client)
    verifier, challenge = pkce_pair()
    tokens = exchange(client, client_id, secret, get_code(client, client_id, challenge), verifier).get_json()
    assert post_form(client, "/account/name", {"name": "Lindiwe Mokoena"}).status_code in (302, 303)
    refreshed = client.post("/token", data={"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]},
                            auth=(client_id, secret)).get_json()
    userinfo = client.get("/userinfo", headers={"Authorization": "Bearer " + refreshed["access_token"]}).get_json()
    assert userinfo["name"] == "Lindiwe Mokoena"
    verifier, challenge = pkce_pair()  # and a new sign-in at the department carries it in the ID token
    fresh = exchange(client, client_id, secret, get_code(client, client_id, challenge), verifier).get_json()
    claims = json.loads(base64.urlsafe_b64decode(fresh["id_token"].split(".")[1] + "=="))
    assert claims["name"] == "Lindiwe Mokoena"


def test_item_108_retention_job_removes_expired_unverified_accounts(app):
    with app.app_context():
        user = accounts.create_user("stale@example.org", "a long enough resident passphrase", name="Stale",
                                    email_verified=False)
        user.created_at = utcnow().replace(year=utcnow().year - 1)
        db.session.commit()
    result = app.test_cli_runner().invoke(args=["retention", "run"])
    assert result.exit_code == 0
    assert "unconfirmed registrations deleted: 1" in result.output
    with app.app_context():
        assert db.session.scalar(db.select(User).where(User.email == "stale@example.org")) is None
