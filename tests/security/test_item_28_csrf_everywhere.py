"""Checklist 28: CSRF on every state-changing request. Every POST/PUT/PATCH/DELETE route of the
application (found in the URL map, so a new route is covered automatically) is attacked as a
signed-in administrator with a multi-factor session, with a form that would change something:
no token, a token from another session, a valid token only in the query string, and a cross-origin
``text/plain`` post. Each must answer 403 with the "form expired" error page and leave the
database exactly as it was; the only routes without the form token are the back-channel endpoints
that authenticate the client instead, and that list is pinned."""
from __future__ import annotations

import pytest
from sqlalchemy import text

from idp.extensions import csrf, db
from idp.models import User
from tests.conftest import csrf_token
from tests.integration.test_admin import staff_client
from tests.integration.test_signin_flows import PASSWORD, make_user
from tests.support.oidc import make_client

STATE_CHANGING = {"POST", "PUT", "PATCH", "DELETE"}
# Back-channel endpoints (client authentication or a bearer token instead of a browser form), the
# RP-initiated logout that accepts a department's cross-site POST and asks for a confirmation
# carrying the token, and the language switcher (a visitor's choice changes only a cookie; a
# signed-in resident's needs the token, checked below), and the browser's CSP violation reports
# (sent by the browser itself, changing nothing but a log line).
EXEMPT = {"idp.oidc.routes.token", "idp.oidc.routes.revoke", "idp.oidc.routes.introspect",
          "idp.oidc.routes.userinfo", "idp.oidc.routes.end_session", "idp.web.auth.language",
          "idp.security.headers.csp_report"}
VARIANTS = ["no_token", "foreign_token", "token_in_query_only", "text_plain_cross_origin"]


@pytest.fixture
def setting(app):
    """An administrator's browser, a resident and a client to act on, and every guarded route."""
    http, admin_id = staff_client(app, email="admin@capetown.gov.za", roles=("administrator",))
    resident_id = make_user(app, email="amara@example.org")
    client_id, _ = make_client(app)
    args = {"user_id": resident_id, "request_id": 1, "client_id": client_id, "credential_id": 1, "link_id": 1,
            "token": "t" * 43, "decision": "approve", "change": "disable"}
    routes = []
    with app.test_request_context():
        for rule in app.url_map.iter_rules():
            methods = STATE_CHANGING & set(rule.methods)
            if not methods or f"{app.view_functions[rule.endpoint].__module__}.{rule.endpoint.split('.')[-1]}" in EXEMPT:
                continue
            unknown = set(rule.arguments) - set(args)
            assert not unknown, f"{rule.rule}: give the test a value for {unknown}"
            routes.append((rule.rule, app.url_map.bind("localhost").build(rule.endpoint, {a: args[a] for a in rule.arguments})))
    form = {"reason": "Resident called the help desk, ID checked", "name": "Mallory Changed",
            "email": "mallory@example.org", "new_email": "mallory@example.org", "current_password": PASSWORD,
            "password": "a different long passphrase 77", "confirm": "a different long passphrase 77",
            "decision": "allow", "client_id": client_id, "roles": "support", "what": "close", "lang": "zu",
            "next": "/account/", "account_number": "4001234568", "pin": "2468", "role": "owner"}
    return http, routes, form


def _snapshot(app) -> dict:
    """Every row of every table, to prove that nothing at all changed."""
    with app.app_context():
        db.session.remove()
        with db.engine.connect() as conn:
            return {table.name: sorted(map(repr, conn.execute(text(f'SELECT * FROM "{table.name}"')).all()))
                    for table in db.metadata.sorted_tables}


def test_item_28_the_exempt_routes_are_exactly_the_back_channel_ones(app):
    assert csrf._exempt_views == EXEMPT
    assert not csrf._exempt_blueprints


@pytest.mark.parametrize("variant", VARIANTS)
def test_item_28_every_state_changing_route_refuses_a_forged_request(app, setting, variant):
    http, routes, form = setting
    assert len(routes) >= 40  # the whole application, not a sample
    own = csrf_token(http.get("/admin/").get_data(as_text=True))
    foreign = csrf_token(app.test_client().get("/login").get_data(as_text=True))
    before = _snapshot(app)
    for rule, path in routes:
        if variant == "no_token":
            response = http.post(path, data=form, headers={"Origin": "https://evil.example"})
        elif variant == "foreign_token":
            response = http.post(path, data={**form, "csrf_token": foreign})
        elif variant == "token_in_query_only":
            response = http.post(f"{path}?csrf_token={own}", data=form)
        else:
            body = "&".join(f"{k}={v}" for k, v in {**form, "csrf_token": own}.items())
            response = http.post(path, data=body, content_type="text/plain",
                                 headers={"Origin": "https://evil.example", "Referer": "https://evil.example/"})
        assert response.status_code == 403, (variant, rule, response.status_code)
        assert "Location" not in response.headers, rule
        assert "Your form expired" in response.get_data(as_text=True), rule
    assert _snapshot(app) == before
    assert http.get("/admin/").status_code == 200  # the administrator is still signed in


def test_item_28_a_signed_in_residents_language_change_needs_the_token(app):
    make_user(app, email="amara@example.org")
    http = app.test_client()
    page = http.get("/login")
    signed_in = http.post("/login", data={"csrf_token": csrf_token(page.get_data(as_text=True)),
                                          "email": "amara@example.org", "password": PASSWORD, "next": ""})
    assert signed_in.status_code == 303
    foreign = csrf_token(app.test_client().get("/login").get_data(as_text=True))
    for data in ({"lang": "zu"}, {"lang": "zu", "csrf_token": foreign}):
        assert http.post("/language", data=data).status_code == 403
    with app.app_context():
        assert db.session.scalar(db.select(User.locale).where(User.email == "amara@example.org")) is None


def test_item_28_a_json_caller_gets_a_403_json_error(app):
    make_user(app, email="amara@example.org")
    http = app.test_client()
    response = http.post("/login/passkey/options", json={}, headers={"Accept": "application/json"})
    assert response.status_code == 403
    assert response.is_json and response.get_json()["error"] == "Your form expired"
