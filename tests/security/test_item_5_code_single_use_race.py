"""Checklist 5: authorization code single use and revocation on replay, against a real `idp serve`.
Twenty parallel redemptions of one code (some by the right client, some by another client holding the
stolen code) yield exactly one token response and one token row; because the other redemptions were
replays, the winner's access and refresh tokens end up revoked (introspection inactive, userinfo 401,
refresh invalid_grant) whatever the interleaving; a late replay after a successful redemption does the
same, and every replay is audited."""
from __future__ import annotations

import base64
import hashlib
import re
import secrets
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from sqlalchemy import create_engine, text

from idp import create_app
from idp.config import load_settings
from idp.extensions import db
from idp.services import accounts
from idp.services import clients as client_service
from tests.support.server import IdpServer

pytestmark = pytest.mark.e2e

EMAIL, PASSWORD = "item5.resident@example.org", "item five resident passphrase"
REDIRECT = "https://billing.example.gov.za/cb"
CSRF = re.compile(r'name="csrf_token"[^>]*value="([^"]+)"')


def _seed(server: IdpServer) -> tuple[dict, dict]:
    """The resident and two first-party clients, written straight into the server's database (faster
    than three CLI processes)."""
    app = create_app(load_settings({k: v for k, v in server.env.items() if k.startswith("IDP_")}))
    with app.app_context():
        accounts.create_user(EMAIL, PASSWORD, email_verified=True)
        made = []
        for name in ("Billing", "Permits"):
            client, secret = client_service.create_client(name, [REDIRECT], scope="openid profile offline_access",
                                                          first_party=True)
            made.append({"client_id": client.client_id, "client_secret": secret})
        db.engine.dispose()
    return made[0], made[1]


@pytest.fixture(scope="module")
def deployment(tmp_path_factory, smtp_server):
    server = IdpServer(tmp_path_factory.mktemp("item5"), smtp_port=smtp_server.port).start()
    try:
        billing, permits = _seed(server)
        browser = requests.Session()
        page = browser.get(server.url + "/login", timeout=10)
        signed_in = browser.post(server.url + "/login", data={"email": EMAIL, "password": PASSWORD, "next": "/account/",
                                                              "csrf_token": CSRF.search(page.text).group(1)},
                                 allow_redirects=False, timeout=10)
        assert signed_in.status_code == 303
        engine = create_engine(server.database_url)
        yield server, browser, billing, permits, engine
        engine.dispose()
    finally:
        server.stop()


def _code(server, browser, client) -> tuple[str, str]:
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    response = browser.get(server.url + "/authorize", params={
        "response_type": "code", "client_id": client["client_id"], "redirect_uri": REDIRECT, "scope": "openid offline_access",
        "state": "s", "code_challenge": challenge, "code_challenge_method": "S256"}, allow_redirects=False, timeout=10)
    assert response.status_code == 302, response.text[:300]
    return parse_qs(urlsplit(response.headers["Location"]).query)["code"][0], verifier


def _redeem(server, client, code, verifier):
    return requests.post(server.url + "/token", data={"grant_type": "authorization_code", "code": code,
                                                      "redirect_uri": REDIRECT, "code_verifier": verifier},
                         auth=(client["client_id"], client["client_secret"]), timeout=30)


def _assert_revoked(server, client, tokens):
    userinfo = requests.get(server.url + "/userinfo", headers={"Authorization": "Bearer " + tokens["access_token"]},
                            timeout=10)
    assert userinfo.status_code == 401
    auth = (client["client_id"], client["client_secret"])
    for name in ("access_token", "refresh_token"):
        assert requests.post(server.url + "/introspect", data={"token": tokens[name]}, auth=auth,
                             timeout=10).json() == {"active": False}
    refreshed = requests.post(server.url + "/token", data={"grant_type": "refresh_token",
                                                           "refresh_token": tokens["refresh_token"]}, auth=auth, timeout=10)
    assert refreshed.status_code == 400 and refreshed.json()["error"] == "invalid_grant"


def _token_rows(engine, client) -> tuple[int, int]:
    with engine.connect() as conn:
        total = conn.execute(text("SELECT count(*) FROM tokens WHERE client_id = :c"), {"c": client["client_id"]}).scalar()
        live = conn.execute(text("SELECT count(*) FROM tokens WHERE client_id = :c AND revoked_at IS NULL"),
                            {"c": client["client_id"]}).scalar()
    return total, live


def test_item_5_parallel_redemptions_yield_one_token_and_the_replays_revoke_it(deployment):
    server, browser, billing, permits, engine = deployment
    for _ in range(2):  # two rounds: different interleavings
        code, verifier = _code(server, browser, billing)
        before = _token_rows(engine, billing)[0]
        # 14 by the client the code is for, 6 by another department that got hold of it
        callers = [billing] * 14 + [permits] * 6
        with ThreadPoolExecutor(max_workers=20) as pool:
            responses = list(pool.map(lambda c: _redeem(server, c, code, verifier), callers))
        winners = [r for r in responses if r.status_code == 200]
        assert len(winners) <= 1 and all(r.status_code == 400 for r in responses if r.status_code != 200)
        assert all(r.json()["error"] == "invalid_grant" for r in responses if r.status_code == 400)
        assert all(r.json().get("access_token") is None for r in responses if r.status_code != 200)
        assert len(winners) == 1 or all(r.status_code == 400 for r in responses)
        assert _token_rows(engine, billing)[0] - before == len(winners) == 1
        _assert_revoked(server, billing, winners[0].json())
        assert _token_rows(engine, billing)[1] == 0
        assert _token_rows(engine, permits)[0] == 0


def test_item_5_a_late_replay_revokes_what_the_first_redemption_issued_and_is_audited(deployment):
    server, browser, billing, permits, engine = deployment
    code, verifier = _code(server, browser, billing)
    first = _redeem(server, billing, code, verifier)
    assert first.status_code == 200
    with engine.connect() as conn:
        audited = conn.execute(text("SELECT count(*) FROM audit_events WHERE event = 'token.code_replayed'")).scalar()
    replay = _redeem(server, billing, code, verifier)
    assert replay.status_code == 400 and replay.json()["error"] == "invalid_grant" and "access_token" not in replay.json()
    _assert_revoked(server, billing, first.json())
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM audit_events WHERE event = 'token.code_replayed'")).scalar() \
            == audited + 1
