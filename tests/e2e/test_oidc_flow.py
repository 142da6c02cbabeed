"""A department signs a resident in against a real ``idp serve`` with a standard OIDC client
(Authlib's OAuth2Session): discovery, code flow with PKCE and nonce, ID token validation,
userinfo, refresh rotation, revocation, introspection and RP-initiated logout."""
import json
import re
import secrets
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from authlib.integrations.requests_client import OAuth2Session
from authlib.oidc.core import CodeIDToken
from joserfc import jwt
from joserfc.jwk import KeySet

REDIRECT = "https://billing.example.gov.za/cb"
LOGOUT_TO = "https://billing.example.gov.za/signed-out"
EMAIL, PASSWORD = "e2e.resident@example.org", "e2e resident passphrase long"

pytestmark = pytest.mark.e2e


def _csrf(html: str) -> str:
    return re.search(r'name="csrf_token"[^>]*value="([^"]+)"', html).group(1)


@pytest.fixture
def department(idp_server):
    idp_server.cli("users", "create", "--email", EMAIL, "--password", PASSWORD, "--name", "E2E Resident", "--verified-email")
    result = idp_server.cli("clients", "create", "--name", "Billing", "--redirect-uri", REDIRECT,
                            "--post-logout-redirect-uri", LOGOUT_TO, "--scope", "openid profile email offline_access",
                            "--grant-type", "authorization_code", "--grant-type", "refresh_token", "--json")
    registered = json.loads(result.stdout)
    metadata = requests.get(idp_server.url + "/.well-known/openid-configuration", timeout=10).json()
    return registered, metadata


def _browser_signs_in(idp_server, authorization_url: str) -> requests.Session:
    """The resident's browser: follow to the login form, sign in, consent; return at the redirect."""
    browser = requests.Session()
    response = browser.get(authorization_url, allow_redirects=True, timeout=10)
    assert "/login" in response.url
    response = browser.post(response.url, data={"email": EMAIL, "password": PASSWORD,
                                                "next": parse_qs(urlsplit(response.url).query)["next"][0],
                                                "csrf_token": _csrf(response.text)}, allow_redirects=False, timeout=10)
    response = browser.get(idp_server.url + response.headers["Location"], allow_redirects=False, timeout=10)
    if response.status_code == 200:  # consent
        action = re.search(r'action="(/authorize[^"]*)"', response.text).group(1).replace("&amp;", "&")
        response = browser.post(idp_server.url + action, data={"decision": "allow", "csrf_token": _csrf(response.text)},
                                allow_redirects=False, timeout=10)
    browser.final_location = response.headers["Location"]
    return browser


def _start(registered, metadata, **kwargs):
    session = OAuth2Session(registered["client_id"], registered["client_secret"], scope="openid profile email offline_access",
                            redirect_uri=REDIRECT, code_challenge_method="S256", **kwargs)
    verifier = secrets.token_urlsafe(48)
    nonce = secrets.token_urlsafe(16)
    url, state = session.create_authorization_url(metadata["authorization_endpoint"], code_verifier=verifier, nonce=nonce)
    return session, verifier, nonce, url, state


def test_department_signs_a_resident_in_end_to_end(idp_server, department):
    registered, metadata = department
    assert metadata["issuer"] == idp_server.url
    session, verifier, nonce, url, state = _start(registered, metadata)
    browser = _browser_signs_in(idp_server, url)
    query = parse_qs(urlsplit(browser.final_location).query)
    assert query["state"] == [state] and query["iss"] == [metadata["issuer"]]

    token = session.fetch_token(metadata["token_endpoint"], authorization_response=browser.final_location,
                                code_verifier=verifier)
    jwks = KeySet.import_key_set(requests.get(metadata["jwks_uri"], timeout=10).json())
    decoded = jwt.decode(token["id_token"], jwks, algorithms=metadata["id_token_signing_alg_values_supported"])
    claims = CodeIDToken(decoded.claims, decoded.header,
                         {"iss": {"value": metadata["issuer"]}, "aud": {"value": registered["client_id"]}},
                         {"nonce": nonce, "client_id": registered["client_id"],
                          "access_token": token["access_token"]})
    claims.validate()
    assert claims["email"] == EMAIL and claims["amr"] == ["pwd"] and claims["sid"]

    info = session.get(metadata["userinfo_endpoint"], timeout=10).json()
    assert info["sub"] == claims["sub"] and info["name"] == "E2E Resident"

    refreshed = session.refresh_token(metadata["token_endpoint"], refresh_token=token["refresh_token"])
    assert refreshed["refresh_token"] != token["refresh_token"]
    reuse = requests.post(metadata["token_endpoint"], data={"grant_type": "refresh_token", "refresh_token": token["refresh_token"]},
                          auth=(registered["client_id"], registered["client_secret"]), timeout=10)
    assert reuse.json()["error"] == "invalid_grant"
    introspected = requests.post(metadata["introspection_endpoint"], data={"token": refreshed["access_token"]},
                                 auth=(registered["client_id"], registered["client_secret"]), timeout=10).json()
    assert introspected == {"active": False}  # reuse detection revoked the whole family

    session2, verifier2, _, url2, _ = _start(registered, metadata)
    browser2 = _browser_signs_in(idp_server, url2)
    token2 = session2.fetch_token(metadata["token_endpoint"], authorization_response=browser2.final_location,
                                  code_verifier=verifier2)
    session2.revoke_token(metadata["revocation_endpoint"], token2["access_token"])
    assert session2.get(metadata["userinfo_endpoint"], timeout=10).status_code == 401

    logout = browser2.get(metadata["end_session_endpoint"], params={
        "id_token_hint": token2["id_token"], "post_logout_redirect_uri": LOGOUT_TO, "state": "bye"},
        allow_redirects=False, timeout=10)
    assert logout.headers["Location"] == LOGOUT_TO + "?state=bye"
    assert "/login" in browser2.get(idp_server.url + "/account/", timeout=10).url


def test_parallel_redemptions_of_one_code_yield_exactly_one_token(idp_server, department):
    registered, metadata = department
    session, verifier, _, url, _ = _start(registered, metadata)
    browser = _browser_signs_in(idp_server, url)
    code = parse_qs(urlsplit(browser.final_location).query)["code"][0]

    def redeem(_):
        return requests.post(metadata["token_endpoint"], data={
            "grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT, "code_verifier": verifier},
            auth=(registered["client_id"], registered["client_secret"]), timeout=30).status_code

    with ThreadPoolExecutor(max_workers=20) as pool:
        statuses = list(pool.map(redeem, range(20)))
    assert statuses.count(200) == 1 and statuses.count(400) == 19
