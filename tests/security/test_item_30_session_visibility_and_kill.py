"""Checklist 30: Session visibility and kill. The resident's "Where you are signed in" page must list
every live session of theirs (browser, address, last use; this one marked) and nobody else's, nor
ended or idle ones, without revealing any session id; "Sign out everywhere else" (CSRF-protected,
recent sign-in, covered by items 28 and 29) must end every other session, revoke the refresh and
access tokens departments received through those sessions while the tokens of this session keep
working (the documented policy), and be audited."""
from __future__ import annotations

from datetime import timedelta

from sqlalchemy import update

from idp.extensions import db
from idp.models import AuditEvent, UserSession
from idp.models.types import utcnow
from tests.support.mfa import post_form
from tests.support.oidc import exchange, get_code, login, make_client, make_user, pkce_pair

PHONE_UA = "Mozilla/5.0 (Linux; Android 14; Pixel 8) Mobile Safari/537.36"
LAPTOP_UA = "Mozilla/5.0 (X11; Linux x86_64) Firefox/133.0"


def _browser(app, agent: str, ip: str):
    http = app.test_client()
    http.environ_base.update(HTTP_USER_AGENT=agent, REMOTE_ADDR=ip)
    return http


def _tokens(http, client_id, secret) -> dict:
    verifier, challenge = pkce_pair()
    code = get_code(http, client_id, challenge)
    response = exchange(http, client_id, secret, code, verifier)
    assert response.status_code == 200, response.get_data(as_text=True)
    return response.get_json()


def _refresh(http, client_id, secret, refresh_token):
    return http.post("/token", data={"grant_type": "refresh_token", "refresh_token": refresh_token},
                     auth=(client_id, secret))


def test_item_30_the_list_shows_live_sessions_with_device_address_and_last_use_only(app):
    make_user(app)
    make_user(app, email="someone.else@example.org")
    laptop, phone, idle = (_browser(app, LAPTOP_UA, "198.51.100.7"), _browser(app, PHONE_UA, "203.0.113.9"),
                           _browser(app, "IdleBrowser/1.0", "192.0.2.44"))
    for http in (laptop, phone, idle):
        login(http)
    stranger = _browser(app, "StrangerBrowser/2.0", "192.0.2.99")
    login(stranger, email="someone.else@example.org")
    with app.app_context():
        db.session.execute(update(UserSession).where(UserSession.user_agent == "IdleBrowser/1.0")
                           .values(last_seen_at=utcnow() - timedelta(hours=2)))
        db.session.commit()
        sids = list(db.session.scalars(db.select(UserSession.sid)))
    page = laptop.get("/account/sessions")
    assert page.status_code == 200 and page.headers["Cache-Control"] == "no-store"
    html = page.get_data(as_text=True)
    assert PHONE_UA in html and "203.0.113.9" in html
    assert LAPTOP_UA in html and "198.51.100.7" in html and "this browser" in html
    assert "IdleBrowser" not in html and "192.0.2.44" not in html  # idle: no longer a session
    assert "StrangerBrowser" not in html and "192.0.2.99" not in html  # someone else's
    assert "Last used" in html
    for secret_id in sids + [laptop.get_cookie("idp_session").value, phone.get_cookie("idp_session").value]:
        assert secret_id not in html
    assert html.index(LAPTOP_UA) < html.index(PHONE_UA)  # this browser first


def test_item_30_signing_out_elsewhere_revokes_the_tokens_issued_there_only(app):
    client_id, secret = make_client(app, first_party=True)
    make_user(app)
    mine, other = _browser(app, LAPTOP_UA, "198.51.100.7"), _browser(app, PHONE_UA, "203.0.113.9")
    login(mine)
    login(other)
    mine_tokens, other_tokens = _tokens(mine, client_id, secret), _tokens(other, client_id, secret)
    ended = post_form(mine, "/account/sessions/end-others", token_from="/account/sessions")
    assert ended.status_code == 303
    assert other.get("/account/").status_code == 302
    # The department's tokens obtained through the ended session are dead ...
    assert _refresh(other, client_id, secret, other_tokens["refresh_token"]).get_json()["error"] == "invalid_grant"
    assert other.get("/userinfo", headers={"Authorization": "Bearer " + other_tokens["access_token"]}).status_code == 401
    introspected = other.post("/introspect", data={"token": other_tokens["access_token"]}, auth=(client_id, secret))
    assert introspected.get_json() == {"active": False}
    # ... and those of the session the resident kept still work.
    assert mine.get("/userinfo", headers={"Authorization": "Bearer " + mine_tokens["access_token"]}).status_code == 200
    assert _refresh(mine, client_id, secret, mine_tokens["refresh_token"]).status_code == 200
    with app.app_context():
        event = db.session.scalar(db.select(AuditEvent).where(AuditEvent.event == "session.others_ended"))
        assert (event.outcome, event.detail["sessions"], event.detail["tokens"]) == ("success", 1, 1)
        assert event.ip_address == "198.51.100.7"
        live = list(db.session.scalars(db.select(UserSession.user_agent).where(UserSession.ended_at.is_(None))))
    assert live == [LAPTOP_UA]
    assert LAPTOP_UA in mine.get("/account/sessions").get_data(as_text=True)
    assert PHONE_UA not in mine.get("/account/sessions").get_data(as_text=True)


def test_item_30_the_button_is_offered_only_when_there_is_somewhere_else(app):
    make_user(app)
    alone = app.test_client()
    login(alone)
    assert "/account/sessions/end-others" not in alone.get("/account/sessions").get_data(as_text=True)
    login(app.test_client())
    assert "/account/sessions/end-others" in alone.get("/account/sessions").get_data(as_text=True)
    assert "/account/sessions" in alone.get("/account/").get_data(as_text=True)  # reachable from My account
