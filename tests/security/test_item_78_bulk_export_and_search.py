"""Checklist 78: bulk export and search. An audit CSV export waits for a second administrator's
approval (not the one who asked), then downloads once, by the one who asked, within a day. It is
audited with who asked, who approved, which filters and how many rows, and is limited per
administrator (IDP_AUDIT_EXPORTS_PER_HOUR, then 429, the refusal audited too); resident search and
the audit listing are paginated with a hard cap of 50 whatever the query (LIKE wildcards in it are
data), so nothing dumps a whole table."""
from __future__ import annotations

import csv
import io
from datetime import timedelta

from idp.extensions import db
from idp.models import ApprovalRequest, AuditEvent, User
from tests.conftest import csrf_token
from tests.integration.test_admin import APPROVER, ask_for_export, export_audit, staff_client


def _admin(app):
    return staff_client(app, email="admin@capetown.gov.za", roles=("administrator",))


def _events(app, name):
    with app.app_context():
        return list(db.session.scalars(db.select(AuditEvent).where(AuditEvent.event == name)))


def _seed_events(app, n=7):
    with app.app_context():
        for index in range(n):
            db.session.add(AuditEvent(event="signin.failure", outcome="failure", user_id=1000 + index))
        db.session.commit()


def test_item_78_an_export_is_audited_with_who_filters_and_row_count(app):
    _seed_events(app)
    http, admin_id = _admin(app)
    response = export_audit(app, http, {"event": "signin.failure"})
    assert response.status_code == 200 and response.mimetype == "text/csv"
    rows = list(csv.reader(io.StringIO(response.get_data(as_text=True))))[1:]
    (event,) = _events(app, "audit.exported")
    assert event.actor_id == admin_id and event.ip_address
    assert event.detail["filters"] == {"event": "signin.failure"}
    assert event.detail["rows"] == len(rows) == 7
    with app.app_context():
        approver = db.session.scalar(db.select(User.id).where(User.email == APPROVER))
    assert event.detail["approved_by"] == approver != admin_id


def test_item_78_exports_are_rate_limited_per_administrator(app, monkeypatch):
    monkeypatch.setattr(app.config["IDP_SETTINGS"], "audit_exports_per_hour", 2)
    http, admin_id = _admin(app)
    assert [export_audit(app, http).status_code for _ in range(2)] == [200, 200]
    refused = export_audit(app, http)
    assert refused.status_code == 429 and refused.mimetype == "text/html"
    assert refused.headers["Retry-After"] == "3600"  # the window is an hour
    assert "signin" not in refused.get_data(as_text=True)
    assert len(_events(app, "audit.exported")) == 2
    (blocked,) = _events(app, "audit.export_refused")
    assert blocked.actor_id == admin_id and blocked.outcome == "failure"
    other, _ = staff_client(app, email="second@capetown.gov.za", roles=("administrator",))
    assert export_audit(app, other).status_code == 200  # the limit is per administrator


def test_item_78_search_and_listing_are_capped_whatever_the_query(app):
    with app.app_context():
        for index in range(60):
            db.session.add(User(email=f"resident{index:02d}@example.org", name="Same Surname", password_hash="x"))
        db.session.commit()
    http, _ = staff_client(app)
    page = http.get("/admin/residents", query_string={"q": "example.org"}).get_data(as_text=True)
    assert page.count("@example.org</a>") == 50
    for wildcard in ("%%", "__", "%_"):
        page = http.get("/admin/residents", query_string={"q": wildcard}).get_data(as_text=True)
        assert "@example.org</a>" not in page, wildcard  # wildcards are data: no listing of everyone
    _seed_events(app, 120)
    admin, _ = _admin(app)
    listing = admin.get("/admin/audit", query_string={"event": "signin.failure"}).get_data(as_text=True)
    assert listing.count("<td>signin.failure</td>") == 50  # one page of 50, with a link to the next
    for number in ("99999", "-1", "1e9", "0"):
        assert admin.get("/admin/audit", query_string={"page": number}).status_code == 200


def _decide(http, request_id, decision):
    token = csrf_token(http.get("/admin/approvals").get_data(as_text=True))
    return http.post(f"/admin/approvals/{request_id}/{decision}", data={"csrf_token": token})


def _status(app, request_id):
    with app.app_context():
        return db.session.get(ApprovalRequest, request_id).status


def test_item_78_an_export_waits_for_a_second_administrators_approval(app):
    _seed_events(app)
    http, admin_id = _admin(app)
    request_id = ask_for_export(app, http, {"event": "signin.failure"})
    download = f"/admin/approvals/{request_id}/audit-events.csv"
    early = http.get(download)
    assert early.status_code == 303 and early.mimetype != "text/csv"  # nothing before the approval
    assert "no approved export" in http.get("/admin/approvals").get_data(as_text=True)
    _decide(http, request_id, "approve")  # the one who asked cannot approve
    assert _status(app, request_id) == "pending"
    clerk, _ = staff_client(app, email="support@capetown.gov.za", roles=("support",))
    assert _decide(clerk, request_id, "approve").status_code == 404  # support staff decide nothing
    second, second_id = staff_client(app, email="second@capetown.gov.za", roles=("administrator",))
    waiting = second.get("/admin/approvals").get_data(as_text=True)
    assert "Quarterly access review" in waiting and f"/admin/approvals/{request_id}/approve" in waiting
    assert _decide(second, request_id, "approve").status_code == 303
    assert _status(app, request_id) == "approved"
    assert second.get(download).mimetype != "text/csv"  # only the one who asked downloads it
    response = http.get(download)
    assert response.status_code == 200 and response.mimetype == "text/csv"
    assert len(response.get_data(as_text=True).splitlines()) == 8
    again = http.get(download)
    assert again.status_code == 303 and again.mimetype != "text/csv"  # once
    (asked,) = _events(app, "approval.requested")
    (granted,) = _events(app, "approval.granted")
    assert asked.actor_id == admin_id and asked.detail["filters"] == {"event": "signin.failure"}
    assert granted.actor_id == second_id and granted.detail["request"] == request_id


def test_item_78_a_refused_or_lapsed_export_never_downloads(app):
    http, _ = _admin(app)
    second, _ = staff_client(app, email="second@capetown.gov.za", roles=("administrator",))
    refused = ask_for_export(app, http)
    _decide(second, refused, "refuse")
    assert _status(app, refused) == "refused" and _events(app, "approval.refused")
    lapsed = ask_for_export(app, http)
    with app.app_context():
        request = db.session.get(ApprovalRequest, lapsed)
        request.expires_at -= timedelta(hours=25)
        db.session.commit()
    _decide(second, lapsed, "approve")
    assert "no longer waiting for a decision" in second.get("/admin/approvals").get_data(as_text=True)
    assert _status(app, lapsed) == "pending"  # a lapsed request cannot be approved
    for request_id in (refused, lapsed):
        assert http.get(f"/admin/approvals/{request_id}/audit-events.csv").mimetype != "text/csv"
    assert not _events(app, "audit.exported")


def test_item_78_asking_needs_a_reason(app):
    http, _ = _admin(app)
    token = csrf_token(http.get("/admin/audit").get_data(as_text=True))
    for reason in ("", "  ", "x"):
        http.post("/admin/audit/exports", data={"csrf_token": token, "reason": reason})
    with app.app_context():
        assert db.session.scalar(db.select(db.func.count()).select_from(ApprovalRequest)) == 0


def test_item_78_the_other_administrators_are_mailed_that_a_request_waits(app, smtp_server):
    second, _ = staff_client(app, email="second@capetown.gov.za", roles=("administrator",))
    staff_client(app, email="support@capetown.gov.za", roles=("support",))
    http, _ = _admin(app)
    smtp_server.clear()
    ask_for_export(app, http, {"event": "signin.failure"}, reason="Quarterly access review, ticket AR-9")
    mail = smtp_server.wait_for("second@capetown.gov.za", subject_contains="waits for your approval")
    text = mail.get_payload(decode=True).decode() if not mail.is_multipart() else mail.as_string()
    assert "an export of the audit log" in text and "http://localhost/admin/approvals" in text
    assert "AR-9" not in text  # the reason stays in the console
    assert {m["To"] for m in smtp_server.messages} == {"second@capetown.gov.za"}  # not the asker, not support
