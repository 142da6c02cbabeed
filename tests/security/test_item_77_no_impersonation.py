"""Checklist 77: impersonation / "view as user". The product deliberately does not offer it, so
what must hold is that no path to it exists: no console route or action, no token-exchange grant
(RFC 8693) at the token endpoint or in discovery, no `act` claim in any token even when asked
for, and an administrator naming a resident in `login_hint` or `id_token_hint` is never signed in
as that resident."""
from __future__ import annotations

import json
import re
from urllib.parse import urlencode

from joserfc import jwt
from joserfc.jwk import KeySet

from idp.extensions import db
from idp.models import AuditEvent, User
from tests.integration.test_admin import staff_client
from tests.support.oidc import (
    authorize_params,
    exchange,
    get_code,
    login,
    make_client,
    make_user,
    pkce_pair,
    query_of,
)

WORDS = re.compile(r"imperson|view.?as|act.?as|login.?as|sign.?in.?as|masquerad|sudo|switch.?user|become",
                   re.IGNORECASE)
TOKEN_EXCHANGE = "urn:ietf:params:oauth:grant-type:token-exchange"


def test_item_77_no_route_or_console_action_offers_impersonation(app):
    for rule in app.url_map.iter_rules():
        assert not WORDS.search(rule.rule) and not WORDS.search(rule.endpoint), rule.rule
    target = make_user(app, email="amara@example.org")
    http, _ = staff_client(app, email="admin@capetown.gov.za", roles=("administrator",))
    page = http.get(f"/admin/residents/{target}").get_data(as_text=True)
    assert page and not WORDS.search(re.sub(r"<[^>]+>", " ", page))
    actions = re.findall(r'action="([^"]+)"', page)
    assert actions and not any(WORDS.search(a) for a in actions)
    token = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', page).group(1)
    for path in ("impersonate", "view-as", "act-as", "login-as"):
        response = http.post(f"/admin/residents/{target}/{path}", data={"csrf_token": token, "reason": "testing"})
        assert response.status_code == 404, path


def test_item_77_token_exchange_is_not_a_grant_and_tokens_never_carry_act(app):
    client_id, secret = make_client(app)
    discovery = app.test_client().get("/.well-known/openid-configuration").get_json()
    assert TOKEN_EXCHANGE not in discovery["grant_types_supported"]
    assert "act" not in discovery.get("claims_supported", [])
    make_user(app, email="amara@example.org")
    http = app.test_client()
    login(http, email="amara@example.org")
    verifier, challenge = pkce_pair()
    code = get_code(http, client_id, challenge, claims=json.dumps({"id_token": {"act": {"essential": True}},
                                                                     "userinfo": {"act": None}}))
    tokens = exchange(http, client_id, secret, code, verifier).get_json()
    exchanged = app.test_client().post("/token", auth=(client_id, secret), data={
        "grant_type": TOKEN_EXCHANGE, "subject_token": tokens["access_token"],
        "subject_token_type": "urn:ietf:params:oauth:token-type:access_token",
        "actor_token": tokens["access_token"], "actor_token_type": "urn:ietf:params:oauth:token-type:access_token"})
    assert exchanged.status_code == 400 and exchanged.get_json()["error"] in ("unsupported_grant_type",
                                                                               "unauthorized_client")
    keys = KeySet.import_key_set(http.get("/jwks.json").get_json())
    for raw in (tokens["id_token"], tokens["access_token"]):
        assert "act" not in jwt.decode(raw, keys, algorithms=["RS256", "ES256"]).claims
    userinfo = http.get("/userinfo", headers={"Authorization": "Bearer " + tokens["access_token"]}).get_json()
    assert "act" not in userinfo


def test_item_77_an_administrator_naming_a_resident_is_never_signed_in_as_them(app):
    client_id, secret = make_client(app, first_party=True)
    resident_sub = make_user(app, email="amara@example.org")
    http, admin_id = staff_client(app, email="admin@capetown.gov.za", roles=("administrator",))
    keys = KeySet.import_key_set(http.get("/jwks.json").get_json())
    for prompt in ("none", None):
        verifier, challenge = pkce_pair()
        response = http.get("/authorize?" + urlencode(authorize_params(
            client_id, challenge, login_hint="amara@example.org", prompt=prompt)))
        assert response.status_code == 302
        code = query_of(response.headers["Location"])["code"]  # the admin's own session answers
        tokens = exchange(http, client_id, secret, code, verifier).get_json()
        claims = jwt.decode(tokens["id_token"], keys, algorithms=["RS256", "ES256"]).claims
        assert claims["sub"] != resident_sub and claims["email"] == "admin@capetown.gov.za"
    with app.app_context():
        resident_id = db.session.scalar(db.select(User.id).where(User.email == "amara@example.org"))
        assert not db.session.scalar(db.select(AuditEvent).where(AuditEvent.event == "signin.success",
                                                                 AuditEvent.user_id == resident_id))
    assert admin_id != resident_id
