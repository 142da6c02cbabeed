"""The shared department library: settings errors, CSRF, safe return paths, server-side sessions
ended by logout tokens, and the token checks (typ, iss, aud, exp, signature, logout event)."""
from __future__ import annotations

import time
from urllib.parse import parse_qs, urlsplit

import pytest
from flask import Flask, g
from flask_sqlalchemy import SQLAlchemy
from joserfc import jwt
from joserfc.jwk import KeySet, RSAKey

from relying_party_examples.common import Passport, Settings, SettingsError
from relying_party_examples.common.tokens import LOGOUT_EVENT, TokenChecker, TokenError

ISSUER = "http://idp.invalid"
db = SQLAlchemy()
passport = Passport(db)


def make_app(tmp_path) -> Flask:
    app = Flask(__name__)
    settings = Settings.load("sample", 5199, {"RP_ISSUER": ISSUER, "RP_CLIENT_ID": "sample-client",
                                              "RP_CLIENT_SECRET": "s", "RP_SECRET_KEY": "k",
                                              "RP_DATABASE_URL": f"sqlite:///{tmp_path}/sample.db"})
    passport.init_app(app, settings, title="Sample", scope="openid", slug="sample")

    @app.route("/private", methods=["GET", "POST"])
    @passport.login_required()
    def private():
        return "hello " + g.resident["name"]

    @app.get("/strong")
    @passport.login_required(acr="mfa")
    def strong():
        return "strong"

    return app


@pytest.fixture
def app(tmp_path):
    return make_app(tmp_path)


def sign_in(app, http, acr="urn:ecitizen:acr:password", sid="sid-1", sub="sub-1") -> str:
    with app.app_context():
        token = passport.start_session({"sub": sub, "name": "Thandi", "acr": acr, "sid": sid}, None)
    http.set_cookie("sample_session", token)
    return token


@pytest.mark.parametrize("missing", ["RP_ISSUER", "RP_CLIENT_ID", "RP_CLIENT_SECRET"])
def test_a_missing_setting_is_named(missing, monkeypatch):
    values = {"RP_ISSUER": ISSUER, "RP_CLIENT_ID": "c", "RP_CLIENT_SECRET": "s"}
    for name in values:
        monkeypatch.delenv(name, raising=False)
    values[missing] = ""
    with pytest.raises(SettingsError, match=missing):
        Settings.load("sample", 5199, values)


def test_a_bad_port_is_named():
    with pytest.raises(SettingsError, match="RP_PORT"):
        Settings.load("sample", 5199, {"RP_ISSUER": ISSUER, "RP_CLIENT_ID": "c", "RP_CLIENT_SECRET": "s",
                                       "RP_PORT": "eighty"})


def test_signed_out_residents_are_sent_to_sign_in_and_step_up_asks_for_mfa(app):
    http = app.test_client()
    assert http.get("/private?tab=1").headers["Location"] == "/login?next=%2Fprivate%3Ftab%3D1"
    sign_in(app, http)
    assert http.get("/private").get_data(as_text=True) == "hello Thandi"
    assert http.get("/strong").headers["Location"] == "/login?next=%2Fstrong&acr=mfa"
    assert http.post("/private").status_code == 400  # no CSRF token
    other = app.test_client()
    sign_in(app, other, acr="urn:ecitizen:acr:mfa", sid="sid-2")
    assert other.get("/strong").get_data(as_text=True) == "strong"


def test_the_sign_in_redirect_uses_pkce_and_keeps_only_local_return_paths(app, monkeypatch):
    metadata = {"issuer": ISSUER, "authorization_endpoint": f"{ISSUER}/authorize"}
    with app.app_context():
        monkeypatch.setattr(type(passport.client), "load_server_metadata", lambda self: metadata)
    http = app.test_client()
    response = http.get("/login?next=//evil.example/steal&acr=mfa")
    query = parse_qs(urlsplit(response.headers["Location"]).query)
    assert query["code_challenge_method"] == ["S256"] and query["acr_values"] == ["urn:ecitizen:acr:mfa"]
    assert query["nonce"] and query["state"] and query["client_id"] == ["sample-client"]
    with http.session_transaction() as flow:
        assert flow["next"] == "/"
    assert http.get("/login?acr=superuser").status_code == 400


def test_posts_without_the_form_token_are_refused_even_with_an_empty_session(app):
    http = app.test_client()
    assert http.post("/logout").status_code == 400
    assert http.post("/logout", data={"csrf_token": ""}).status_code == 400


# --- tokens --------------------------------------------------------------------------------------

class KeySource:
    """What TokenChecker reads from Authlib's client: discovery metadata and the JWKS."""

    def __init__(self, key):
        self.key = key
        self.fetches = 0

    def load_server_metadata(self):
        return {"issuer": ISSUER}

    def fetch_jwk_set(self, force=False):
        self.fetches += 1
        return KeySet([self.key]).as_dict(private=False)


@pytest.fixture
def signer():
    return RSAKey.generate_key(2048, parameters={"kid": "k1"})


@pytest.fixture
def checker(signer, tmp_path):
    settings = Settings.load("sample", 5199, {"RP_ISSUER": ISSUER, "RP_CLIENT_ID": "sample-client",
                                              "RP_CLIENT_SECRET": "s", "RP_API_RESOURCE": "http://localhost:5199/api"})
    return TokenChecker(settings, KeySource(signer))


def access_token(signer, typ="at+jwt", **claims):
    now = int(time.time())
    body = {"iss": ISSUER, "aud": "http://localhost:5199/api", "sub": "s", "client_id": "c", "iat": now,
            "exp": now + 300, "jti": "j1", **claims}
    return jwt.encode({"alg": "RS256", "kid": "k1", "typ": typ}, body, signer)


def test_a_good_access_token_passes_without_introspection_when_none_is_published(checker, signer):
    assert checker.check_bearer("Bearer " + access_token(signer))["sub"] == "s"


@pytest.mark.parametrize("typ, claims, reason", [
    ("JWT", {}, r"not a at\+jwt token"),
    ("at+jwt", {"aud": "http://localhost:5199/other"}, "wrong audience"),
    ("at+jwt", {"iss": "http://evil.invalid"}, "wrong issuer"),
    ("at+jwt", {"exp": int(time.time()) - 3600}, "expired"),
])
def test_bad_access_tokens_are_refused_with_the_reason(checker, signer, typ, claims, reason):
    with pytest.raises(TokenError, match=reason):
        checker.check_bearer("Bearer " + access_token(signer, typ=typ, **claims))


def test_a_token_from_another_key_is_refused_after_one_fresh_key_fetch(checker):
    stranger = RSAKey.generate_key(2048, parameters={"kid": "k1"})
    with pytest.raises(TokenError, match="signature"):
        checker.check_bearer("Bearer " + access_token(stranger))
    assert checker.client.fetches == 2  # the cached set, then one refetch in case keys rotated


def logout_token(signer, **claims):
    now = int(time.time())
    body = {"iss": ISSUER, "aud": "sample-client", "iat": now, "jti": "l1", "sid": "sid-1", "sub": "sub-1",
            "events": {LOGOUT_EVENT: {}}, **claims}
    return jwt.encode({"alg": "RS256", "kid": "k1", "typ": "logout+jwt"}, body, signer)


@pytest.mark.parametrize("claims", [{"events": {}}, {"nonce": "n"}, {"sid": None, "sub": None}, {"aud": "other"}])
def test_bad_logout_tokens_are_refused(checker, signer, claims):
    with pytest.raises(TokenError):
        checker.check_logout_token(logout_token(signer, **{k: v for k, v in claims.items()}))


def test_a_logout_token_ends_exactly_the_sessions_of_its_sid(app, signer):
    with app.app_context():
        passport.tokens.client = KeySource(signer)
    first, second, other = app.test_client(), app.test_client(), app.test_client()
    sign_in(app, first, sid="sid-1")
    sign_in(app, second, sid="sid-1")
    sign_in(app, other, sid="sid-2", sub="sub-2")
    response = first.post("/backchannel-logout", data={"logout_token": logout_token(signer)})
    assert response.status_code == 200 and response.headers["Cache-Control"] == "no-store"
    assert first.get("/private").status_code == 302 and second.get("/private").status_code == 302
    assert other.get("/private").status_code == 200
    assert first.post("/backchannel-logout", data={"logout_token": "garbage"}).status_code == 400


def test_departments_follow_the_residents_one_choice_of_messages(app):
    from relying_party_examples.common.passport import how_we_tell_you

    with app.app_context():
        token = passport.start_session({"sub": "s", "name": "T", "sid": "x", "acr": "urn:ecitizen:acr:password",
                                        "notification_preferences": {"bills_due": "sms", "city_news": "none"}}, None)
    with app.test_request_context(headers={"Cookie": f"sample_session={token}"}):
        app.preprocess_request()
        assert how_we_tell_you("bills_due") == "by text message"
        assert how_we_tell_you("city_news").startswith("not at all")
        assert how_we_tell_you("service_interruptions") is None
