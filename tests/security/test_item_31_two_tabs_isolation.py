"""Checklist 31: Session per login transaction isolation. One browser (one IdP session) runs two
authorization requests in two tabs for two departments, interleaved at every step (sign-in
started in both, sign-in finished in the second, consent pages open in both and approved in the
opposite order): each tab must end at its own client's registered redirect URI with its own
``state`` and a code only its own client can redeem (with its own PKCE verifier); approving one
department's consent must never grant or complete the other's."""
from __future__ import annotations

from urllib.parse import urlencode, urlsplit

from idp.extensions import db
from idp.models import Consent
from tests.conftest import csrf_token
from tests.support.oidc import PASSWORD, authorize_params, make_client, make_user, pkce_pair, query_of

BILLING_CB = "https://billing.example.gov.za/cb"
PERMITS_CB = "https://permits.example.gov.za/callback"


def _params(client_id, redirect_uri, challenge, state):
    return authorize_params(client_id, challenge, redirect_uri=redirect_uri, state=state, nonce="n-" + state,
                            scope="openid profile")


def _redeem(http, client_id, secret, code, verifier, redirect_uri):
    return http.post("/token", data={"grant_type": "authorization_code", "code": code, "redirect_uri": redirect_uri,
                                     "code_verifier": verifier}, auth=(client_id, secret))


def test_item_31_two_tabs_two_departments_each_finish_at_their_own_client(app):
    billing, billing_secret = make_client(app, name="Billing", redirect_uris=[BILLING_CB])
    permits, permits_secret = make_client(app, name="Permits", redirect_uris=[PERMITS_CB])
    make_user(app)
    browser = app.test_client()
    (v1, c1), (v2, c2) = pkce_pair(), pkce_pair()
    tab1 = "/authorize?" + urlencode(_params(billing, BILLING_CB, c1, "tab-one-state"))
    tab2 = "/authorize?" + urlencode(_params(permits, PERMITS_CB, c2, "tab-two-state"))

    # Both tabs are sent to sign in; the second tab's sign-in is finished first.
    to_login_1, to_login_2 = browser.get(tab1), browser.get(tab2)
    assert to_login_1.status_code == to_login_2.status_code == 302
    login_page_2 = browser.get(to_login_2.headers["Location"]).get_data(as_text=True)
    next_2 = query_of(to_login_2.headers["Location"])["next"]
    signed_in = browser.post("/login", data={"csrf_token": csrf_token(login_page_2), "email": "resident@example.org",
                                             "password": PASSWORD, "next": next_2})
    assert signed_in.status_code == 303 and signed_in.headers["Location"] == next_2

    # Both consent pages are open now; each form posts back its own request.
    consent_1, consent_2 = browser.get(tab1), browser.get(signed_in.headers["Location"])
    assert consent_1.status_code == consent_2.status_code == 200
    assert "Billing" in consent_1.get_data(as_text=True) and "Permits" in consent_2.get_data(as_text=True)
    # Tab 1 (billing) is approved first, then tab 2 (permits).
    done_1 = browser.post(tab1, data={"decision": "allow", "csrf_token": csrf_token(consent_1.get_data(as_text=True))})
    with app.app_context():
        assert [c.client_id for c in db.session.scalars(db.select(Consent))] == [billing]
    done_2 = browser.post(tab2, data={"decision": "allow", "csrf_token": csrf_token(consent_2.get_data(as_text=True))})
    assert done_1.status_code == done_2.status_code == 302
    back_1, back_2 = done_1.headers["Location"], done_2.headers["Location"]
    assert back_1.startswith(BILLING_CB + "?") and back_2.startswith(PERMITS_CB + "?")
    q1, q2 = query_of(back_1), query_of(back_2)
    assert q1["state"] == "tab-one-state" and q2["state"] == "tab-two-state"
    assert q1["code"] != q2["code"]

    # Each code works only for its own client, redirect URI and verifier.
    assert _redeem(browser, permits, permits_secret, q1["code"], v1, PERMITS_CB).get_json()["error"] == "invalid_grant"
    assert _redeem(browser, billing, billing_secret, q2["code"], v2, BILLING_CB).get_json()["error"] == "invalid_grant"
    fresh_1, fresh_2 = pkce_pair(), pkce_pair()  # the crossed attempts above burned both codes ...
    code_1 = _code(browser, billing, BILLING_CB, fresh_1[1], "again-one")
    code_2 = _code(browser, permits, PERMITS_CB, fresh_2[1], "again-two")
    assert _redeem(browser, billing, billing_secret, code_2, fresh_2[0], BILLING_CB).status_code == 400
    ok_1 = _redeem(browser, billing, billing_secret, code_1, fresh_1[0], BILLING_CB)
    assert ok_1.status_code == 200 and ok_1.get_json()["scope"].split() == ["openid", "profile"]


def _code(browser, client_id, redirect_uri, challenge, state) -> str:
    """... so the final check runs on new ones (consent is remembered now: straight back)."""
    answer = browser.get("/authorize?" + urlencode(_params(client_id, redirect_uri, challenge, state)))
    assert answer.status_code == 302 and urlsplit(answer.headers["Location"]).netloc == urlsplit(redirect_uri).netloc
    assert query_of(answer.headers["Location"])["state"] == state
    return query_of(answer.headers["Location"])["code"]


def test_item_31_denying_one_tab_does_not_touch_the_other(app):
    billing, _ = make_client(app, name="Billing", redirect_uris=[BILLING_CB])
    permits, _ = make_client(app, name="Permits", redirect_uris=[PERMITS_CB])
    make_user(app)
    browser = app.test_client()
    page = browser.get("/login").get_data(as_text=True)
    browser.post("/login", data={"csrf_token": csrf_token(page), "email": "resident@example.org",
                                 "password": PASSWORD, "next": ""})
    tab1 = "/authorize?" + urlencode(_params(billing, BILLING_CB, pkce_pair()[1], "deny-me"))
    tab2 = "/authorize?" + urlencode(_params(permits, PERMITS_CB, pkce_pair()[1], "keep-me"))
    consent_1, consent_2 = browser.get(tab1), browser.get(tab2)
    denied = browser.post(tab1, data={"decision": "deny", "csrf_token": csrf_token(consent_1.get_data(as_text=True))})
    assert denied.headers["Location"].startswith(BILLING_CB + "?")
    assert query_of(denied.headers["Location"]) == {"error": "access_denied", "state": "deny-me", "iss": "http://localhost"}
    allowed = browser.post(tab2, data={"decision": "allow", "csrf_token": csrf_token(consent_2.get_data(as_text=True))})
    assert allowed.headers["Location"].startswith(PERMITS_CB + "?")
    assert query_of(allowed.headers["Location"])["state"] == "keep-me" and "code" in query_of(allowed.headers["Location"])
    with app.app_context():
        assert [c.client_id for c in db.session.scalars(db.select(Consent))] == [permits]
