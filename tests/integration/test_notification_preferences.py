"""Notification preferences: chosen once on the profile pages (all-or-nothing, text messages only
with a verified number), audited, and released to departments as a claim that matches its schema."""
from __future__ import annotations

import json
import re
from pathlib import Path

import jsonschema
from joserfc import jwt
from joserfc.jwk import KeySet

from idp.extensions import db
from idp.models import AuditEvent, User
from idp.models.types import utcnow
from tests.integration.test_pages_account import signed_in_client
from tests.support.mfa import form_token
from tests.support.oidc import exchange, get_code, make_client, pkce_pair

SCHEMA = json.loads((Path(__file__).parents[2] / "schemas/notification-preferences-claim.schema.json").read_text())
ALL_EMAIL = {"bills_due": "email", "service_interruptions": "email", "application_updates": "email",
             "city_news": "email"}


def choose(client, **choices):
    data = {**ALL_EMAIL, **choices, "csrf_token": form_token(client, "/account/notifications")}
    return client.post("/account/notifications", data={k: v for k, v in data.items() if v is not None})


def saved(app, user_id):
    with app.app_context():
        return db.session.get(User, user_id).notification_preferences


def test_defaults_are_shown_and_a_choice_is_saved_and_audited(app):
    client, user_id = signed_in_client(app)
    page = client.get("/account/notifications").get_data(as_text=True)
    assert "cannot switch them off" in page
    checked = set(re.findall(r'<input checked id="(\w+-\d)"', page))
    assert checked == {"bills_due-0", "service_interruptions-0", "application_updates-0", "city_news-2"}
    response = choose(client, city_news="none", bills_due="none")
    assert response.status_code == 303
    assert saved(app, user_id) == {**ALL_EMAIL, "city_news": "none", "bills_due": "none"}
    with app.app_context():
        event = db.session.scalar(db.select(AuditEvent).where(AuditEvent.event == "notifications.changed"))
        assert event.user_id == user_id and event.detail["topics"] == ["bills_due"]


def test_text_messages_need_a_verified_number_and_bad_input_changes_nothing(app):
    client, user_id = signed_in_client(app)
    refused = choose(client, bills_due="sms")
    assert refused.status_code == 400 and "verify your mobile number" in refused.get_data(as_text=True)
    assert choose(client, city_news="pigeon").status_code == 400
    assert choose(client, city_news=None).status_code == 400
    assert saved(app, user_id) is None
    with app.app_context():
        user = db.session.get(User, user_id)
        user.phone_number, user.phone_verified_at = "+27821234567", utcnow()
        db.session.commit()
    assert choose(client, bills_due="sms").status_code == 303
    assert saved(app, user_id)["bills_due"] == "sms"


def test_departments_receive_the_claim_under_its_scope(app):
    rp = make_client(app, scope="openid notification_preferences")
    client, user_id = signed_in_client(app)
    choose(client, service_interruptions="none")
    consent = client.get("/authorize", query_string={
        "response_type": "code", "client_id": rp[0], "redirect_uri": "https://billing.example.gov.za/cb",
        "scope": "openid notification_preferences", "code_challenge": pkce_pair()[1], "code_challenge_method": "S256"})
    assert "How you want to hear from the city" in consent.get_data(as_text=True)
    verifier, challenge = pkce_pair()
    tokens = exchange(client, *rp, get_code(client, rp[0], challenge, scope="openid notification_preferences"),
                      verifier).get_json()
    keys = KeySet.import_key_set(client.get("/jwks.json").get_json())
    id_claims = jwt.decode(tokens["id_token"], keys, algorithms=["RS256"]).claims
    userinfo = client.get("/userinfo", headers={"Authorization": "Bearer " + tokens["access_token"]}).get_json()
    for value in (id_claims["notification_preferences"], userinfo["notification_preferences"]):
        jsonschema.validate(value, SCHEMA)
        assert value["service_interruptions"] == "none" and value["security_notices"] == "always"
    discovery = client.get("/.well-known/openid-configuration").get_json()
    assert "notification_preferences" in discovery["scopes_supported"]
    assert "notification_preferences" in discovery["claims_supported"]


def test_a_number_removed_later_turns_texts_into_email_in_the_claim(app):
    from idp.services import notifications

    client, user_id = signed_in_client(app)
    with app.app_context():
        user = db.session.get(User, user_id)
        user.notification_preferences = {**ALL_EMAIL, "bills_due": "sms"}
        db.session.commit()
        assert notifications.claim(user)["bills_due"] == "email"
