"""Checklist 78: bulk export and search. The audit CSV export is audited with who, which filters
and how many rows, and is limited per administrator (IDP_AUDIT_EXPORTS_PER_HOUR, then 429, the
refusal audited too); resident search and the audit listing are paginated with a hard cap of 50
whatever the query (LIKE wildcards in it are data), so nothing dumps a whole table. An export
approval step (four eyes) is not built."""
from __future__ import annotations

import csv
import io

import pytest

from idp.extensions import db
from idp.models import AuditEvent, User
from tests.integration.test_admin import staff_client


def _export(http):
    """Download the CSV to the end (the body is streamed), then close it."""
    response = http.get("/admin/audit.csv")
    response.get_data()
    response.close()
    return response


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
    response = http.get("/admin/audit.csv", query_string={"event": "signin.failure"})
    assert response.status_code == 200
    rows = list(csv.reader(io.StringIO(response.get_data(as_text=True))))[1:]
    (event,) = _events(app, "audit.exported")
    assert event.actor_id == admin_id and event.ip_address
    assert event.detail["filters"] == {"event": "signin.failure"}
    assert event.detail["rows"] == len(rows) == 7


def test_item_78_exports_are_rate_limited_per_administrator(app, monkeypatch):
    monkeypatch.setattr(app.config["IDP_SETTINGS"], "audit_exports_per_hour", 2)
    http, admin_id = _admin(app)
    assert [_export(http).status_code for _ in range(2)] == [200, 200]
    refused = _export(http)
    assert refused.status_code == 429 and refused.mimetype == "text/html"
    assert "signin" not in refused.get_data(as_text=True)
    assert len(_events(app, "audit.exported")) == 2
    (blocked,) = _events(app, "audit.export_refused")
    assert blocked.actor_id == admin_id and blocked.outcome == "failure"
    other, _ = staff_client(app, email="second@capetown.gov.za", roles=("administrator",))
    assert _export(other).status_code == 200  # the limit is per administrator


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


@pytest.mark.xfail(strict=True, reason="gap: exports are not held for a second administrator's approval")
def test_item_78_an_export_waits_for_a_second_administrators_approval(app):
    http, _ = _admin(app)
    response = _export(http)
    assert response.status_code != 200 or response.mimetype != "text/csv"
