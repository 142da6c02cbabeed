"""Checklist 17: Back-channel client authentication (token, revoke, introspect). An attacker calls
the back-channel endpoints with no credentials, a wrong secret, the secret in the query string, a
confidential client's id alone, or another client's token: every unauthenticated call is 401
``invalid_client`` with ``WWW-Authenticate`` and changes nothing; a client cannot revoke another
client's token; introspection of an unknown, expired, revoked or other client's token is exactly
``{"active": false}``."""
from __future__ import annotations

from datetime import timedelta
from urllib.parse import urlencode

import pytest

from idp.extensions import db
from idp.models import Token
from idp.models.types import utcnow
from tests.support.oidc import exchange, get_code, issue_tokens, make_client, pkce_pair


def _introspect(client, auth, token):
    return client.post("/introspect", data={"token": token}, auth=auth)


def _assert_invalid_client(response):
    assert response.status_code == 401
    assert response.get_json()["error"] == "invalid_client"
    assert response.headers["WWW-Authenticate"].startswith("Basic ")
    assert "access_token" not in response.get_json() and "active" not in response.get_json()


def _live(app) -> int:
    with app.app_context():
        return db.session.query(Token).filter(Token.revoked_at.is_(None)).count()


@pytest.mark.parametrize("path", ["/revoke", "/introspect"])
def test_item_17_unauthenticated_calls_are_401_with_www_authenticate(app, client, rp, path):
    tokens = issue_tokens(client, rp)
    attempts = [
        {"data": {"token": tokens["access_token"]}},  # no credentials at all
        {"data": {"token": tokens["access_token"]}, "auth": (rp[0], "wrong-secret")},
        {"data": {"token": tokens["access_token"], "client_id": rp[0], "client_secret": "wrong-secret"}},
        {"data": {"token": tokens["access_token"], "client_id": rp[0]}},  # a confidential client's id alone
        {"data": {"token": tokens["access_token"]}, "auth": ("no-such-client", rp[1])},
    ]
    for attempt in attempts:
        _assert_invalid_client(client.post(path, **attempt))
    secret_in_query = client.post(path + "?" + urlencode({"client_id": rp[0], "client_secret": rp[1]}),
                                  data={"token": tokens["access_token"]})
    _assert_invalid_client(secret_in_query)
    assert _live(app) == 1
    assert client.get("/userinfo", headers={"Authorization": "Bearer " + tokens["access_token"]}).status_code == 200


def test_item_17_token_endpoint_refuses_unauthenticated_redemption_without_burning_the_code(app, client, rp):
    verifier, challenge = pkce_pair()
    code = get_code(client, rp[0], challenge)
    form = {"grant_type": "authorization_code", "code": code, "redirect_uri": "https://billing.example.gov.za/cb",
            "code_verifier": verifier}
    _assert_invalid_client(client.post("/token", data=form))
    _assert_invalid_client(client.post("/token", data={**form, "client_id": rp[0]}))
    _assert_invalid_client(client.post("/token", data=form, auth=(rp[0], rp[1] + "x")))
    in_query = client.post("/token?" + urlencode({"client_id": rp[0], "client_secret": rp[1]}), data=form)
    assert in_query.status_code == 400 and in_query.get_json()["error"] == "invalid_request"
    assert _live(app) == 0
    # None of the attempts consumed the code: its owner still redeems it.
    assert exchange(client, rp[0], rp[1], code, verifier).status_code == 200


def test_item_17_another_client_cannot_revoke_a_refresh_token(app, client, rp):
    tokens = issue_tokens(client, rp)
    other = make_client(app, name="Permits")
    refused = client.post("/revoke", data={"token": tokens["refresh_token"], "token_type_hint": "refresh_token"},
                          auth=other)
    assert refused.status_code == 400 and refused.get_json()["error"] == "invalid_grant"
    assert _live(app) == 1
    rotated = client.post("/token", data={"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]},
                          auth=rp)
    assert rotated.status_code == 200  # still valid for its owner


def test_item_17_introspection_of_expired_revoked_or_foreign_tokens_is_exactly_inactive(app, client, rp):
    tokens = issue_tokens(client, rp)
    other = make_client(app, name="Permits")
    for token in (tokens["access_token"], tokens["refresh_token"]):
        foreign = _introspect(client, other, token)
        assert foreign.status_code == 200 and foreign.get_json() == {"active": False}
    for token in ("x" * 5000, "unknown-token", tokens["access_token"][:-2]):
        unknown = _introspect(client, rp, token)
        assert unknown.status_code == 200 and unknown.get_json() == {"active": False}

    with app.app_context():
        db.session.query(Token).update({"access_expires_at": utcnow() - timedelta(seconds=1)})
        db.session.commit()
    expired = _introspect(client, rp, tokens["access_token"])
    assert expired.status_code == 200 and expired.get_json() == {"active": False}

    fresh = issue_tokens(client, rp)
    assert client.post("/revoke", data={"token": fresh["access_token"]}, auth=rp).status_code == 200
    revoked = _introspect(client, rp, fresh["access_token"])
    assert revoked.status_code == 200 and revoked.get_json() == {"active": False}
