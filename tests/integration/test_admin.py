"""The staff console: who may enter (role, multi-factor session, idle timeout), what support and
administrators can do, that every action is audited with actor and reason, that no secret is shown,
and residents' data rights (export, deactivate, erase)."""
from __future__ import annotations

import csv
import io
import json

import pytest
from sqlalchemy import update

from idp.extensions import db
from idp.models import AccountLink, ApprovalRequest, AuditEvent, Client, LinkRequest, TotpCredential, User, UserSession
from idp.oidc.acr import ACR_PHISHING_RESISTANT
from idp.security import crypto
from idp.services import approvals
from idp.services import clients as client_service
from idp.web import admin as admin_views
from tests.conftest import csrf_token
from tests.integration.test_signin_flows import login, make_user
from tests.support.oidc import make_client
from tests.support.register import add_account, with_check_digit
from tests.support.smtp import body_of

ACCOUNT = with_check_digit("731942658")


def staff_client(app, email="clerk@capetown.gov.za", roles=("support",), mfa=True, host=None):
    """A signed-in staff member; with ``mfa`` their session counts as signed in with a security key
    (the console demands phishing-resistant MFA, IDP_STAFF_MFA). ``host``: the Host the browser uses."""
    user_id = make_user(app, email=email, name="Help Desk Clerk")
    with app.app_context():
        db.session.get(User, user_id).roles = list(roles)
        db.session.commit()
    http = on_host(app.test_client(), host) if host else app.test_client()
    login(http, email=email)
    if mfa:
        with app.app_context():
            db.session.execute(update(UserSession).where(UserSession.user_id == user_id)
                               .values(acr=ACR_PHISHING_RESISTANT, amr=["pwd", "hwk", "mfa"]))
            db.session.commit()
    return http, user_id


def on_host(http, host: str):
    """``http`` as a browser that addresses ``host`` (set ``http.host`` to move it elsewhere)."""
    plain_open = http.open
    http.host = host

    def open_on_host(*args, **kwargs):
        if args and isinstance(args[0], str):  # a path (redirects arrive as built requests)
            kwargs.setdefault("base_url", f"http://{http.host}")
        return plain_open(*args, **kwargs)

    http.open = open_on_host
    return http


def resident(app, email="amara@example.org", **kwargs):
    return make_user(app, email=email, **kwargs)


def act(http, path, reason="Resident called the help desk, ID checked", token_from="/admin/"):
    token = csrf_token(http.get(token_from).get_data(as_text=True))
    return http.post(path, data={"csrf_token": token, "reason": reason})


APPROVER = "approver@capetown.gov.za"


def ask_for_export(app, http, query=None, reason="Quarterly access review, ticket AR-7"):
    """An administrator asks for an audit CSV export; returns the request's id."""
    token = csrf_token(http.get("/admin/audit").get_data(as_text=True))
    asked = http.post("/admin/audit/exports", query_string=query or {}, data={"csrf_token": token, "reason": reason})
    assert asked.status_code == 303 and asked.headers["Location"] == "/admin/approvals"
    with app.app_context():
        return db.session.scalar(db.select(db.func.max(ApprovalRequest.id)))


def approve_as_second_admin(app, request_id):
    """A second administrator (created on first use) approves the request."""
    with app.app_context():
        approver = db.session.scalar(db.select(User).where(User.email == APPROVER))
        if approver is None:
            approver = db.session.get(User, make_user(app, email=APPROVER, name="Second Administrator"))
            approver.roles = ["administrator"]
            db.session.commit()
        approvals.approve(request_id, approver)


def export_audit(app, http, query=None):
    """Ask for an audit CSV export, have a second administrator approve it, and download it (read to the
    end: the body is streamed)."""
    request_id = ask_for_export(app, http, query)
    approve_as_second_admin(app, request_id)
    response = http.get(f"/admin/approvals/{request_id}/audit-events.csv")
    response.get_data()
    response.close()
    return response


def events(app, name):
    with app.app_context():
        return list(db.session.scalars(db.select(AuditEvent).where(AuditEvent.event == name)))


def test_residents_get_404_and_strangers_are_sent_to_sign_in(app):
    resident(app)
    http = app.test_client()
    assert http.get("/admin/").headers["Location"].startswith("/login?next=")
    login(http)
    for path in ("/admin/", "/admin/residents", "/admin/clients", "/admin/audit", "/admin/keys"):
        assert http.get(path).status_code == 404, path


def test_staff_need_a_multi_factor_session(app):
    http, _ = staff_client(app, mfa=False)
    response = http.get("/admin/residents")
    assert response.status_code == 302 and response.headers["Location"].startswith("/login/step-up?")


def test_support_cannot_touch_clients_roles_keys_audit_or_erasure(app):
    http, _ = staff_client(app)
    target = resident(app)
    assert http.get("/admin/").status_code == 200
    for path in ("/admin/clients", "/admin/clients/new", "/admin/keys", "/admin/audit",
                 "/admin/approvals/1/audit-events.csv"):
        assert http.get(path).status_code == 404, path
    assert act(http, f"/admin/residents/{target}/roles").status_code == 404
    assert act(http, f"/admin/residents/{target}/erase").status_code == 404
    assert act(http, "/admin/keys").status_code == 404


def test_an_idle_console_signs_the_staff_member_out(app, monkeypatch):
    http, _ = staff_client(app)
    assert http.get("/admin/").status_code == 200
    monkeypatch.setattr(admin_views, "IDLE_SECONDS", -1)
    response = http.get("/admin/residents")
    assert response.status_code == 302 and response.headers["Location"].startswith("/login")
    assert http.get("/account/").status_code == 302  # the session is over


def test_search_by_email_name_phone_and_account_number(app):
    http, _ = staff_client(app)
    target = resident(app)
    with app.app_context():
        db.session.get(User, target).phone_number = "+27821234567"
        db.session.commit()
    add_account(app, ACCOUNT)
    with app.app_context():
        from idp.models import MunicipalAccount
        account = db.session.scalar(db.select(MunicipalAccount))
        db.session.add(AccountLink(user_id=target, account_id=account.id, role="owner", verification="linking_pin"))
        db.session.commit()
    for query in ("amara@", "Dlamini", "082 123 4567", ACCOUNT):
        page = http.get("/admin/residents", query_string={"q": query}).get_data(as_text=True)
        assert "amara@example.org" in page, query
    assert "amara@" not in http.get("/admin/residents", query_string={"q": "nobody-here"}).get_data(as_text=True)


def test_the_resident_page_shows_state_but_never_a_secret(app):
    http, _ = staff_client(app)
    target = resident(app)
    with app.app_context():
        sealed = crypto.seal(b"JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP", "totp-secret")
        db.session.add(TotpCredential(user_id=target, secret_encrypted=sealed, confirmed_at=db.func.now()))
        user = db.session.get(User, target)
        password_hash = user.password_hash
        db.session.commit()
    page = http.get(f"/admin/residents/{target}").get_data(as_text=True)
    assert "totp" in page and "amara@example.org" in page
    for secret in ("JBSWY3DP", sealed, password_hash, "$argon2"):
        assert secret not in page
    assert events(app, "admin.resident_viewed")[0].actor_id is not None


def test_lock_needs_a_reason_is_audited_and_ends_sessions(app):
    http, staff_id = staff_client(app)
    target = resident(app)
    victim = app.test_client()
    login(victim)
    refused = act(http, f"/admin/residents/{target}/lock", reason="")
    assert refused.status_code == 303
    with app.app_context():
        assert db.session.get(User, target).status == "active"
    act(http, f"/admin/residents/{target}/lock")
    with app.app_context():
        assert db.session.get(User, target).status == "locked"
    assert victim.get("/account/").status_code == 302
    assert login(app.test_client()).status_code == 401
    [event] = events(app, "account.locked")
    assert event.actor_id == staff_id and event.user_id == target and "help desk" in event.detail["reason"]
    assert event.detail["changes"] == {"status": ["active", "locked"]}
    act(http, f"/admin/residents/{target}/unlock")
    assert login(app.test_client()).status_code == 303


def test_staff_cannot_act_on_their_own_account(app):
    http, staff_id = staff_client(app)
    act(http, f"/admin/residents/{staff_id}/lock")
    with app.app_context():
        assert db.session.get(User, staff_id).status == "active"
    assert events(app, "account.locked") == []
    assert "your own account" in http.get(f"/admin/residents/{staff_id}").get_data(as_text=True)


def test_sign_out_everywhere_and_reset_mfa(app, smtp_server):
    http, staff_id = staff_client(app)
    target = resident(app)
    victim = app.test_client()
    login(victim)
    act(http, f"/admin/residents/{target}/sign-out")
    assert victim.get("/account/").status_code == 302
    with app.app_context():
        db.session.add(TotpCredential(user_id=target, secret_encrypted=crypto.seal(b"X" * 32, "totp-secret"),
                                      confirmed_at=db.func.now()))
        db.session.commit()
    assert login(app.test_client()).headers["Location"] == "/login/second-factor"
    act(http, f"/admin/residents/{target}/reset-mfa", reason="Lost phone; identity checked at the walk-in centre")
    assert login(app.test_client()).headers["Location"] == "/account/"
    [event] = events(app, "mfa.reset")
    assert event.actor_id == staff_id and event.detail["removed"] == ["totp"]
    assert "help desk removed" in body_of(smtp_server.wait_for("amara@example.org", subject_contains="reset"))


def test_link_requests_are_reviewed_in_the_console(app, smtp_server):
    http, staff_id = staff_client(app)
    target = resident(app)
    add_account(app, ACCOUNT)
    with app.app_context():
        db.session.add(LinkRequest(user_id=target, account_number=ACCOUNT, role="tenant",
                                   document=b"%PDF-1.4 lease", document_type="application/pdf", document_name="x.pdf"))
        db.session.add(LinkRequest(user_id=target, account_number=ACCOUNT, role="owner",
                                   document=b"\xff\xd8\xff jpeg", document_type="image/jpeg", document_name="y.jpg"))
        db.session.commit()
        first, second = db.session.scalars(db.select(LinkRequest.id).order_by(LinkRequest.id)).all()
    page = http.get("/admin/link-requests").get_data(as_text=True)
    assert ACCOUNT in page and "amara@example.org" in page
    document = http.get(f"/admin/link-requests/{first}/document")
    assert document.data == b"%PDF-1.4 lease" and document.headers["Content-Type"] == "application/pdf"
    assert "attachment" in document.headers["Content-Disposition"] and "sandbox" in document.headers["Content-Security-Policy"]
    token = csrf_token(page)
    http.post(f"/admin/link-requests/{first}/approve", data={"csrf_token": token})
    http.post(f"/admin/link-requests/{second}/reject", data={"csrf_token": token, "reason": ""})
    with app.app_context():
        assert db.session.get(LinkRequest, second).status == "pending"  # a rejection needs a reason
    http.post(f"/admin/link-requests/{second}/reject", data={"csrf_token": token, "reason": "Not the owner's name"})
    with app.app_context():
        assert [l.role for l in db.session.scalars(db.select(AccountLink))] == ["tenant"]
        assert db.session.get(LinkRequest, second).status == "rejected"
    assert events(app, "account_link.created")[0].actor_id == staff_id


@pytest.fixture
def admin_http(app):
    return staff_client(app, email="admin@capetown.gov.za", roles=("administrator",))


def test_an_administrator_onboards_a_department_and_the_secret_is_shown_once(app, admin_http):
    http, admin_id = admin_http
    form = http.get("/admin/clients/new").get_data(as_text=True)
    bad = http.post("/admin/clients/new", data={"csrf_token": csrf_token(form), "name": "Permits",
                                                "redirect_uris": "http://permits.example.gov.za/cb", "scopes": ["openid"]})
    assert bad.status_code == 400 and "https" in bad.get_data(as_text=True)
    created = http.post("/admin/clients/new", data={
        "csrf_token": csrf_token(form), "name": "Permits", "redirect_uris": "https://permits.example.gov.za/cb\n",
        "post_logout_redirect_uris": "https://permits.example.gov.za/", "scopes": ["openid", "email", "municipal_accounts"],
        "first_party": "y"})
    html = created.get_data(as_text=True)
    assert created.status_code == 200
    secret = html.split('id="client-secret">')[1].split("<")[0]
    client_id = html.split('id="client-id">')[1].split("<")[0]
    with app.app_context():
        client = db.session.scalar(db.select(Client).where(Client.client_id == client_id))
        assert client.scope == "openid email municipal_accounts" and client.first_party
        assert client_service.verify_secret(client, secret) and secret not in (client.client_secret_digest or "")
    assert secret not in http.get("/admin/clients").get_data(as_text=True)
    assert secret not in http.get(f"/admin/clients/{client_id}").get_data(as_text=True)
    assert events(app, "client.created")[0].actor_id == admin_id

    rotated = act(http, f"/admin/clients/{client_id}/rotate-secret", token_from="/admin/clients")
    new_secret = rotated.get_data(as_text=True).split('id="client-secret">')[1].split("<")[0]
    with app.app_context():
        client = db.session.scalar(db.select(Client).where(Client.client_id == client_id))
        # the old secret keeps working for the overlap window (IDP_CLIENT_SECRET_OVERLAP, checklist 75)
        assert client_service.verify_secret(client, new_secret) and client_service.verify_secret(client, secret)

    edit = http.get(f"/admin/clients/{client_id}").get_data(as_text=True)
    http.post(f"/admin/clients/{client_id}", data={
        "csrf_token": csrf_token(edit), "name": "Permits office", "redirect_uris": "https://permits.example.gov.za/cb2",
        "scopes": ["openid", "email"]})
    [updated] = events(app, "client.updated")
    assert updated.detail["changes"]["redirect_uris"] == [["https://permits.example.gov.za/cb"],
                                                          ["https://permits.example.gov.za/cb2"]]
    act(http, f"/admin/clients/{client_id}/disable", token_from="/admin/clients")
    with app.app_context():
        assert db.session.scalar(db.select(Client).where(Client.client_id == client_id)).disabled


def test_roles_keys_and_the_audit_log(app, admin_http):
    http, admin_id = admin_http
    target = resident(app)
    page = http.get(f"/admin/residents/{target}").get_data(as_text=True)
    http.post(f"/admin/residents/{target}/roles", data={"csrf_token": csrf_token(page), "roles": ["support"],
                                                       "reason": "Joined the Bellville help desk"})
    with app.app_context():
        assert db.session.get(User, target).roles == ["support"]
    old_kids = {k["kid"] for k in http.get("/jwks.json").get_json()["keys"]}
    act(http, "/admin/keys", token_from="/admin/keys")
    assert {k["kid"] for k in http.get("/jwks.json").get_json()["keys"]} - old_kids
    listing = http.get("/admin/audit", query_string={"event": "user.roles"}).get_data(as_text=True)
    assert "user.roles_changed" in listing and "key.rotated" not in listing
    exported = export_audit(app, http, {"actor": str(admin_id)})
    rows = list(csv.DictReader(io.StringIO(exported.get_data(as_text=True))))
    assert {r["event"] for r in rows} >= {"user.roles_changed", "key.rotated"}
    assert all(r["actor_id"] == str(admin_id) for r in rows)
    assert http.get("/admin/audit", query_string={"since": "not-a-date", "user": "x' OR 1=1"}).status_code == 200


def test_export_deactivate_and_erase(app, admin_http, smtp_server):
    http, admin_id = admin_http
    target = resident(app)
    add_account(app, ACCOUNT)
    own = app.test_client()
    login(own)
    mine = json.loads(own.get("/account/export").get_data(as_text=True))
    assert mine["account"]["email"] == "amara@example.org"
    exported = http.get(f"/admin/residents/{target}/export")
    data = json.loads(exported.get_data(as_text=True))
    assert data["account"]["email"] == "amara@example.org" and data["sessions"]
    assert "password" not in json.dumps(data).replace("password_changed_at", "")
    act(http, f"/admin/residents/{target}/deactivate", token_from="/admin/clients")
    assert login(app.test_client()).status_code == 401 and own.get("/account/").status_code == 302
    act(http, f"/admin/residents/{target}/reactivate", token_from="/admin/clients")
    assert login(app.test_client()).status_code == 303
    act(http, f"/admin/residents/{target}/erase", token_from="/admin/clients")
    with app.app_context():
        user = db.session.get(User, target)
        assert user.email.endswith("@erased.invalid") and user.name == "" and user.password_hash is None
        kept = db.session.scalars(db.select(AuditEvent).where(AuditEvent.user_id == target)).all()
        assert kept and all(e.ip_address is None for e in kept if e.event != "account.erased")
        assert db.session.scalar(db.select(db.func.count()).select_from(UserSession)
                                 .where(UserSession.user_id == target)) == 0
    assert login(app.test_client()).status_code == 401
    assert act(http, f"/admin/residents/{target}/reactivate", token_from="/admin/clients").status_code == 303
    with app.app_context():
        assert db.session.get(User, target).status == "deactivated"  # an erased account stays erased


def test_overview_shows_counts(app, admin_http):
    http, _ = admin_http
    resident(app)
    login(app.test_client())
    login(app.test_client(), password="wrong password entirely")
    page = http.get("/admin/").get_data(as_text=True)
    assert "Failed sign-ins: 1 in 30 days" in page and "<svg" in page


def test_support_corrects_a_wrong_email_address(app, smtp_server):
    http, staff_id = staff_client(app)
    target = resident(app)
    page = http.get(f"/admin/residents/{target}").get_data(as_text=True)
    taken = http.post(f"/admin/residents/{target}/email", data={"csrf_token": csrf_token(page),
                                                               "new_email": "clerk@capetown.gov.za", "reason": "Typo"})
    assert taken.status_code == 303
    http.post(f"/admin/residents/{target}/email", data={"csrf_token": csrf_token(page),
                                                       "new_email": "Amara.D@Example.org", "reason": "Typo at sign-up"})
    with app.app_context():
        user = db.session.get(User, target)
        assert user.email == "amara.d@example.org" and not user.email_verified
    smtp_server.wait_for("amara.d@example.org", subject_contains="Confirm")
    smtp_server.wait_for("amara@example.org", subject_contains="address was changed")
    assert events(app, "email.changed_by_staff")[0].actor_id == staff_id


@pytest.mark.parametrize("action", ["lock", "sign-out", "reset-mfa", "deactivate", "email", "roles", "erase"])
@pytest.mark.parametrize("reason", ["", "x", "y" * 501, "line\nbreak"])
def test_every_action_refuses_a_missing_or_bad_reason_and_changes_nothing(app, admin_http, action, reason):
    http, _ = admin_http
    target = resident(app)
    page = http.get(f"/admin/residents/{target}").get_data(as_text=True)
    with app.app_context():
        before = db.session.scalar(db.select(db.func.count()).select_from(AuditEvent))
    response = http.post(f"/admin/residents/{target}/{action}", data={
        "csrf_token": csrf_token(page), "reason": reason, "new_email": "new@example.org", "roles": ["support"]})
    assert response.status_code == 303
    with app.app_context():
        user = db.session.get(User, target)
        assert (user.status, user.email, user.roles) == ("active", "amara@example.org", [])
        assert db.session.scalar(db.select(db.func.count()).select_from(AuditEvent)) == before


def test_actions_without_a_csrf_token_are_refused(app, admin_http):
    http, _ = admin_http
    target = resident(app)
    response = http.post(f"/admin/residents/{target}/lock", data={"reason": "No token here at all"})
    assert response.status_code == 403
    with app.app_context():
        assert db.session.get(User, target).status == "active"


def test_each_action_leaves_an_audit_event_naming_the_staff_member(app, admin_http, smtp_server):
    http, admin_id = admin_http
    target = resident(app, verified=False)
    client_id, _ = make_client(app)
    page = http.get(f"/admin/residents/{target}").get_data(as_text=True)
    http.post(f"/admin/residents/{target}/resend-verification", data={"csrf_token": csrf_token(page)})
    http.get(f"/admin/residents/{target}/export")
    for action in ("sign-out", "lock", "unlock", "deactivate", "reactivate"):
        act(http, f"/admin/residents/{target}/{action}")
    act(http, f"/admin/clients/{client_id}/disable", token_from="/admin/clients")
    act(http, f"/admin/clients/{client_id}/enable", token_from="/admin/clients")
    act(http, f"/admin/clients/{client_id}/rotate-secret", token_from="/admin/clients")
    act(http, "/admin/keys", token_from="/admin/keys")
    export_audit(app, http)
    act(http, f"/admin/residents/{target}/erase")
    expected = ["email.verification_resent", "account.exported", "account.signed_out_everywhere", "account.locked",
                "account.unlocked", "account.deactivated", "account.reactivated", "client.disabled", "client.enabled",
                "client.secret_rotated", "key.rotated", "audit.exported", "account.erased"]
    with app.app_context():
        recorded = {e.event: e for e in db.session.scalars(db.select(AuditEvent).where(AuditEvent.actor_id == admin_id))}
    for name in expected:
        assert name in recorded, name
        assert recorded[name].actor_id == admin_id
    for name in expected:
        if name not in ("email.verification_resent", "account.exported", "audit.exported"):
            assert len(recorded[name].detail.get("reason", "")) >= 3, name
