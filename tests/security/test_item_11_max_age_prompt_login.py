"""Checklist 11: max_age, prompt=login, auth_time and acr step-up. A resident who signed in 10 minutes
ago is sent to sign in again for max_age=60 (and for max_age=0, like prompt=login), and the new ID token's
auth_time is that of the new sign-in; a fresh enough session is not asked again; prompt=login combined
with none, and a max_age that is not a non-negative whole number, are invalid_request; when a new or
stronger sign-in is needed but prompt=none forbids it, the answer is login_required, never a code."""
import time
from datetime import timedelta
from urllib.parse import urlencode

import pytest
from joserfc import jwt
from joserfc.jwk import KeySet

from idp.extensions import db
from idp.models import AuthorizationCode, UserSession
from idp.models.types import utcnow
from idp.oidc.acr import ACR_MFA
from tests.conftest import csrf_token
from tests.support.mfa import enrol_totp
from tests.support.oidc import (
    PASSWORD,
    authorize,
    authorize_params,
    exchange,
    login,
    make_client,
    make_user,
    pkce_pair,
    query_of,
)


@pytest.fixture
def rp(app, client):
    make_user(app)
    login(client)
    return make_client(app, first_party=True)


def _age_the_session(app, minutes: int) -> None:
    with app.app_context():
        db.session.query(UserSession).update({"auth_time": utcnow() - timedelta(minutes=minutes)})
        db.session.commit()


def _auth_time(client, rp, response, verifier) -> int:
    assert response.status_code == 302 and "code=" in response.headers["Location"], response.headers.get("Location")
    tokens = exchange(client, *rp, query_of(response.headers["Location"])["code"], verifier).get_json()
    keys = KeySet.import_key_set(client.get("/jwks.json").get_json())
    return jwt.decode(tokens["id_token"], keys, algorithms=["RS256", "ES256"]).claims["auth_time"]


def _codes(app) -> int:
    with app.app_context():
        return db.session.query(AuthorizationCode).count()


@pytest.mark.parametrize("max_age", ["60", "0"])
def test_item_11_old_session_signs_in_again_and_auth_time_is_the_new_sign_in(app, client, rp, max_age):
    _age_the_session(app, 10)
    verifier, challenge = pkce_pair()
    params = authorize_params(rp[0], challenge, max_age=max_age)
    first = authorize(client, params)
    assert first.status_code == 302 and first.headers["Location"].startswith("/login?")
    assert _codes(app) == 0
    page = client.get(first.headers["Location"])
    before = int(time.time())
    signed_in = client.post("/login", data={"email": "resident@example.org", "password": PASSWORD,
                                            "next": "/authorize?" + urlencode(params),
                                            "csrf_token": csrf_token(page.get_data(as_text=True))})
    assert signed_in.status_code in (302, 303)
    assert _auth_time(client, rp, client.get(signed_in.headers["Location"]), verifier) >= before


def test_item_11_a_fresh_enough_session_is_not_asked_again(app, client, rp):
    _age_the_session(app, 10)
    verifier, challenge = pkce_pair()
    response = authorize(client, authorize_params(rp[0], challenge, max_age="3600"))
    assert _auth_time(client, rp, response, verifier) <= int(time.time()) - 590


def test_item_11_prompt_none_with_another_value_is_invalid_request(app, client, rp):
    _, challenge = pkce_pair()
    for prompt in ["login none", "none login", "none consent", "none select_account"]:
        query = query_of(authorize(client, authorize_params(rp[0], challenge, prompt=prompt)).headers["Location"])
        assert query["error"] == "invalid_request" and "code" not in query, prompt
    assert _codes(app) == 0


def test_item_11_max_age_not_a_whole_number_of_seconds_is_invalid_request(app, client, rp):
    _, challenge = pkce_pair()
    for max_age in ["-5", "-1", "abc", "1e3", "60.5", " 60", "0x10", "", "\u0661\u0662", "9" * 12]:
        query = query_of(authorize(client, authorize_params(rp[0], challenge, max_age=max_age)).headers["Location"])
        assert query["error"] == "invalid_request" and "code" not in query, max_age
    assert _codes(app) == 0


@pytest.mark.parametrize("extra", [{"max_age": "60"}, {"max_age": "0"}, {"prompt": "none", "acr_values": ACR_MFA}])
def test_item_11_reauthentication_needed_but_forbidden_by_prompt_none_is_login_required(app, client, rp, extra):
    _age_the_session(app, 10)
    _, challenge = pkce_pair()
    params = authorize_params(rp[0], challenge, **extra)
    params["prompt"] = "none"
    response = authorize(client, params)
    assert response.status_code == 302
    query = query_of(response.headers["Location"])
    assert query["error"] == "login_required" and query["state"] == "st-123" and "code" not in query
    assert _codes(app) == 0


def test_item_11_step_up_for_an_enrolled_resident_also_is_login_required_under_prompt_none(app, client, rp):
    """Even when the resident has a second factor (so a step-up is possible), prompt=none cannot show it."""
    enrol_totp(client)
    _, challenge = pkce_pair()
    response = authorize(client, authorize_params(rp[0], challenge, prompt="none", acr_values=ACR_MFA))
    assert query_of(response.headers["Location"])["error"] == "login_required"
    assert _codes(app) == 0
