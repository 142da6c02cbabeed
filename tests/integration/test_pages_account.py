"""The account pages: sign-in required, name, email change, password change, connected services."""
from __future__ import annotations

from idp.extensions import db
from idp.models import AuditEvent, Client, Consent, Token, User, UserSession
from idp.services import grants
from tests.conftest import csrf_token, page_without_tokens
from tests.integration.test_signin_flows import PASSWORD, login, make_user, path_of
from tests.integration.test_signin_reset import add_token
from tests.support.links import open_link
from tests.support.smtp import body_of, first_link

NEW_PASSWORD = "purple elephants dance at dawn"


def signed_in_client(app, **kwargs):
    client = app.test_client()
    user_id = make_user(app, **kwargs)
    assert login(client).status_code == 303
    return client, user_id


def token_of(client, path):
    page = client.get(path)
    assert page.status_code == 200, path
    return csrf_token(page.get_data(as_text=True))


def test_account_pages_need_a_session(client):
    for path in ("/account/", "/account/name", "/account/email", "/account/password", "/account/services"):
        response = client.get(path)
        assert response.status_code == 302
        assert response.headers["Location"] == "/login?next=" + path


def test_profile_is_no_store_and_shows_details(app):
    client, _ = signed_in_client(app)
    page = client.get("/account/")
    assert page.headers["Cache-Control"] == "no-store"
    html = page.get_data(as_text=True)
    assert "Amara Dlamini" in html and "amara@example.org" in html and "confirmed" in html


def test_edit_name_and_csrf(app):
    client, user_id = signed_in_client(app)
    assert client.post("/account/name", data={"name": "Nobody"}).status_code == 403
    with app.app_context():
        assert db.session.get(User, user_id).name == "Amara Dlamini"
    token = token_of(client, "/account/name")
    assert client.post("/account/name", data={"csrf_token": token, "name": ""}).status_code == 400
    response = client.post("/account/name", data={"csrf_token": token, "name": "Amara  N. Dlamini"})
    assert response.status_code == 303
    with app.app_context():
        assert db.session.get(User, user_id).name == "Amara N. Dlamini"


def test_change_password_needs_current_and_ends_other_sessions(app, smtp_server):
    client, user_id = signed_in_client(app)
    other = app.test_client()
    assert login(other).status_code == 303
    token_id = add_token(app, user_id)
    token = token_of(client, "/account/password")
    wrong = client.post("/account/password", data={"csrf_token": token, "current_password": "not my password",
                                                   "password": NEW_PASSWORD, "confirm": NEW_PASSWORD})
    assert wrong.status_code == 400 and "current password is not right" in wrong.get_data(as_text=True)
    with app.app_context():
        from idp.services import throttle

        assert throttle.failures("login-account", "amara@example.org") == 1  # same limiter as sign-in
    weak = client.post("/account/password", data={"csrf_token": token, "current_password": PASSWORD,
                                                  "password": "short", "confirm": "short"})
    assert weak.status_code == 400
    done = client.post("/account/password", data={"csrf_token": token, "current_password": PASSWORD,
                                                  "password": NEW_PASSWORD, "confirm": NEW_PASSWORD})
    assert done.status_code == 303
    assert client.get("/account/").status_code == 200  # this session stays
    assert other.get("/account/").status_code == 302  # the other one ended
    with app.app_context():
        assert db.session.get(Token, token_id).revoked_at is not None
        live = db.session.scalars(db.select(UserSession).where(UserSession.ended_at.is_(None))).all()
        assert len(live) == 1
    smtp_server.wait_for("amara@example.org", subject_contains="was changed")
    fresh = app.test_client()
    assert login(fresh, password=NEW_PASSWORD).status_code == 303


def test_change_password_current_password_is_throttled(app):
    client, _ = signed_in_client(app)
    limit = app.config["IDP_SETTINGS"].login_max_failures
    token = token_of(client, "/account/password")
    statuses = [client.post("/account/password", data={"csrf_token": token, "current_password": f"wrong {i} guess",
                                                        "password": NEW_PASSWORD, "confirm": NEW_PASSWORD}).status_code
                for i in range(limit)]
    assert statuses[-1] == 429
    refused = client.post("/account/password", data={"csrf_token": token, "current_password": PASSWORD,
                                                      "password": NEW_PASSWORD, "confirm": NEW_PASSWORD})
    assert refused.status_code == 429


def test_change_email_takes_effect_only_after_verifying_new_address(app, smtp_server):
    client, user_id = signed_in_client(app)
    token = token_of(client, "/account/email")
    wrong = client.post("/account/email", data={"csrf_token": token, "new_email": "amara.new@example.org",
                                                "current_password": "not my password"})
    assert wrong.status_code == 400
    assert smtp_server.messages == []
    response = client.post("/account/email", data={"csrf_token": token, "new_email": "amara.new@example.org",
                                                   "current_password": PASSWORD})
    assert response.status_code == 200
    notice = smtp_server.wait_for("amara@example.org", subject_contains="change of your email")
    assert "amara.new@example.org" in body_of(notice)
    link = first_link(smtp_server.wait_for("amara.new@example.org", subject_contains="Confirm your new"))
    with app.app_context():
        assert db.session.get(User, user_id).email == "amara@example.org"  # not yet
    page = open_link(client, link)
    assert page.status_code == 200
    done = client.post(page.request.path, data={"csrf_token": csrf_token(page.get_data(as_text=True))})
    assert done.status_code == 303
    with app.app_context():
        user = db.session.get(User, user_id)
        assert user.email == "amara.new@example.org" and user.email_verified
    assert client.get(path_of(link)).status_code == 400  # single use


def test_change_email_to_taken_address_answers_alike(app, smtp_server):
    make_user(app, email="taken@example.org")
    client, user_id = signed_in_client(app)
    token = token_of(client, "/account/email")
    taken = client.post("/account/email", data={"csrf_token": token, "new_email": "taken@example.org",
                                                "current_password": PASSWORD})
    free = client.post("/account/email", data={"csrf_token": token, "new_email": "free@example.org",
                                               "current_password": PASSWORD})
    assert taken.status_code == free.status_code == 200
    assert page_without_tokens(taken).replace("taken@", "X@") == page_without_tokens(free).replace("free@", "X@")
    assert "Confirm" not in str(smtp_server.wait_for("taken@example.org")["Subject"])
    with app.app_context():
        assert db.session.get(User, user_id).email == "amara@example.org"


def _add_client(app, client_id="billing", name="Billing"):
    with app.app_context():
        db.session.add(Client(client_id=client_id, name=name, redirect_uris=["https://billing.example/cb"]))
        db.session.commit()


def test_connected_services_revoke(app):
    client, user_id = signed_in_client(app)
    _add_client(app)
    _add_client(app, "permits", "Permits")
    with app.app_context():
        db.session.add(Consent(user_id=user_id, client_id="billing", scope="openid email"))
        db.session.add(Consent(user_id=user_id, client_id="permits", scope="openid profile"))
        db.session.commit()
    billing_token = add_token(app, user_id, "billing")
    permits_token = add_token(app, user_id, "permits")
    page = client.get("/account/services")
    html = page.get_data(as_text=True)
    assert "Billing" in html and "Permits" in html and "openid email" in html
    assert client.post("/account/services/revoke", data={"client_id": "billing"}).status_code == 403
    with app.app_context():
        assert db.session.get(Token, billing_token).revoked_at is None
    response = client.post("/account/services/revoke", data={"csrf_token": csrf_token(html), "client_id": "billing"})
    assert response.status_code == 303
    with app.app_context():
        assert db.session.get(Token, billing_token).revoked_at is not None
        assert db.session.get(Token, permits_token).revoked_at is None
        assert db.session.scalar(db.select(Consent).where(Consent.client_id == "billing")) is None
        assert db.session.scalar(db.select(Consent).where(Consent.client_id == "permits")) is not None
        assert db.session.scalar(db.select(AuditEvent).where(AuditEvent.event == "grant.revoked")).client_id == "billing"
    after = client.get("/account/services").get_data(as_text=True)
    assert "can no longer use your account" in after
    assert "<h2>Billing</h2>" not in after and "<h2>Permits</h2>" in after
    # Another resident's client (no grant for this resident) is not found.
    assert client.post("/account/services/revoke", data={"csrf_token": csrf_token(html),
                                                         "client_id": "unknown"}).status_code == 404


def test_grants_revoke_all_for_user(app):
    user_id = make_user(app)
    other_id = make_user(app, email="other@example.org")
    mine = [add_token(app, user_id, "billing"), add_token(app, user_id, "permits")]
    theirs = add_token(app, other_id, "complaints")
    with app.app_context():
        assert grants.revoke_all_for_user(user_id) == 2
        assert all(db.session.get(Token, t).revoked_at is not None for t in mine)
        assert db.session.get(Token, theirs).revoked_at is None


def test_home_page_links(app, client):
    html = client.get("/").get_data(as_text=True)
    assert 'href="/login"' in html and 'href="/register"' in html
    make_user(app)
    login(client)
    assert 'href="/account/"' in client.get("/").get_data(as_text=True)
