"""Checklist 89: SQL and filter injection. SQL fragments, LIKE wildcards and JSON-operator objects
in the sign-in identifier, the sign-in API bodies, the console's resident search and the audit
log's filters are data: no 500, no extra rows matched (a ``%`` finds only a literal ``%``), no
sign-in, and every table is still there afterwards."""
from __future__ import annotations

import pytest
from sqlalchemy import inspect

from idp.extensions import db
from idp.models import User
from tests.conftest import csrf_token
from tests.integration.test_admin import export_audit, staff_client
from tests.integration.test_signin_flows import PASSWORD, make_user

PAYLOADS = ["' OR 1=1--", "\" OR \"\"=\"", "'; DROP TABLE users;--", "amara@example.org' --",
            "amara@example.org'/*", "%", "%%", "_%", "a%' OR 'a'='a", "\\", "1) OR (1=1", "{\"$ne\": null}",
            "' UNION SELECT password_hash FROM users--", "amara@example.org\x00"]


def _tables(app) -> set[str]:
    with app.app_context():
        return set(inspect(db.engine).get_table_names())


@pytest.mark.parametrize("payload", PAYLOADS)
def test_item_89_sign_in_identifier_is_data(app, client, payload):
    make_user(app)
    before = _tables(app)
    page = client.get("/login")
    response = client.post("/login", data={"csrf_token": csrf_token(page.get_data(as_text=True)),
                                           "email": payload, "password": PASSWORD})
    assert response.status_code in (400, 401)
    assert client.get("/account/").status_code != 200
    assert _tables(app) == before
    with app.app_context():
        assert db.session.scalar(db.select(db.func.count()).select_from(User)) == 1


@pytest.mark.parametrize("body", [{"email": {"$ne": None}}, {"email": ["a", "b"]}, {"next": {"$gt": ""}},
                                  {"credential": {"id": "' OR 1=1--", "rawId": "x", "response": {}}}])
def test_item_89_json_operator_bodies_are_refused_cleanly(app, client, body):
    make_user(app)
    token = csrf_token(client.get("/login").get_data(as_text=True))
    response = client.post("/login/passkey", json=body, headers={"X-CSRFToken": token})
    assert response.status_code in (400, 403)
    assert client.get("/account/").status_code != 200


def test_item_89_resident_search_treats_wildcards_and_sql_as_data(app):
    make_user(app, email="amara@example.org", name="Amara Dlamini")
    make_user(app, email="thabo@example.org", name="Thabo Nkosi")
    make_user(app, email="odd%name@example.org", name="Per_cent Person")
    http, _ = staff_client(app)
    before = _tables(app)
    for payload in PAYLOADS + ["%@", "_@", "%a", "a_a"]:
        response = http.get("/admin/residents", query_string={"q": payload})
        assert response.status_code == (400 if "\x00" in payload else 200), payload
        html = response.get_data(as_text=True)
        assert not ("amara@example.org" in html and "thabo@example.org" in html), payload
    literal = http.get("/admin/residents", query_string={"q": "d%n"}).get_data(as_text=True)
    assert "odd%name@example.org" in literal and "amara@example.org" not in literal
    underscore = http.get("/admin/residents", query_string={"q": "r_c"}).get_data(as_text=True)
    assert "Per_cent" in underscore and "Amara" not in underscore
    assert _tables(app) == before


def test_item_89_audit_filters_are_data(app):
    http, _ = staff_client(app, email="admin@capetown.gov.za", roles=("administrator",))
    before = _tables(app)
    for name in ("event", "user", "actor", "outcome", "since", "until"):
        for payload in PAYLOADS:
            response = http.get("/admin/audit", query_string={name: payload})
            assert response.status_code in (200, 400), (name, payload)
    for payload in PAYLOADS[:3]:  # exports are rate-limited per administrator: a few suffice
        assert export_audit(app, http, {"event": payload, "user": payload}).status_code == 200, payload
    assert _tables(app) == before
