"""Back-channel logout: when a session ends, each client that got tokens in it is POSTed a signed
logout token (to a real local HTTP server here), retried with backoff when it does not answer 200,
and visible to staff until delivered."""
from __future__ import annotations

import threading
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs

import pytest
from joserfc import jwt
from joserfc.jwk import KeySet
from sqlalchemy import update

from idp.extensions import db
from idp.models import LogoutNotice, User
from idp.models.types import utcnow
from idp.services import backchannel, delivery_worker
from tests.conftest import csrf_token
from tests.support.oidc import exchange, get_code, login, make_client, make_user, pkce_pair


class Receiver:
    """A department's back-channel logout endpoint: records POSTs, answers a chosen status."""

    def __init__(self):
        self.bodies: list[dict] = []
        self.status = 200
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_POST(self):
                length = int(self.headers.get("Content-Length", 0))
                receiver.bodies.append({k: v[0] for k, v in parse_qs(self.rfile.read(length).decode()).items()}
                                       | {"_type": self.headers.get("Content-Type", "")})
                self.send_response(receiver.status)
                self.send_header("Content-Length", "0")
                self.end_headers()

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/backchannel-logout"

    def stop(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver():
    r = Receiver()
    yield r
    r.stop()


def _signed_in_with_tokens(app, client, receiver, name="Billing"):
    client_id, secret = make_client(app, name=name, backchannel_logout_uri=receiver.url)
    make_user(app)
    login(client)
    verifier, challenge = pkce_pair()
    tokens = exchange(client, client_id, secret, get_code(client, client_id, challenge), verifier).get_json()
    return client_id, tokens


def test_signing_out_sends_a_signed_logout_token(app, client, receiver):
    client_id, tokens = _signed_in_with_tokens(app, client, receiver)
    id_claims = jwt.decode(tokens["id_token"], KeySet.import_key_set(client.get("/jwks.json").get_json())).claims
    page = client.get("/account/").get_data(as_text=True)
    client.post("/logout", data={"csrf_token": csrf_token(page)})
    delivery_worker.wait_idle(app)
    [body] = receiver.bodies
    assert body["_type"].startswith("application/x-www-form-urlencoded")
    token = jwt.decode(body["logout_token"], KeySet.import_key_set(client.get("/jwks.json").get_json()))
    claims = token.claims
    assert token.header["typ"] == "logout+jwt"
    assert claims["iss"] == "http://localhost" and claims["aud"] == client_id
    assert claims["sub"] == id_claims["sub"] and claims["sid"] == id_claims["sid"]
    assert claims["events"] == {"http://schemas.openid.net/event/backchannel-logout": {}}
    assert "nonce" not in claims and claims["jti"] and claims["exp"] > claims["iat"]
    with app.app_context():
        assert db.session.scalar(db.select(LogoutNotice)).delivered_at is not None


def test_clients_without_tokens_in_that_session_or_without_a_uri_are_not_told(app, client, receiver):
    make_client(app, name="Permits", backchannel_logout_uri=receiver.url)  # never used in this session
    other_id, other_secret = make_client(app, name="Complaints")  # no back-channel URI
    make_user(app)
    login(client)
    verifier, challenge = pkce_pair()
    exchange(client, other_id, other_secret, get_code(client, other_id, challenge), verifier)
    client.post("/logout", data={"csrf_token": csrf_token(client.get("/account/").get_data(as_text=True))})
    delivery_worker.wait_idle(app)
    assert receiver.bodies == []


def test_a_failing_client_is_retried_with_backoff_and_shown_to_staff(app, client, receiver):
    receiver.status = 500
    _signed_in_with_tokens(app, client, receiver)
    with app.app_context():  # a staff member ends every session of the resident
        from idp.services import sessions

        sessions.end_all_for_user(db.session.scalar(db.select(User.id)))
    delivery_worker.wait_idle(app)
    with app.app_context():
        notice = db.session.scalar(db.select(LogoutNotice))
        assert notice.attempts == 1 and notice.delivered_at is None and "HTTP 500" in notice.last_error
        assert notice.next_attempt_at > utcnow() + timedelta(seconds=5)
        assert [n.id for n in backchannel.problems()] == [notice.id] and backchannel.waiting() == 1
        receiver.status = 204
        db.session.execute(update(LogoutNotice).values(next_attempt_at=utcnow()))
        db.session.commit()
        assert backchannel.deliver_due() == (1, 0)
        assert db.session.scalar(db.select(LogoutNotice)).delivered_at is not None
    assert len(receiver.bodies) == 2


def test_staff_see_failing_notices(app, client, receiver):
    from tests.integration.test_admin import staff_client

    receiver.status = 503
    client_id, _ = _signed_in_with_tokens(app, client, receiver)
    client.post("/logout", data={"csrf_token": csrf_token(client.get("/account/").get_data(as_text=True))})
    delivery_worker.wait_idle(app)
    staff, _ = staff_client(app)
    page = staff.get("/admin/deliveries").get_data(as_text=True)
    assert client_id in page and "answered HTTP 503" in page


def test_disconnecting_one_service_signs_the_resident_out_of_that_department_only(app, client, receiver):
    other = Receiver()
    try:
        billing_id, _ = _signed_in_with_tokens(app, client, receiver, name="Billing")
        permits_id, permits_secret = make_client(app, name="Permits", backchannel_logout_uri=other.url)
        verifier, challenge = pkce_pair()
        exchange(client, permits_id, permits_secret, get_code(client, permits_id, challenge), verifier)
        page = client.get("/account/services").get_data(as_text=True)
        client.post("/account/services/revoke", data={"csrf_token": csrf_token(page), "client_id": billing_id})
        delivery_worker.wait_idle(app)
        assert len(receiver.bodies) == 1 and other.bodies == []
        assert client.get("/account/").status_code == 200  # the IdP session itself goes on
    finally:
        other.stop()


def test_erasing_a_resident_still_tells_the_departments(app, client, receiver):
    from idp.services import accounts, privacy

    _signed_in_with_tokens(app, client, receiver)
    with app.app_context():
        staff = accounts.create_user("dpo@capetown.gov.za", "a long enough staff passphrase", name="DPO")
        resident = db.session.scalar(db.select(User).where(User.email != "dpo@capetown.gov.za"))
        privacy.erase(staff, resident, "POPIA erasure request 2026-117")
    delivery_worker.wait_idle(app)
    assert len(receiver.bodies) == 1
