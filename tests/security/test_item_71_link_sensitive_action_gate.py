"""Checklist 71: the link/unlink sensitive-action gate. Linking, unlinking and removing another
holder need a recent sign-in (10 minutes) and, for a resident with a second factor, a multi-factor
session; each needs the session's own CSRF token in the POST body (none, another session's, or one
sent only in a GET changes nothing); each link and unlink is mailed to the resident (the account
number masked to its last four digits)."""
from __future__ import annotations

from datetime import timedelta

from sqlalchemy import update

from idp.extensions import db
from idp.models import AccountLink, UserSession
from idp.models.types import utcnow
from idp.oidc.acr import ACR_PASSWORD
from tests.conftest import csrf_token
from tests.integration.test_pages_account import signed_in_client
from tests.integration.test_signin_flows import login, make_user
from tests.support.mfa import enrol_totp, post_form
from tests.support.register import add_account, with_check_digit
from tests.support.smtp import body_of

ACCOUNT = with_check_digit("710000003")
FORM = {"account_number": ACCOUNT, "proof_kind": "linking_pin", "proof": "4821", "role": "owner"}


def _links(app, user_id=None):
    with app.app_context():
        query = db.select(AccountLink.id)
        if user_id is not None:
            query = query.where(AccountLink.user_id == user_id)
        return list(db.session.scalars(query))


def _age_sign_in(app, user_id, minutes=11):
    with app.app_context():
        db.session.execute(update(UserSession).where(UserSession.user_id == user_id)
                           .values(auth_time=utcnow() - timedelta(minutes=minutes)))
        db.session.commit()


def test_item_71_link_unlink_and_remove_need_a_recent_sign_in(app):
    add_account(app, ACCOUNT)
    owner, owner_id = signed_in_client(app)
    make_user(app, email="tenant@example.org")
    tenant = app.test_client()
    login(tenant, email="tenant@example.org")
    assert post_form(owner, "/account/municipal/link", FORM).status_code == 303
    assert post_form(tenant, "/account/municipal/link", FORM | {"role": "tenant"}).status_code == 303
    owner_link, tenant_link = _links(app, owner_id)[0], [i for i in _links(app) if i not in _links(app, owner_id)][0]
    token = csrf_token(owner.get("/account/municipal/").get_data(as_text=True))
    _age_sign_in(app, owner_id)
    for path in (f"/account/municipal/{owner_link}/unlink", f"/account/municipal/{tenant_link}/remove"):
        response = owner.post(path, data={"csrf_token": token})
        assert response.status_code == 303, path
        assert response.headers["Location"] == "/login?next=/account/municipal/", response.headers["Location"]
    assert sorted(_links(app)) == sorted([owner_link, tenant_link])  # nothing removed
    assert owner.post("/account/municipal/link", data=FORM | {"csrf_token": token}).headers["Location"].startswith(
        "/login?next=/account/municipal/link")


def test_item_71_a_resident_with_a_second_factor_steps_up_before_linking(app):
    add_account(app, ACCOUNT)
    http, user_id = signed_in_client(app)
    enrol_totp(http)
    with app.app_context():  # a password-only session (e.g. a trusted browser) is not enough
        db.session.execute(update(UserSession).where(UserSession.user_id == user_id, UserSession.ended_at.is_(None))
                           .values(acr=ACR_PASSWORD, amr=["pwd"]))
        db.session.commit()
    token = csrf_token(http.get("/account/").get_data(as_text=True))
    response = http.post("/account/municipal/link", data=FORM | {"csrf_token": token})
    assert response.status_code == 303 and response.headers["Location"].startswith("/login/step-up?")
    assert _links(app) == []


def test_item_71_link_and_unlink_refuse_missing_foreign_and_get_only_csrf_tokens(app):
    add_account(app, ACCOUNT)
    http, user_id = signed_in_client(app)
    make_user(app, email="other@example.org")
    other = app.test_client()
    login(other, email="other@example.org")
    foreign = csrf_token(other.get("/account/municipal/link").get_data(as_text=True))
    assert http.post("/account/municipal/link", data=FORM).status_code == 403
    assert http.post("/account/municipal/link", data=FORM | {"csrf_token": foreign}).status_code == 403
    cross_site = http.post("/account/municipal/link", data="account_number=" + ACCOUNT + "&proof=4821",
                           content_type="text/plain", headers={"Origin": "https://evil.example.net"})
    assert cross_site.status_code == 403
    in_query = http.get("/account/municipal/link", query_string=FORM | {
        "csrf_token": csrf_token(http.get("/account/municipal/link").get_data(as_text=True))})
    assert in_query.status_code == 200  # a GET only shows the form
    assert _links(app) == []
    assert post_form(http, "/account/municipal/link", FORM).status_code == 303
    link_id = _links(app)[0]
    for token in (None, foreign):
        data = {"csrf_token": token} if token else {}
        assert http.post(f"/account/municipal/{link_id}/unlink", data=data).status_code == 403
    assert _links(app) == [link_id]


def test_item_71_linking_and_unlinking_are_mailed_to_the_resident(app, smtp_server):
    add_account(app, ACCOUNT)
    http, _ = signed_in_client(app)
    assert post_form(http, "/account/municipal/link", FORM).status_code == 303
    linked = smtp_server.wait_for("amara@example.org", subject_contains="was linked")
    text = body_of(linked)
    assert ACCOUNT[-4:] in text and ACCOUNT not in text  # masked
    assert "/not-me/" in text  # a "this wasn't me" path
    link_id = _links(app)[0]
    assert post_form(http, f"/account/municipal/{link_id}/unlink", token_from="/account/municipal/").status_code == 303
    unlinked = smtp_server.wait_for("amara@example.org", subject_contains="was unlinked")
    assert ACCOUNT[-4:] in body_of(unlinked) and ACCOUNT not in body_of(unlinked)
