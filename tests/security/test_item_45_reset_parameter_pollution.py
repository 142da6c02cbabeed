"""Checklist 45: parameter pollution on the reset request. Two email parameters, a comma-separated
pair, a JSON array, CRLF-injected headers and a NUL byte must never make the reset mail go to the
attacker: either 400, or exactly one mail to the single stored address of one matched account."""
from __future__ import annotations

import json

import pytest
from werkzeug.datastructures import MultiDict

from idp.extensions import db
from idp.models import OutboundMail
from tests.conftest import csrf_token
from tests.integration.test_signin_flows import make_user

VICTIM, ATTACKER = "amara@example.org", "mallory@evil.example"


def _token(client):
    return csrf_token(client.get("/forgot-password").get_data(as_text=True))


def _recipients(app, smtp_server):
    from idp.services import delivery_worker

    delivery_worker.wait_idle(app)
    with app.app_context():
        queued = list(db.session.scalars(db.select(OutboundMail.recipient)))
    delivered = []
    for message in smtp_server.messages:
        delivered += [str(message[h]) for h in ("To", "Cc", "Bcc") if message[h]]
    return queued, delivered


def _assert_only_victim_or_nothing(app, smtp_server):
    queued, delivered = _recipients(app, smtp_server)
    assert set(queued) <= {VICTIM} and len(queued) <= 1
    assert set(delivered) <= {VICTIM}
    assert not any(ATTACKER in str(m) for m in smtp_server.messages)


def test_item_45_duplicate_email_parameters(app, client, smtp_server):
    make_user(app, email=VICTIM)
    token = _token(client)
    response = client.post("/forgot-password",
                           data=MultiDict([("csrf_token", token), ("email", VICTIM), ("email", ATTACKER)]))
    assert response.status_code in (200, 400)
    _assert_only_victim_or_nothing(app, smtp_server)
    reverse = client.post("/forgot-password",
                          data=MultiDict([("csrf_token", token), ("email", ATTACKER), ("email", VICTIM)]))
    assert reverse.status_code in (200, 400)
    _assert_only_victim_or_nothing(app, smtp_server)


@pytest.mark.parametrize("value", [
    f"{VICTIM},{ATTACKER}", f"{VICTIM};{ATTACKER}", f"{VICTIM} {ATTACKER}", f"{VICTIM}\r\ncc:{ATTACKER}",
    f"{VICTIM}\ncc: {ATTACKER}", f"{VICTIM}%0d%0acc:{ATTACKER}", f"{VICTIM}\x00{ATTACKER}", f"{VICTIM}\x00",
    f'"{VICTIM}" <{ATTACKER}>', f"{ATTACKER} <{VICTIM}>",
])
def test_item_45_polluted_single_values(app, client, smtp_server, value):
    make_user(app, email=VICTIM)
    response = client.post("/forgot-password", data={"csrf_token": _token(client), "email": value})
    assert response.status_code in (200, 400)
    queued, delivered = _recipients(app, smtp_server)
    assert queued == [] and delivered == []  # none of these is the one stored address


def test_item_45_json_array_body_mails_at_most_the_stored_address(app, client, smtp_server):
    make_user(app, email=VICTIM)
    token = _token(client)
    response = client.post("/forgot-password", data=json.dumps({"csrf_token": token, "email": [VICTIM, ATTACKER]}),
                           content_type="application/json", headers={"X-CSRFToken": token})
    assert response.status_code in (200, 400)
    _assert_only_victim_or_nothing(app, smtp_server)


def test_item_45_case_variant_mails_the_stored_address(app, client, smtp_server):
    make_user(app, email=VICTIM)
    client.post("/forgot-password", data={"csrf_token": _token(client), "email": "  AMARA@Example.ORG "})
    smtp_server.wait_for(VICTIM, subject_contains="Reset")
    queued, delivered = _recipients(app, smtp_server)
    assert queued == [VICTIM] and delivered == [VICTIM]
