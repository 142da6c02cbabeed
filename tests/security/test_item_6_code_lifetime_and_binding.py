"""Checklist 6: code lifetime and binding. A code lives IDP_AUTH_CODE_LIFETIME seconds (60 by default,
10 minutes at most); once older it is invalid_grant. A code presented by another client with valid
credentials, or with a redirect_uri different from (or missing, when one was sent in) the authorization
request, is invalid_grant and burned: the rightful client cannot redeem it afterwards, and nothing is
issued."""
from datetime import timedelta

import pytest

from idp.config import ConfigError, load_settings
from idp.extensions import db
from idp.models import AuditEvent, AuthorizationCode, Token
from idp.models.types import utcnow
from tests.support.oidc import exchange, get_code, login, make_client, make_user, pkce_pair


@pytest.fixture
def rp(app, client):
    make_user(app)
    login(client)
    return make_client(app)


def _lifetime_of_the_last_code(app) -> float:
    with app.app_context():
        row = db.session.query(AuthorizationCode).order_by(AuthorizationCode.id.desc()).first()
        return (row.expires_at - row.created_at).total_seconds()


def _tokens(app) -> int:
    with app.app_context():
        return db.session.query(Token).count()


def test_item_6_code_lifetime_is_60_seconds_by_default_and_follows_the_setting(app, client, rp, monkeypatch):
    _, challenge = pkce_pair()
    get_code(client, rp[0], challenge)
    assert 59 <= _lifetime_of_the_last_code(app) <= 61
    monkeypatch.setattr(app.config["IDP_SETTINGS"], "auth_code_lifetime", 15)
    get_code(client, rp[0], challenge)
    assert 14 <= _lifetime_of_the_last_code(app) <= 16


@pytest.mark.parametrize("value", ["601", "3600", "9", "0", "-60", "sixty"])
def test_item_6_code_lifetime_setting_is_capped_at_ten_minutes(value):
    with pytest.raises(ConfigError) as refused:
        load_settings({"IDP_ENV": "test", "IDP_AUTH_CODE_LIFETIME": value})
    assert any(line.startswith("IDP_AUTH_CODE_LIFETIME") for line in refused.value.problems)
    assert load_settings({"IDP_ENV": "test"}).auth_code_lifetime == 60


def test_item_6_a_code_past_its_lifetime_is_invalid_grant_and_issues_nothing(app, client, rp):
    verifier, challenge = pkce_pair()
    code = get_code(client, rp[0], challenge)
    with app.app_context():  # issued 61 s ago with the default 60 s lifetime
        db.session.query(AuthorizationCode).update({"created_at": utcnow() - timedelta(seconds=61),
                                                    "expires_at": utcnow() - timedelta(seconds=1)})
        db.session.commit()
    response = exchange(client, rp[0], rp[1], code, verifier)
    assert response.status_code == 400 and response.get_json()["error"] == "invalid_grant"
    assert _tokens(app) == 0


def test_item_6_a_code_redeemed_by_another_client_is_burned(app, client, rp):
    other = make_client(app, name="Permits")
    verifier, challenge = pkce_pair()
    code = get_code(client, rp[0], challenge)
    stolen = exchange(client, other[0], other[1], code, verifier)
    assert stolen.status_code == 400 and stolen.get_json()["error"] == "invalid_grant"
    assert "access_token" not in stolen.get_json()
    rightful = exchange(client, rp[0], rp[1], code, verifier)
    assert rightful.status_code == 400 and rightful.get_json()["error"] == "invalid_grant"
    assert _tokens(app) == 0
    with app.app_context():
        assert db.session.query(AuthorizationCode).filter(AuthorizationCode.used_at.is_(None)).count() == 0
        event = db.session.query(AuditEvent).filter_by(event="token.code_wrong_client").one()
        assert event.client_id == rp[0] and event.detail["presented_by"] == other[0] and event.outcome == "failure"


@pytest.mark.parametrize("redirect_uri", ["https://billing.example.gov.za/cb/", "https://billing.example.gov.za/other",
                                          None])
def test_item_6_a_different_or_missing_redirect_uri_at_the_token_endpoint_burns_the_code(app, client, rp, redirect_uri):
    verifier, challenge = pkce_pair()
    code = get_code(client, rp[0], challenge)
    data = {"grant_type": "authorization_code", "code": code, "code_verifier": verifier}
    if redirect_uri:
        data["redirect_uri"] = redirect_uri
    wrong = client.post("/token", data=data, auth=rp)
    assert wrong.status_code == 400 and wrong.get_json()["error"] == "invalid_grant"
    assert exchange(client, rp[0], rp[1], code, verifier).get_json()["error"] == "invalid_grant"
    assert _tokens(app) == 0
