"""Checklist 109: breach-response drill (POPIA s22). Simulated compromise of the signing key and the
server secret (a leaked database snapshot): the documented runbook names the Regulator report and
resident notice contents and the 24-hour target, and its containment commands really work: an
emergency key rotation makes every token the leaked key signed unverifiable at once while the
service keeps issuing; a secret rotation keeps data at rest readable. Bulk forced credential resets
and notices: ``idp users force-reset`` switches off passwords (and, asked to, authenticator-app
secrets), ends sessions and tokens, mails each resident the s22 notice and drafts the Regulator's
report."""
from __future__ import annotations

import re
from pathlib import Path

from joserfc import jwt

from idp.extensions import db
from idp.models import AuditEvent, SigningKey, User
from idp.services import keys
from tests.integration.test_signin_flows import PASSWORD, login, make_user
from tests.integration.test_signin_reset import NEW_PASSWORD, ask_reset, submit_reset
from tests.support.oidc import exchange, get_code, make_client, pkce_pair, verifies
from tests.support.smtp import body_of, first_link

RUNBOOK = Path(__file__).resolve().parents[2] / "deploy/README.md"


def test_item_109_runbook_covers_the_regulator_report_and_resident_notice():
    text = RUNBOOK.read_text()
    section = text[text.index("## Breach response"):]
    section = section[:section.index("\n## ", 5)]
    for needed in ("24 hours", "idp keys rotate --now", "IDP_SECRET_KEY_FALLBACKS", "Regulator",
                   "what happened", "consequences", "measures taken", "what they should do", "reset the password"):
        assert needed.lower() in section.lower(), needed


def test_item_109_leaked_key_drill_kills_forged_tokens_and_keeps_service(app, client):
    client_id, secret = make_client(app)
    make_user(app)
    login(client)
    with app.app_context():
        ring = keys.keyring()
        leaked_key, leaked_kid = ring.signing, ring.signing_kid  # what the attacker holds
    forged = jwt.encode({"alg": ring.alg, "kid": leaked_kid}, {"iss": "http://localhost", "sub": "attacker",
                                                              "aud": client_id, "exp": 4102444800}, leaked_key)
    assert verifies(forged, client.get("/jwks.json").get_json())  # before the drill: accepted by RPs

    result = app.test_cli_runner().invoke(args=["keys", "rotate", "--now"], catch_exceptions=False)
    assert result.exit_code == 0
    jwks = client.get("/jwks.json").get_json()
    assert leaked_kid not in {k["kid"] for k in jwks["keys"]} and not verifies(forged, jwks)
    verifier, challenge = pkce_pair()
    fresh = exchange(client, client_id, secret, get_code(client, client_id, challenge), verifier)
    assert fresh.status_code == 200 and verifies(fresh.get_json()["id_token"], jwks)
    with app.app_context():
        assert db.session.scalar(db.select(SigningKey).where(SigningKey.kid == leaked_kid)).state(
            keys.utcnow()) == "retired"


INCIDENT = "On 20 November a copy of the account database was taken from a backup server."


def _force_reset(app, *args):
    return app.test_cli_runner().invoke(args=["users", "force-reset", *args, "--incident", INCIDENT,
                                              "--reason", "INC-2026-42"])


def test_item_109_forced_credential_reset_command(app, smtp_server):
    user_id = make_user(app, email="amara@example.org", password=PASSWORD)
    make_user(app, email="thabo@example.org", password=PASSWORD, name="Thabo Nkosi")
    http = app.test_client()
    assert login(http).status_code == 303
    result = _force_reset(app, "--all")
    assert result.exit_code == 0, result.output
    assert re.search(r"\b2 residents", result.output)
    assert "Information Regulator" in result.output and INCIDENT in result.output  # the s22 report draft
    assert http.get("/account/").status_code in (302, 303)  # signed out everywhere
    assert login(app.test_client()).status_code == 401  # the old password no longer works
    notice = smtp_server.wait_for("amara@example.org", subject_contains="new eCitizen Passport password")
    text = body_of(notice)
    for needed in (INCIDENT, "What happened", "may mean for you", "What we did", "What you should do"):
        assert needed in text, needed
    assert first_link(notice).endswith("/forgot-password")  # no one-time link that could expire unread
    ask_reset(app.test_client())
    submit_reset(app.test_client(), first_link(smtp_server.wait_for("amara@example.org", subject_contains="Reset")))
    assert login(app.test_client(), password=NEW_PASSWORD).status_code == 303
    with app.app_context():
        event = db.session.scalar(db.select(AuditEvent).where(AuditEvent.event == "breach.forced_reset"))
        assert event.detail["residents"] == 2 and event.detail["reason"] == "INC-2026-42"
        assert db.session.get(User, user_id).password_hash is not None  # the new one


def test_item_109_forced_reset_of_named_residents_checks_every_address_first(app):
    make_user(app, email="amara@example.org", password=PASSWORD)
    refused = _force_reset(app, "--email", "amara@example.org", "--email", "nobody@example.org")
    assert refused.exit_code != 0 and "nobody@example.org" in refused.output
    assert login(app.test_client()).status_code == 303  # nothing was changed
    counted = app.test_cli_runner().invoke(args=["users", "force-reset", "--email", "amara@example.org",
                                                 "--incident", INCIDENT, "--reason", "x", "--dry-run"])
    assert counted.exit_code == 0 and "would reset 1 residents" in counted.output
    assert login(app.test_client()).status_code == 303
    neither = app.test_cli_runner().invoke(args=["users", "force-reset", "--incident", INCIDENT, "--reason", "x"])
    assert neither.exit_code == 2 and "--all" in neither.output
    empty = app.test_cli_runner().invoke(args=["users", "force-reset", "--email", "amara@example.org",
                                               "--incident", " ", "--reason", "x"])
    assert empty.exit_code == 1 and "describe the incident" in empty.output
    assert login(app.test_client()).status_code == 303


def test_item_109_a_forced_reset_can_also_take_away_authenticator_apps(app, smtp_server):
    from idp.models import TotpCredential
    from idp.models.types import utcnow
    from idp.services import totp

    with_app = make_user(app, email="amara@example.org", password=PASSWORD)
    make_user(app, email="thabo@example.org", password=PASSWORD, name="Thabo Nkosi")
    with app.app_context():
        totp.begin_enrolment(db.session.get(User, with_app))
        db.session.scalar(db.select(TotpCredential)).confirmed_at = utcnow()
        db.session.commit()
    result = _force_reset(app, "--all", "--authenticator-apps")
    assert result.exit_code == 0, result.output
    assert "authenticator-app secrets deleted: 1" in result.output
    assert "1 authenticator-app secrets deleted" in result.output  # in the Regulator's draft too
    with app.app_context():
        assert db.session.scalar(db.select(db.func.count()).select_from(TotpCredential)) == 0
        event = db.session.scalar(db.select(AuditEvent).where(AuditEvent.event == "breach.forced_reset"))
        assert event.detail["authenticator_apps"] == 1
    told = body_of(smtp_server.wait_for("amara@example.org", subject_contains="new eCitizen Passport password"))
    assert "removed your authenticator app" in told
    untouched = body_of(smtp_server.wait_for("thabo@example.org", subject_contains="new eCitizen Passport password"))
    assert "authenticator app" not in untouched  # nothing to set up again for a resident without one
