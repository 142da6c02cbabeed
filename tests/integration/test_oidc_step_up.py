"""Authentication strength for departments: acr values in discovery, step-up when a client asks for
more than the session has (acr_values or an essential acr claim), an enrolment prompt when the
resident has no such factor, and ID tokens whose acr and amr tell the truth."""
from __future__ import annotations

import json
from urllib.parse import urlencode

import pytest
from joserfc import jwt
from joserfc.jwk import KeySet

from idp.oidc.acr import ACR_MFA, ACR_PASSWORD, ACR_PHISHING_RESISTANT
from tests.conftest import csrf_token
from tests.support.mfa import enrol_totp, form_token, totp_now
from tests.support.oidc import authorize, authorize_params, exchange, get_code, login, make_client, make_user, pkce_pair


@pytest.fixture
def rp(app):
    make_user(app)
    return make_client(app)


def id_token_claims(client, tokens):
    jwks = client.get("/jwks.json").get_json()
    return jwt.decode(tokens["id_token"], KeySet.import_key_set(jwks), algorithms=["RS256", "ES256"]).claims


def test_discovery_publishes_the_three_acr_values(client):
    document = client.get("/.well-known/openid-configuration").get_json()
    assert document["acr_values_supported"] == [ACR_PASSWORD, ACR_MFA, ACR_PHISHING_RESISTANT]
    assert document["claims_parameter_supported"] is True
    assert {"phone_number", "phone_number_verified", "acr", "amr"} <= set(document["claims_supported"])


def test_password_session_gets_password_acr(app, client, rp):
    login(client)
    verifier, challenge = pkce_pair()
    code = get_code(client, rp[0], challenge)
    claims = id_token_claims(client, exchange(client, *rp, code, verifier).get_json())
    assert claims["acr"] == ACR_PASSWORD and claims["amr"] == ["pwd"]


def _step_up_with_totp(client, secret, location):
    assert location.startswith("/login/step-up?")
    to_chooser = client.get(location)
    assert to_chooser.status_code == 303 and to_chooser.headers["Location"] == "/login/second-factor"
    done = client.post("/login/second-factor/app", data={"csrf_token": form_token(client, "/login/second-factor/app"),
                                                         "code": totp_now(secret, 1)})
    assert done.status_code == 303 and done.headers["Location"].startswith("/authorize?")
    return done.headers["Location"]


@pytest.mark.parametrize("how", ["acr_values", "claims"])
def test_asking_for_mfa_steps_up_and_the_id_token_says_so(app, client, rp, how):
    login(client)
    secret, _ = enrol_totp(client)  # the live session is still password-only
    verifier, challenge = pkce_pair()
    extra = ({"acr_values": ACR_MFA} if how == "acr_values"
             else {"claims": json.dumps({"id_token": {"acr": {"essential": True, "values": [ACR_MFA]}}})})
    params = authorize_params(rp[0], challenge, **extra)
    first = authorize(client, params)
    assert first.status_code == 302
    back = _step_up_with_totp(client, secret, first.headers["Location"])
    code = get_code(client, rp[0], challenge, **extra)
    assert back.startswith("/authorize?")
    claims = id_token_claims(client, exchange(client, *rp, code, verifier).get_json())
    assert claims["acr"] == ACR_MFA and set(claims["amr"]) == {"pwd", "otp", "mfa"}


def test_prompt_none_with_too_weak_a_session_is_login_required(app, client, rp):
    login(client)
    _, challenge = pkce_pair()
    response = authorize(client, authorize_params(rp[0], challenge, acr_values=ACR_MFA, prompt="none"))
    location = response.headers["Location"]
    assert "error=login_required" in location and "state=st-123" in location


def test_a_resident_without_a_factor_is_asked_to_add_one(app, client, rp):
    login(client)
    _, challenge = pkce_pair()
    first = authorize(client, authorize_params(rp[0], challenge, acr_values=ACR_MFA))
    page = client.get(first.headers["Location"])
    assert page.status_code == 200 and "needs a second sign-in method" in page.get_data(as_text=True)


def test_phishing_resistant_needs_a_passkey_even_with_an_app(app, client, rp):
    login(client)
    enrol_totp(client)
    _, challenge = pkce_pair()
    first = authorize(client, authorize_params(rp[0], challenge, acr_values=ACR_PHISHING_RESISTANT))
    page = client.get(first.headers["Location"])
    assert page.status_code == 200 and "accepts only a passkey" in page.get_data(as_text=True)


def test_unknown_acr_values_are_ignored_and_bad_claims_refused(app, client, rp):
    login(client)
    _, challenge = pkce_pair()
    ok = authorize(client, authorize_params(rp[0], challenge, acr_values="urn:other:loa:9"))
    assert ok.status_code == 200 and "Do not allow" in ok.get_data(as_text=True)  # consent, no step-up
    bad = authorize(client, authorize_params(rp[0], challenge, claims="{not json"))
    assert "error=invalid_request" in bad.headers["Location"]


def test_max_age_reauthentication_keeps_mfa(app, client, rp):
    login(client)
    secret, _ = enrol_totp(client)
    verifier, challenge = pkce_pair()
    params = authorize_params(rp[0], challenge, max_age="0")
    first = authorize(client, params)
    assert first.headers["Location"].startswith("/login?next=")
    page = client.get(first.headers["Location"])
    answer = client.post("/login", data={"csrf_token": form_token(client, first.headers["Location"]),
                                         "email": "resident@example.org", "password": "a long enough resident passphrase",
                                         "next": "/authorize?" + urlencode(params)})
    assert page.status_code == 200 and answer.headers["Location"] == "/login/second-factor"
    done = client.post("/login/second-factor/app", data={"csrf_token": form_token(client, "/login/second-factor/app"),
                                                         "code": totp_now(secret, 1)})
    assert done.headers["Location"].startswith("/authorize?")
    response = client.get(done.headers["Location"])
    if response.status_code == 200:  # consent
        response = client.post(done.headers["Location"], data={"decision": "allow",
                                                                "csrf_token": csrf_token(response.get_data(as_text=True))})
    code = response.headers["Location"].split("code=")[1].split("&")[0]
    claims = id_token_claims(client, exchange(client, *rp, code, verifier).get_json())
    assert claims["acr"] == ACR_MFA and "otp" in claims["amr"]
