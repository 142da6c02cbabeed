"""Checklist 72: claims minimisation and unlinking. A department whose registration does not
include the `municipal_accounts` scope gets `invalid_scope` for it, and never receives account
numbers in the ID token or userinfo, not even through the `claims` request parameter; a department
that may ask for it gets it only after the resident consents to it; unlinking an account removes
it from the very next userinfo and refreshed ID token."""
from __future__ import annotations

import json
from urllib.parse import urlencode

from joserfc import jwt
from joserfc.jwk import KeySet

from idp.extensions import db
from idp.models import AccountLink, Token
from tests.conftest import csrf_token
from tests.integration.test_pages_account import signed_in_client
from tests.support.mfa import post_form
from tests.support.oidc import REDIRECT, authorize_params, exchange, get_code, make_client, pkce_pair, query_of
from tests.support.register import add_account, with_check_digit

ACCOUNT = with_check_digit("720000004")
ASK_CLAIM = json.dumps({"id_token": {"municipal_accounts": {"essential": True}},
                        "userinfo": {"municipal_accounts": {"essential": True}}})


def _linked_resident(app):
    add_account(app, ACCOUNT)
    http, user_id = signed_in_client(app)
    assert post_form(http, "/account/municipal/link", {"account_number": ACCOUNT, "proof_kind": "linking_pin",
                                                      "proof": "4821", "role": "owner"}).status_code == 303
    return http, user_id


def _claims(http, tokens) -> tuple[dict, dict]:
    keys = KeySet.import_key_set(http.get("/jwks.json").get_json())
    id_claims = jwt.decode(tokens["id_token"], keys, algorithms=["RS256", "ES256"]).claims
    userinfo = http.get("/userinfo", headers={"Authorization": "Bearer " + tokens["access_token"]}).get_json()
    return id_claims, userinfo


def test_item_72_an_unconfigured_department_gets_invalid_scope_and_no_account_numbers(app):
    permits_id, permits_secret = make_client(app, name="Permits", scope="openid profile email offline_access")
    http, _ = _linked_resident(app)
    _, challenge = pkce_pair()
    asked = http.get("/authorize?" + urlencode(authorize_params(permits_id, challenge,
                                                                scope="openid municipal_accounts")))
    assert asked.status_code == 302
    answer = query_of(asked.headers["Location"])
    assert asked.headers["Location"].startswith(REDIRECT + "?")
    assert answer["error"] == "invalid_scope" and "code" not in answer
    verifier, challenge = pkce_pair()
    code = get_code(http, permits_id, challenge, scope="openid profile email", claims=ASK_CLAIM)
    tokens = exchange(http, permits_id, permits_secret, code, verifier).get_json()
    id_claims, userinfo = _claims(http, tokens)
    for seen in (id_claims, userinfo, tokens):
        assert "municipal_accounts" not in seen and ACCOUNT not in json.dumps(seen)


def test_item_72_the_claim_needs_the_residents_consent(app):
    billing_id, billing_secret = make_client(app, scope="openid email municipal_accounts")
    http, _ = _linked_resident(app)
    verifier, challenge = pkce_pair()
    params = authorize_params(billing_id, challenge, scope="openid municipal_accounts")
    consent = http.get("/authorize?" + urlencode(params))
    assert consent.status_code == 200 and "municipal accounts you linked" in consent.get_data(as_text=True)
    denied = http.post("/authorize?" + urlencode(params), data={
        "decision": "deny", "csrf_token": csrf_token(consent.get_data(as_text=True))})
    assert denied.status_code == 302 and query_of(denied.headers["Location"])["error"] == "access_denied"
    with app.app_context():
        assert db.session.scalar(db.select(db.func.count()).select_from(Token)) == 0
    # Consent to email only does not cover the account numbers later.
    email_code = get_code(http, billing_id, challenge, scope="openid email")
    assert "municipal_accounts" not in _claims(http, exchange(http, billing_id, billing_secret, email_code,
                                                                verifier).get_json())[0]
    again = http.get("/authorize?" + urlencode(params))
    assert again.status_code == 200 and "municipal accounts you linked" in again.get_data(as_text=True)


def test_item_72_unlinking_removes_the_claim_from_the_next_responses(app):
    billing_id, billing_secret = make_client(app, scope="openid email municipal_accounts offline_access")
    http, user_id = _linked_resident(app)
    verifier, challenge = pkce_pair()
    code = get_code(http, billing_id, challenge, scope="openid municipal_accounts offline_access")
    tokens = exchange(http, billing_id, billing_secret, code, verifier).get_json()
    id_claims, userinfo = _claims(http, tokens)
    assert [a["account_number"] for a in userinfo["municipal_accounts"]] == [ACCOUNT]
    with app.app_context():
        link_id = db.session.scalar(db.select(AccountLink.id).where(AccountLink.user_id == user_id))
    assert post_form(http, f"/account/municipal/{link_id}/unlink", token_from="/account/municipal/").status_code == 303
    after = http.get("/userinfo", headers={"Authorization": "Bearer " + tokens["access_token"]}).get_json()
    assert after.get("municipal_accounts", []) == [] and ACCOUNT not in json.dumps(after)
    refreshed = http.post("/token", data={"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]},
                          auth=(billing_id, billing_secret)).get_json()
    assert refreshed.get("access_token"), refreshed
    seen = http.get("/userinfo", headers={"Authorization": "Bearer " + refreshed["access_token"]}).get_json()
    assert seen["sub"] == id_claims["sub"] and ACCOUNT not in json.dumps(seen)
    if "id_token" in refreshed:  # a refreshed ID token, when issued, is current too
        assert ACCOUNT not in json.dumps(_claims(http, refreshed)[0])
    new_code = get_code(http, billing_id, challenge, scope="openid municipal_accounts")
    fresh_id, _ = _claims(http, exchange(http, billing_id, billing_secret, new_code, verifier).get_json())
    assert fresh_id.get("municipal_accounts", []) == []
