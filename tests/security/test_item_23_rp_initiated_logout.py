"""Checklist 23: RP-initiated logout. An attacker uses the end-session endpoint as an open redirect
(unregistered, look-alike or pattern-like ``post_logout_redirect_uri``, or another client's
registered one) or as a cross-site logout (``<img src=/logout/end-session>``, with no hint, a forged
hint, or the attacker's own valid ID token as hint): there is never a redirect to an unregistered URI,
and without a valid hint for the signed-in resident the resident must confirm. A genuine logout ends
the OP session and sends each department a signed ``logout+jwt`` without ``nonce``."""
from __future__ import annotations

from urllib.parse import urlencode

import pytest
from joserfc import jwt
from joserfc.jwk import KeySet

from idp.extensions import db
from idp.models import UserSession
from idp.services import delivery_worker
from tests.conftest import csrf_token
from tests.integration.test_backchannel_logout import Receiver
from tests.support.oidc import exchange, get_code, login, make_client, make_user, pkce_pair

BYE = "https://billing.example.gov.za/bye"


@pytest.fixture
def receiver(app):
    server = Receiver()
    yield server
    delivery_worker.wait_idle(app)  # notices of this test reach this receiver, not a closed port
    server.stop()


@pytest.fixture
def signed_in(app, client, receiver):
    client_id, secret = make_client(app, post_logout_redirect_uris=[BYE], backchannel_logout_uri=receiver.url)
    make_user(app)
    login(client)
    verifier, challenge = pkce_pair()
    tokens = exchange(client, client_id, secret, get_code(client, client_id, challenge), verifier).get_json()
    return client_id, tokens["id_token"]


def _live_sessions(app) -> int:
    with app.app_context():
        return db.session.query(UserSession).filter(UserSession.ended_at.is_(None)).count()


def _end_session(client, **params):
    return client.get("/logout/end-session?" + urlencode(params))


PATTERN_LIKE = [
    BYE + "/", BYE + "?x=1", BYE + "#f", BYE.upper(), "https://billing.example.gov.za/BYE", BYE + "/../bye",
    "https://billing.example.gov.za/*", "https://billing.example.gov.za/.*", "https://*.example.gov.za/bye",
    "https://billing.example.gov.za.evil.tld/bye", "https://billing.example.gov.za@evil.tld/bye",
    "http://billing.example.gov.za/bye", "https://billing.example.gov.za:443/bye", "//evil.tld/bye",
    "javascript:alert(1)", " " + BYE, BYE + "%00",
]


def test_item_23_unregistered_or_pattern_like_targets_are_never_redirected_to(app, client, signed_in):
    _, id_token = signed_in
    for target in PATTERN_LIKE:  # the first one signs out; the rest are asked with the hint alone
        response = _end_session(client, id_token_hint=id_token, post_logout_redirect_uri=target, state="s1")
        assert response.status_code == 200 and "Location" not in response.headers, target
        html = response.get_data(as_text=True)
        assert 'href="' + target not in html and "http-equiv" not in html.lower(), target  # no link or refresh
    exact = _end_session(client, id_token_hint=id_token, post_logout_redirect_uri=BYE)
    assert exact.status_code == 302 and exact.headers["Location"] == BYE  # the exact registered one only


def test_item_23_another_clients_registered_uri_is_not_a_target(app, client, signed_in):
    _, id_token = signed_in
    make_client(app, name="Permits", redirect_uris=["https://permits.example.gov.za/cb"],
                post_logout_redirect_uris=["https://permits.example.gov.za/bye"])
    response = _end_session(client, id_token_hint=id_token, post_logout_redirect_uri="https://permits.example.gov.za/bye")
    assert response.status_code == 200 and "Location" not in response.headers


def test_item_23_cross_site_logout_without_a_hint_needs_confirmation(app, client, signed_in):
    client_id, _ = signed_in
    for params in ({}, {"client_id": client_id, "post_logout_redirect_uri": BYE, "state": "s"},
                   {"id_token_hint": "eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0."}):
        response = _end_session(client, **params)  # what an <img src> or a link would send
        assert response.status_code == 200 and "Location" not in response.headers
        assert b"Sign out?" in response.data
        assert _live_sessions(app) == 1
    assert client.get("/logout").status_code == 405  # the plain sign-out is a CSRF-protected POST only
    assert _live_sessions(app) == 1


def test_item_23_the_attackers_own_valid_hint_does_not_sign_the_victim_out(app, client, signed_in):
    client_id, _ = signed_in
    attacker = app.test_client()
    make_user(app, email="attacker@example.org")
    login(attacker, email="attacker@example.org")
    verifier, challenge = pkce_pair()
    other_id, secret = make_client(app, name="Attacker's department")
    attackers_hint = exchange(attacker, other_id, secret, get_code(attacker, other_id, challenge),
                              verifier).get_json()["id_token"]
    assert _live_sessions(app) == 2
    response = _end_session(client, id_token_hint=attackers_hint)  # planted in the victim's browser
    assert response.status_code == 200 and b"Sign out?" in response.data
    assert _live_sessions(app) == 2
    assert client.get("/account/").status_code == 200  # the victim is still signed in


def test_item_23_genuine_logout_ends_the_session_and_notifies_without_nonce(app, client, signed_in, receiver):
    client_id, id_token = signed_in
    response = _end_session(client, id_token_hint=id_token, post_logout_redirect_uri=BYE, state="s1")
    assert response.status_code == 302 and response.headers["Location"] == BYE + "?state=s1"
    assert _live_sessions(app) == 0
    assert client.get("/account/").status_code == 302
    delivery_worker.wait_idle(app)
    [body] = receiver.bodies
    token = jwt.decode(body["logout_token"], KeySet.import_key_set(client.get("/jwks.json").get_json()))
    assert token.header["typ"] == "logout+jwt"
    assert "nonce" not in token.claims and token.claims["aud"] == client_id
    assert token.claims["events"] == {"http://schemas.openid.net/event/backchannel-logout": {}}


def test_item_23_confirmed_logout_works_with_the_residents_own_csrf_token(app, client, signed_in):
    page = _end_session(client)
    assert _live_sessions(app) == 1
    confirmed = client.post("/logout/end-session", data={"confirm": "yes", "csrf_token": csrf_token(page.get_data(as_text=True))})
    assert confirmed.status_code == 200 and "Location" not in confirmed.headers
    assert _live_sessions(app) == 0
