"""Checklist 1: exact redirect URI match. Look-alike redirect URIs (userinfo tricks, other ports,
path-parameter and dot-segment tricks, IDN/punycode look-alikes, changed loopback URIs, stray
whitespace and encodings) sent to /authorize, signed in or not, by GET or by the consent POST: every
variant gets a 400 error page on the OP, no Location header, no code issued, the state not echoed,
and one authorize.rejected audit event."""
from urllib.parse import urlencode

import pytest

from idp.extensions import db
from idp.models import AuditEvent, AuthorizationCode, Consent
from tests.conftest import csrf_token
from tests.support.oidc import REDIRECT, authorize, authorize_params, login, make_client, make_user, pkce_pair

STATE = "state-item1-marker"
LOOPBACK = "http://127.0.0.1:8080/cb"
IDN_LOOKALIKE = "https://b\u0456lling.example.gov.za/cb"  # Cyrillic i

VARIANTS = [
    "https://a@b@evil.tld/cb",
    "https://billing.example.gov.za:444/cb",
    "https://billing.example.gov.za/cb/..;/admin",
    "https://billing.example.gov.za/..;/cb",
    "https://billing.example.gov.za/cb;x",
    "https://billing.example.gov.za/cb/%2e%2e/admin",
    "https://billing.example.gov.za/cb%2F..%2Fadmin",
    "https://billing.example.gov.za/cb/./",
    "https://billing.example.gov.za/%63b",
    "https://billing.example.gov.za/cb%00",
    "https://billing.example.gov.za/cb%0d%0aLocation:%20https://evil.tld",
    "https://billing.example.gov.za/cb%23f",
    "https://billing.example.gov.za./cb",
    "HTTPS://billing.example.gov.za/cb",
    "https:/billing.example.gov.za/cb",
    "https://billing.example.gov.za\\@evil.tld/cb",
    "//billing.example.gov.za/cb",
    " " + REDIRECT,
    REDIRECT + " ",
    REDIRECT + "\t",
    IDN_LOOKALIKE,
    "https://xn--blling-pvf.example.gov.za/cb",  # the same look-alike in punycode
    "https://billing.example.gov.za/cb?",
    "https://billing.example.gov.za/cb&x=1",
]
LOOPBACK_VARIANTS = [
    "http://127.0.0.1:8080/cb/other",
    "http://127.0.0.1:8080/cb?x=1",
    "http://127.0.0.1:8080/",
    "http://localhost:8080/cb",
    "http://[::1]:8080/cb",
    "https://127.0.0.1:8080/cb",
]


@pytest.fixture
def setup(app):
    client_id, _ = make_client(app, redirect_uris=[REDIRECT, LOOPBACK])
    make_user(app)
    return client_id


def _rejected_count(app) -> int:
    with app.app_context():
        return db.session.query(AuditEvent).filter_by(event="authorize.rejected", outcome="failure").count()


def _assert_rejected(app, response, uri, events_before):
    assert response.status_code == 400, uri
    assert "Location" not in response.headers, uri
    body = response.get_data(as_text=True)
    assert STATE not in body and "code=" not in body, uri
    with app.app_context():
        assert db.session.query(AuthorizationCode).count() == 0, uri
        assert db.session.query(Consent).count() == 0, uri
    assert _rejected_count(app) == events_before + 1, uri  # one event per rejected request


def test_item_1_redirect_uri_variants_are_error_pages_when_signed_in(app, client, setup):
    login(client)
    _, challenge = pkce_pair()
    for bad_uri in VARIANTS + LOOPBACK_VARIANTS:
        before = _rejected_count(app)
        response = authorize(client, authorize_params(setup, challenge, redirect_uri=bad_uri, state=STATE))
        _assert_rejected(app, response, bad_uri, before)


def test_item_1_redirect_uri_variants_are_error_pages_before_sign_in(app, client, setup):
    """Not sent to the sign-in page first: the error is shown before anyone signs in."""
    _, challenge = pkce_pair()
    for bad_uri in ["https://a@b@evil.tld/cb", "https://billing.example.gov.za:444/cb", "http://127.0.0.1:8080/cb?x=1",
                    IDN_LOOKALIKE, "https://billing.example.gov.za\\@evil.tld/cb"]:
        before = _rejected_count(app)
        response = authorize(client, authorize_params(setup, challenge, redirect_uri=bad_uri, state=STATE))
        _assert_rejected(app, response, bad_uri, before)


def test_item_1_consent_post_with_a_swapped_redirect_uri_issues_nothing(app, client, setup):
    """The consent page was shown for the registered URI; the attacker swaps it in the POST."""
    login(client)
    _, challenge = pkce_pair()
    page = authorize(client, authorize_params(setup, challenge, state=STATE))
    assert page.status_code == 200
    for bad_uri in ["https://a@b@evil.tld/cb", "http://127.0.0.1:8080/cb/other"]:
        before = _rejected_count(app)
        tampered = authorize_params(setup, challenge, redirect_uri=bad_uri, state=STATE)
        response = client.post("/authorize?" + urlencode(tampered),
                               data={"decision": "allow", "csrf_token": csrf_token(page.get_data(as_text=True))})
        _assert_rejected(app, response, bad_uri, before)


def test_item_1_exact_registered_loopback_and_https_uris_still_work(app, client, setup):
    """The control: the byte-for-byte registered URIs are accepted (so the rejections above are about the URI)."""
    login(client)
    _, challenge = pkce_pair()
    for uri in (REDIRECT, LOOPBACK):
        params = authorize_params(setup, challenge, redirect_uri=uri, state=STATE)
        response = authorize(client, params)
        if response.status_code == 200:  # the consent page, the first time
            response = client.post("/authorize?" + urlencode(params),
                                   data={"decision": "allow", "csrf_token": csrf_token(response.get_data(as_text=True))})
        assert response.status_code == 302 and response.headers["Location"].startswith(uri + "?code=")
