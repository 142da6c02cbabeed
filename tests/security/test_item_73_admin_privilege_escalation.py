"""Checklist 73: admin privilege escalation. A resident's session (with a valid CSRF token) or a
resident's access token is sent to every staff-console route with every method, and with
X-HTTP-Method-Override: the answer is 404 (405 for a method the route does not have), nothing
changes, and each refused attempt is audited. Support staff cannot reach administrator routes or
give themselves a role; roles are global (no department-scoped administrator exists to escape its
department); taking a role away ends the member's sessions, so it takes effect on the next request."""
from __future__ import annotations

import pytest

from idp.extensions import db
from idp.models import AuditEvent, Client, LinkRequest, SigningKey, User, UserSession
from idp.services import support
from tests.conftest import csrf_token
from tests.integration.test_admin import staff_client
from tests.integration.test_signin_flows import login, make_user
from tests.support.oidc import exchange, get_code, make_client, pkce_pair

METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")


@pytest.fixture
def world(app):
    """A resident attacker, a target resident, a client and a pending link request."""
    attacker = make_user(app, email="mallory@example.org")
    target = make_user(app, email="amara@example.org")
    client_id, secret = make_client(app)
    with app.app_context():
        request = LinkRequest(user_id=target, account_number="4000000000", role="owner", document=b"%PDF-1.4",
                              document_type="application/pdf", document_name="x.pdf")
        db.session.add(request)
        db.session.commit()
        request_id = request.id
    http = app.test_client()
    login(http, email="mallory@example.org")
    return {"http": http, "attacker": attacker, "target": target, "client_id": client_id, "secret": secret,
            "request_id": request_id}


def admin_urls(app, world) -> list[tuple[str, set[str]]]:
    """Every route of the console, with real identifiers filled in, and the methods it has."""
    values = {"user_id": world["target"], "request_id": world["request_id"], "client_id": world["client_id"],
              "decision": "approve", "change": "disable"}
    adapter = app.url_map.bind("localhost")
    urls = []
    for rule in app.url_map.iter_rules():
        if rule.endpoint.startswith("admin."):
            urls.append((adapter.build(rule.endpoint, {k: values[k] for k in rule.arguments}),
                         set(rule.methods) - {"HEAD", "OPTIONS"}))
    assert len(urls) >= 20, "the console's routes were not found"
    return urls


def snapshot(app) -> tuple:
    """Everything an admin action could change."""
    with app.app_context():
        users = tuple(db.session.execute(db.select(User.id, User.status, User.roles, User.email,
                                                   User.name)).all())
        clients = tuple(db.session.execute(db.select(Client.client_id, Client.disabled,
                                                     Client.client_secret_digest, Client.name)).all())
        requests = tuple(db.session.execute(db.select(LinkRequest.id, LinkRequest.status)).all())
        keys = db.session.scalar(db.select(db.func.count()).select_from(SigningKey))
        sessions = db.session.scalar(db.select(db.func.count()).select_from(UserSession)
                                     .where(UserSession.ended_at.is_(None)))
        return users, clients, requests, keys, sessions


def denied(app) -> list[AuditEvent]:
    with app.app_context():
        return list(db.session.scalars(db.select(AuditEvent).where(AuditEvent.event == "admin.access_denied")))


def test_item_73_a_resident_gets_404_on_every_console_route_with_every_method(app, world):
    http = world["http"]
    token = csrf_token(http.get("/account/").get_data(as_text=True))  # a valid token of the resident's own session
    before = snapshot(app)
    tried = 0
    for url, methods in admin_urls(app, world):
        for method in METHODS:
            response = http.open(url, method=method, data={"csrf_token": token, "reason": "escalating, sorry",
                                                           "roles": ["administrator"], "name": "Pwned"})
            expected = 404 if method in methods else 405
            assert response.status_code == expected, (method, url, response.status_code)
            body = response.get_data(as_text=True)
            assert "amara@example.org" not in body and "client_secret" not in body
            tried += method in methods
    assert snapshot(app) == before
    logged = denied(app)
    assert len(logged) == tried  # every refused attempt at a real route is in the audit trail
    assert {e.user_id for e in logged} == {world["attacker"]} and all(e.outcome == "failure" for e in logged)
    assert {(e.detail["method"], e.detail["path"]) for e in logged} >= {
        ("POST", f"/admin/residents/{world['target']}/roles"), ("GET", "/admin/approvals/1/audit-events.csv")}


def test_item_73_method_override_headers_are_not_honoured(app, world):
    http = world["http"]
    token = csrf_token(http.get("/account/").get_data(as_text=True))
    before = snapshot(app)
    for url, methods in admin_urls(app, world):
        for method, override in (("GET", "POST"), ("GET", "DELETE"), ("POST", "GET"), ("POST", "PUT"),
                                 ("POST", "PATCH")):
            response = http.open(url, method=method, data={"csrf_token": token, "reason": "escalating, sorry"},
                                 headers={"X-HTTP-Method-Override": override, "X-HTTP-Method": override,
                                          "X-Method-Override": override})
            # Routed by the real method only: 404 where the route has it, 405 where it has not.
            assert response.status_code == (404 if method in methods else 405), (method, override, url)
    assert snapshot(app) == before


def test_item_73_a_residents_access_token_opens_nothing_in_the_console(app, world):
    verifier, challenge = pkce_pair()
    code = get_code(world["http"], world["client_id"], challenge)
    access_token = exchange(world["http"], world["client_id"], world["secret"], code, verifier).get_json()["access_token"]
    bearer = app.test_client()  # no cookie: only the token
    before = snapshot(app)
    for url, methods in admin_urls(app, world):
        for method in sorted(methods):
            response = bearer.open(url, method=method, headers={"Authorization": f"Bearer {access_token}"})
            assert response.status_code in (302, 403), (method, url, response.status_code)  # 403: no CSRF token
            if response.status_code == 302:  # treated as a stranger: sent to sign in, nothing shown
                assert response.headers["Location"].startswith("/login?next=")
            assert "amara@example.org" not in response.get_data(as_text=True)
    assert snapshot(app) == before


def test_item_73_support_cannot_give_itself_or_anyone_a_role_or_a_department_role(app):
    http, clerk_id = staff_client(app)
    target = make_user(app, email="amara@example.org")
    for user_id in (clerk_id, target):
        token = csrf_token(http.get("/admin/").get_data(as_text=True))
        response = http.post(f"/admin/residents/{user_id}/roles",
                             data={"csrf_token": token, "roles": ["administrator"], "reason": "promote me please"})
        assert response.status_code == 404
    with app.app_context():
        assert db.session.get(User, clerk_id).roles == ["support"] and db.session.get(User, target).roles in (None, [])
        # Roles are global: there is no department-scoped administrator role to grant at all.
        admin = db.session.get(User, clerk_id)
        admin.roles = ["administrator"]
        db.session.commit()
        with app.test_request_context("/admin/"):
            for scoped in ("administrator:billing", "billing_admin", "department_admin"):
                with pytest.raises(support.DomainError):
                    support.set_roles(admin, db.session.get(User, target), [scoped], "a scoped role")
        assert db.session.get(User, target).roles in (None, [])


def test_item_73_removing_a_role_takes_effect_on_the_members_next_request(app):
    admin_http, _ = staff_client(app, email="admin@capetown.gov.za", roles=("administrator",))
    clerk_http, clerk_id = staff_client(app)
    assert clerk_http.get("/admin/residents").status_code == 200
    with app.app_context():
        old_sids = set(db.session.scalars(db.select(UserSession.sid).where(UserSession.user_id == clerk_id)))
    token = csrf_token(admin_http.get(f"/admin/residents/{clerk_id}").get_data(as_text=True))
    changed = admin_http.post(f"/admin/residents/{clerk_id}/roles",
                              data={"csrf_token": token, "reason": "moved to another team"})
    assert changed.status_code == 303
    with app.app_context():
        assert db.session.get(User, clerk_id).roles == []
        live = db.session.scalars(db.select(UserSession.sid).where(UserSession.user_id == clerk_id,
                                                                  UserSession.ended_at.is_(None))).all()
    assert not old_sids & set(live)  # the session opened with the role is over
    response = clerk_http.get("/admin/residents")
    assert response.status_code == 302 and response.headers["Location"].startswith("/login")
    assert clerk_http.get("/account/").status_code == 302  # the old cookie authenticates nothing
    assert clerk_http.post(f"/admin/residents/{clerk_id}/lock", data={"reason": "x" * 10}).status_code in (302, 403)
    with app.app_context():
        assert db.session.get(User, clerk_id).status == "active"
