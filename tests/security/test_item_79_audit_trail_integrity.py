"""Checklist 79: audit trail integrity. No console route (any method, any administrator) and no
`idp` command edits or deletes audit events: the only routes that touch the trail read it (GET);
other methods answer 405 and change nothing. Every event also leaves the database as a log line
(`idp.audit` logger: the separate store a deployment ships to its log platform). The erasure of a
resident (POPIA) keeps their events, removing only the network address. A database-level guard
that refuses and alerts on a deletion attempt is not built."""
from __future__ import annotations

import logging

import click
import pytest

from idp.extensions import db
from idp.models import AuditEvent
from idp.services import audit
from tests.conftest import csrf_token
from tests.integration.test_admin import act, staff_client
from tests.integration.test_signin_flows import make_user

WRITE_METHODS = ("POST", "PUT", "PATCH", "DELETE")


def _trail(app) -> list[tuple]:
    with app.app_context():
        return [tuple(row) for row in db.session.execute(
            db.select(AuditEvent.id, AuditEvent.event, AuditEvent.outcome, AuditEvent.user_id, AuditEvent.actor_id,
                      AuditEvent.ip_address, AuditEvent.detail).where(AuditEvent.id <= 3).order_by(AuditEvent.id))]


def _seed(app):
    with app.app_context():
        for name in ("signin.failure", "account.locked", "user.roles_changed"):
            audit.record(name, outcome="success", user_id=7, ip_address="192.0.2.1", reason="original")


def test_item_79_no_console_route_or_method_changes_the_trail(app):
    _seed(app)
    before = _trail(app)
    http, _ = staff_client(app, email="admin@capetown.gov.za", roles=("administrator",))
    token = csrf_token(http.get("/admin/").get_data(as_text=True))
    audit_rules = [r for r in app.url_map.iter_rules() if "audit" in r.rule]
    assert {r.rule for r in audit_rules} == {"/admin/audit", "/admin/audit.csv"}
    assert all(set(r.methods) - {"HEAD", "OPTIONS"} == {"GET"} for r in audit_rules)
    paths = ["/admin/audit", "/admin/audit.csv", "/admin/audit/1", "/admin/audit/1/delete", "/admin/audit/1/edit",
             "/admin/audit/purge", "/admin/audit?id=1"]
    for path in paths:
        for method in WRITE_METHODS:
            response = http.open(path, method=method, data={"csrf_token": token, "id": "1", "event": "nothing",
                                                            "reason": "cover my tracks"})
            assert response.status_code in (404, 405), (method, path, response.status_code)
    assert _trail(app) == before


def test_item_79_no_command_edits_or_deletes_audit_events(app):
    def walk(command, prefix=()):
        yield prefix, command
        if isinstance(command, click.Group):
            for name, sub in command.commands.items():
                yield from walk(sub, (*prefix, name))

    names = [" ".join(path) for path, _ in walk(app.cli) if path and path[0] != "db"]
    assert "clients rotate-secret" in names  # the walk sees the real commands
    for name in names:
        assert "audit" not in name, name
    runner = app.test_cli_runner()
    for attempt in (["audit", "delete", "1"], ["audit", "purge"], ["events", "delete"]):
        assert runner.invoke(args=attempt).exit_code != 0


def test_item_79_every_event_is_also_shipped_as_a_log_line(app, caplog):
    caplog.set_level(logging.INFO, logger="idp.audit")
    target = make_user(app, email="amara@example.org")
    http, _ = staff_client(app)
    act(http, f"/admin/residents/{target}/lock")
    with app.app_context():
        stored = db.session.scalars(db.select(AuditEvent.event).order_by(AuditEvent.id)).all()
    shipped = [r.getMessage() for r in caplog.records if r.name == "idp.audit"]
    assert "account.locked" in stored
    for event in stored:  # each stored event has its line outside the database
        assert any(f"event={event} " in line for line in shipped), event


def test_item_79_erasing_a_resident_keeps_their_events(app):
    target = make_user(app, email="amara@example.org")
    with app.app_context():
        audit.record("signin.success", user_id=target, ip_address="192.0.2.1")
        count = db.session.scalar(db.select(db.func.count()).select_from(AuditEvent))
    http, _ = staff_client(app, email="admin@capetown.gov.za", roles=("administrator",))
    assert act(http, f"/admin/residents/{target}/erase", reason="POPIA s24 request, identity checked").status_code == 303
    with app.app_context():
        assert db.session.scalar(db.select(db.func.count()).select_from(AuditEvent)) > count
        kept = db.session.scalar(db.select(AuditEvent).where(AuditEvent.event == "signin.success"))
        assert kept.user_id == target and kept.ip_address is None  # kept, without the address


@pytest.mark.xfail(strict=True, reason="gap: no database-level append-only guard on audit_events, so a direct "
                                       "DELETE succeeds and raises no alert")
def test_item_79_a_direct_deletion_is_refused_by_the_database(app):
    _seed(app)
    with app.app_context():
        with pytest.raises(Exception):
            db.session.execute(db.delete(AuditEvent).where(AuditEvent.id == 1))
            db.session.commit()
        db.session.rollback()
