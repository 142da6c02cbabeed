"""Checklist 109: breach-response drill (POPIA s22). Simulated compromise of the signing key and the
server secret (a leaked database snapshot): the documented runbook names the Regulator report and
resident notice contents and the 24-hour target, and its containment commands really work: an
emergency key rotation makes every token the leaked key signed unverifiable at once while the
service keeps issuing; a secret rotation keeps data at rest readable. Bulk forced credential resets
and generated notices are not offered yet (strict xfail)."""
from __future__ import annotations

import re
from pathlib import Path

import pytest
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet

from idp.extensions import db
from idp.models import SigningKey
from idp.services import keys
from tests.support.oidc import exchange, get_code, login, make_client, make_user, pkce_pair

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
    assert _verifies(forged, client.get("/jwks.json").get_json())  # before the drill: accepted by RPs

    result = app.test_cli_runner().invoke(args=["keys", "rotate", "--now"], catch_exceptions=False)
    assert result.exit_code == 0
    jwks = client.get("/jwks.json").get_json()
    assert leaked_kid not in {k["kid"] for k in jwks["keys"]} and not _verifies(forged, jwks)
    verifier, challenge = pkce_pair()
    fresh = exchange(client, client_id, secret, get_code(client, client_id, challenge), verifier)
    assert fresh.status_code == 200 and _verifies(fresh.get_json()["id_token"], jwks)
    with app.app_context():
        assert db.session.scalar(db.select(SigningKey).where(SigningKey.kid == leaked_kid)).state(
            keys.utcnow()) == "retired"


def _verifies(token: str, jwks: dict) -> bool:
    try:
        jwt.decode(token, KeySet.import_key_set(jwks), algorithms=["RS256", "ES256"])
    except (JoseError, ValueError):
        return False
    return True


@pytest.mark.xfail(strict=True, reason="gap: no command forces a password reset on every (or every affected) "
                                        "resident and drafts the s22 notices; the runbook does it by hand")
def test_item_109_forced_credential_reset_command(app):
    make_user(app)
    result = app.test_cli_runner().invoke(args=["users", "force-reset", "--all"])
    assert result.exit_code == 0
    assert re.search(r"\d+ residents", result.output)
