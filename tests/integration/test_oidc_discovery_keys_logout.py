"""Discovery, JWKS and key rotation, RP-initiated logout, and the clients/keys CLI."""
import json
from urllib.parse import urlencode

import pytest

from idp.extensions import db
from idp.models import Client, SigningKey, UserSession
from idp.services import keys
from tests.conftest import csrf_token
from tests.support.oidc import (
    REDIRECT,
    exchange,
    get_code,
    login,
    make_client,
    make_user,
    pkce_pair,
)


def test_discovery_advertises_exactly_what_works(client):
    response = client.get("/.well-known/openid-configuration")
    doc = response.get_json()
    assert response.headers["Cache-Control"].startswith("public")
    assert doc["issuer"] == "http://localhost"
    assert doc["code_challenge_methods_supported"] == ["S256"]
    assert doc["response_types_supported"] == ["code"]
    assert "implicit" not in doc["grant_types_supported"] and "password" not in doc["grant_types_supported"]
    assert doc["authorization_response_iss_parameter_supported"] is True
    assert set(doc["scopes_supported"]) == {"openid", "profile", "email", "phone", "municipal_accounts",
                                           "notification_preferences", "offline_access"}
    assert doc["backchannel_logout_supported"] is True and doc["backchannel_logout_session_supported"] is True
    for endpoint in ("authorization_endpoint", "token_endpoint", "userinfo_endpoint", "jwks_uri",
                     "revocation_endpoint", "introspection_endpoint", "end_session_endpoint"):
        assert doc[endpoint].startswith("http://localhost/")


def test_private_keys_are_encrypted_at_rest_and_never_published(app, client):
    jwks = client.get("/jwks.json").get_json()
    assert len(jwks["keys"]) == 1 and "d" not in jwks["keys"][0]
    with app.app_context():
        row = db.session.scalar(db.select(SigningKey))
        assert "PRIVATE KEY" not in row.private_key_encrypted
        assert row.kid == jwks["keys"][0]["kid"]


def test_rotation_keeps_the_old_key_published_and_signs_with_the_new(app, client):
    old_kid = client.get("/jwks.json").get_json()["keys"][0]["kid"]
    with app.app_context():
        new_kid = keys.rotate().kid
        assert keys.keyring().signing_kid == old_kid  # the new key signs after its pre-publication
    kids = [k["kid"] for k in client.get("/jwks.json").get_json()["keys"]]
    assert set(kids) == {old_kid, new_kid}


def test_es256_keys(app, client):
    with app.app_context():
        kid = keys.create_key("ES256").kid
    key = next(k for k in client.get("/jwks.json").get_json()["keys"] if k["kid"] == kid)
    assert key["kty"] == "EC" and key["alg"] == "ES256"


@pytest.fixture
def signed_in(app, client):
    client_id, secret = make_client(app, post_logout_redirect_uris=["https://billing.example.gov.za/bye"])
    make_user(app)
    login(client)
    verifier, challenge = pkce_pair()
    tokens = exchange(client, client_id, secret, get_code(client, client_id, challenge), verifier).get_json()
    return client_id, tokens["id_token"]


def _live_sessions(app):
    with app.app_context():
        return db.session.query(UserSession).filter(UserSession.ended_at.is_(None)).count()


def test_logout_with_hint_redirects_to_the_exact_registered_uri_with_state(app, client, signed_in):
    client_id, id_token = signed_in
    response = client.get("/logout/end-session?" + urlencode({
        "id_token_hint": id_token, "post_logout_redirect_uri": "https://billing.example.gov.za/bye", "state": "s1"}))
    assert response.status_code == 302
    assert response.headers["Location"] == "https://billing.example.gov.za/bye?state=s1"
    assert _live_sessions(app) == 0
    assert client.get("/account/").status_code == 302  # the old cookie no longer signs in


def test_logout_to_an_unregistered_uri_does_not_redirect(app, client, signed_in):
    _, id_token = signed_in
    response = client.get("/logout/end-session?" + urlencode({
        "id_token_hint": id_token, "post_logout_redirect_uri": "https://billing.example.gov.za/bye/", "state": "s1"}))
    assert response.status_code == 200 and "Location" not in response.headers
    assert b"You are signed out" in response.data


def test_logout_without_a_valid_hint_asks_first(app, client, signed_in):
    response = client.get("/logout/end-session?id_token_hint=forged.token.value")
    assert response.status_code == 200 and b"Sign out?" in response.data
    assert _live_sessions(app) == 1
    no_csrf = client.post("/logout/end-session", data={"confirm": "yes"})
    assert no_csrf.status_code == 200 and _live_sessions(app) == 1
    confirmed = client.post("/logout/end-session", data={"confirm": "yes", "csrf_token": csrf_token(response.get_data(as_text=True))})
    assert confirmed.status_code == 200 and _live_sessions(app) == 0


def _cli(app, *args):
    return app.test_cli_runner().invoke(args=list(args), catch_exceptions=False)


def test_clients_create_prints_json_once_and_stores_a_digest(app):
    result = _cli(app, "clients", "create", "--name", "Permits", "--redirect-uri", "https://permits.example.gov.za/cb",
                  "--redirect-uri", "https://permits.example.gov.za/cb2", "--post-logout-redirect-uri",
                  "https://permits.example.gov.za/", "--scope", "openid email", "--grant-type", "authorization_code",
                  "--grant-type", "client_credentials", "--json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["client_id"] and data["client_secret"]
    assert data["redirect_uris"] == ["https://permits.example.gov.za/cb", "https://permits.example.gov.za/cb2"]
    with app.app_context():
        row = db.session.scalar(db.select(Client))
        assert row.client_secret_digest and data["client_secret"] not in row.client_secret_digest
    listing = _cli(app, "clients", "list", "--json")
    assert data["client_secret"] not in listing.output and "Permits" in listing.output


def test_public_clients_get_no_secret(app):
    result = _cli(app, "clients", "create", "--name", "App", "--redirect-uri", "http://127.0.0.1:8765/cb", "--public", "--json")
    data = json.loads(result.output)
    assert "client_secret" not in data and data["token_endpoint_auth_method"] == "none"


@pytest.mark.parametrize("args, message", [
    (["--redirect-uri", "http://billing.example.gov.za/cb"], "https"),
    (["--redirect-uri", "https://billing.example.gov.za/cb#x"], "fragment"),
    (["--redirect-uri", "not a url"], "absolute"),
    (["--redirect-uri", REDIRECT, "--scope", "openid admin"], "unsupported scope"),
    ([], "redirect URI"),
])
def test_clients_create_rejects_bad_input_and_stores_nothing(app, args, message):
    result = _cli(app, "clients", "create", "--name", "Bad", *args, "--json")
    assert result.exit_code != 0 and message in result.output
    with app.app_context():
        assert db.session.query(Client).count() == 0


def test_keys_rotate_cli(app):
    with app.app_context():
        first = keys.keyring().signing_kid
    result = _cli(app, "keys", "rotate", "--now")
    assert result.exit_code == 0 and "new signing key" in result.output
    with app.app_context():
        app.extensions.pop(keys.CACHE, None)
        assert keys.keyring().signing_kid != first
