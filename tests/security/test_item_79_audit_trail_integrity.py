"""Checklist 79: audit trail integrity. No console route (any method, any administrator) and no
`idp` command edits or deletes audit events: the only routes that touch the trail read it (GET);
other methods answer 405 and change nothing. Every event also leaves the database as a log line
(`idp.audit` logger: the separate store a deployment ships to its log platform). The erasure of a
resident (POPIA) keeps their events, removing only the network address. The database itself refuses
any other change or deletion of an event, whoever connects (triggers of migration a34ad7274cbd);
only retention deletes events past IDP_AUDIT_RETENTION_DAYS, with a permit that lives inside its
own transaction."""
from __future__ import annotations

import logging
from datetime import timedelta

import click
import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from idp.extensions import db
from idp.models import AuditEvent, AuditPurgePermit
from idp.models.types import utcnow
from idp.observability import REGISTRY
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
    assert {r.rule for r in audit_rules} == {"/admin/audit", "/admin/audit/exports",
                                            "/admin/approvals/<int:request_id>/audit-events.csv"}
    # Only reads, but for asking a second administrator to approve an export (which adds a request).
    assert all(set(r.methods) - {"HEAD", "OPTIONS"} == ({"POST"} if r.rule.endswith("/exports") else {"GET"})
               for r in audit_rules)
    paths = ["/admin/audit", "/admin/approvals/1/audit-events.csv", "/admin/audit/1", "/admin/audit/1/delete", "/admin/audit/1/edit",
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


def _refused(app, statement) -> None:
    with app.app_context():
        with pytest.raises(DBAPIError, match="append-only"):
            db.session.execute(statement)
            db.session.commit()
        db.session.rollback()


def _alerts() -> float:
    return REGISTRY.get_sample_value("idp_security_events_total",
                                     {"event": audit.REFUSED, "outcome": "alert"}) or 0.0


def test_item_79_a_direct_deletion_is_refused_by_the_database_logged_and_alerted(app, caplog):
    caplog.set_level(logging.INFO, logger="idp.audit")
    _seed(app)
    before, alerts = _trail(app), _alerts()
    _refused(app, db.delete(AuditEvent).where(AuditEvent.id == 1))
    _refused(app, db.delete(AuditEvent))
    _refused(app, text("DELETE FROM audit_events"))
    assert _trail(app) == before
    assert _alerts() == alerts + 3  # the counter deploy/prometheus/alerts.yml pages on
    logged = [r for r in caplog.records if r.name == "idp.audit" and audit.REFUSED in r.getMessage()]
    assert len(logged) == 3 and all("operation=DELETE" in r.getMessage() for r in logged)


@pytest.mark.parametrize("change", [{"event": "nothing.happened"}, {"outcome": "failure"}, {"actor_id": None},
                                    {"user_id": 8}, {"detail": {"reason": "rewritten"}}, {"ip_address": "198.51.100.9"},
                                    {"ip_address": None, "outcome": "failure"}])
def test_item_79_a_direct_edit_is_refused_by_the_database(app, change):
    _seed(app)
    before = _trail(app)
    _refused(app, db.update(AuditEvent).where(AuditEvent.id == 2).values(**change))
    assert _trail(app) == before


def test_item_79_only_a_permit_inside_the_same_transaction_lets_old_events_go(app):
    _seed(app)
    with app.app_context():
        db.session.add(AuditEvent(event="signin.failure", outcome="failure", at=utcnow() - timedelta(days=400)))
        db.session.commit()
        db.session.add(AuditPurgePermit(before=utcnow() - timedelta(days=365)))
        db.session.flush()
        with pytest.raises(DBAPIError, match="append-only"):  # the permit covers only older events
            db.session.execute(db.delete(AuditEvent).where(AuditEvent.id == 1))
        db.session.rollback()  # the permit goes with the transaction
        assert db.session.scalar(db.select(db.func.count()).select_from(AuditPurgePermit)) == 0
    _refused(app, db.delete(AuditEvent).where(AuditEvent.event == "signin.failure"))


def test_item_79_truncating_the_trail_is_refused_on_postgresql(app):
    with app.app_context():
        if db.engine.dialect.name != "postgresql":
            pytest.skip("TRUNCATE is PostgreSQL's (SQLite has only DELETE, refused above)")
    _seed(app)
    before = _trail(app)
    _refused(app, text("TRUNCATE audit_events"))
    assert _trail(app) == before
