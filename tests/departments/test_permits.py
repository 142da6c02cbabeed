"""City Permits: step-up to MFA before an application is accepted, validation per permit type that
stores nothing on error, owner-only pages, withdrawal once, staff review from the CLI, and the API."""
from __future__ import annotations

import re
from datetime import date, timedelta

import pytest
from sqlalchemy import func, select

from relying_party_examples.permits.app import Application, StatusEvent, create_app, db, passport

PASSWORD = "urn:ecitizen:acr:password"
MFA = "urn:ecitizen:acr:mfa"
COMMON = {"title": "Garage extension", "site_address": "14 Bree Street, Cape Town",
          "description": "A single garage on the eastern boundary."}
VALID = {
    "building": {"erf_number": "7745", "estimated_cost": "250000.00"},
    "event": {"event_date": (date.today() + timedelta(days=30)).isoformat(), "attendance": "300"},
    "business": {"trading_name": "Bo-Kaap Bakery", "business_type": "food"},
}


@pytest.fixture
def app(tmp_path):
    return create_app({"RP_ISSUER": "http://idp.invalid", "RP_CLIENT_ID": "permits-test", "RP_CLIENT_SECRET": "s",
                       "RP_DATABASE_URL": f"sqlite:///{tmp_path}/permits.db", "RP_BASE_URL": "http://localhost:5199",
                       "RP_SECRET_KEY": "k"})


def signed_in(app, acr=MFA, sub="sub-1"):
    client = app.test_client()
    with app.app_context():
        client.set_cookie("permits_session", passport.start_session(
            {"sub": sub, "name": "Thandi Nkosi", "acr": acr, "amr": ["pwd", "otp"], "sid": f"sid-{sub}"}, None))
    return client


def csrf(client, path="/") -> str:
    return re.search(r'name="csrf_token" value="([^"]+)"', client.get(path).get_data(as_text=True))[1]


def submit(client, permit_type, **fields):
    data = {"csrf_token": csrf(client, "/apply"), "permit_type": permit_type, **COMMON, **VALID[permit_type], **fields}
    return client.post("/apply", data={k: v for k, v in data.items() if v is not None})


def count(app, model=Application) -> int:
    with app.app_context():
        return db.session.scalar(select(func.count()).select_from(model))


def test_applying_with_a_password_only_session_asks_for_a_step_up(app):
    weak = signed_in(app, acr=PASSWORD)
    assert weak.get("/apply").headers["Location"] == "/login?next=%2Fapply&acr=mfa"
    token = csrf(weak)
    response = weak.post("/apply", data={"csrf_token": token, "permit_type": "building", **COMMON, **VALID["building"]})
    assert response.status_code == 403 and count(app) == 0


@pytest.mark.parametrize("permit_type", list(VALID))
def test_each_permit_type_is_stored_with_its_first_event(app, permit_type):
    client = signed_in(app)
    response = submit(client, permit_type)
    assert response.status_code == 303
    reference = response.headers["Location"].rsplit("/", 1)[1]
    assert re.fullmatch(rf"PRM-{date.today().year}-\d{{6}}", reference)
    with app.app_context():
        stored = db.session.scalar(select(Application))
        assert stored.permit_type == permit_type and stored.acr == MFA and stored.status == "submitted"
        assert set(stored.details) == set(VALID[permit_type])
        assert [e.status for e in stored.events] == ["submitted"]
    page = client.get(f"/applications/{reference}").get_data(as_text=True)
    assert "Garage extension" in page and "Timeline" in page


@pytest.mark.parametrize("permit_type, fields, message", [
    ("event", {"event_date": (date.today() + timedelta(days=3)).isoformat()}, "at least 7 days from today"),
    ("event", {"attendance": "0"}, "Attendance must be 1 to 100 000"),
    ("building", {"estimated_cost": "1000.005"}, "at most 2 decimals"),
    ("building", {"estimated_cost": "0"}, "more than R0 and at most R1 000 000 000"),
    ("building", {"estimated_cost": "1000000000.01"}, "more than R0 and at most R1 000 000 000"),
    ("building", {"estimated_cost": "NaN"}, "more than R0 and at most R1 000 000 000"),
    ("building", {"estimated_cost": "Infinity"}, "more than R0 and at most R1 000 000 000"),
    ("building", {"erf_number": "12a"}, "The erf number is 1 to 10 digits"),
    ("business", {"trading_name": ""}, "Enter the business&#39;s trading name"),
    ("business", {"title": "ab"}, "The title must be 3 to 120 characters"),
])
def test_invalid_applications_store_nothing_and_say_what_to_fix(app, permit_type, fields, message):
    response = submit(signed_in(app), permit_type, **fields)
    page = response.get_data(as_text=True)
    assert response.status_code == 400 and message in page and "There is a problem" in page
    assert count(app) == 0 and count(app, StatusEvent) == 0


def test_another_types_fields_are_ignored(app):
    response = submit(signed_in(app), "business", erf_number="not digits", attendance="many", event_date="soon",
                      estimated_cost="NaN")
    assert response.status_code == 303 and count(app) == 1
    response = submit(signed_in(app), "building", business_type="casino", trading_name="")
    assert response.status_code == 303 and count(app) == 2


@pytest.mark.parametrize("typed, stored", [("0.01", "0.01"), ("1500.5", "1500.50"), ("1000000000", "1000000000.00")])
def test_the_cost_is_stored_exactly_in_rands_and_cents(app, typed, stored):
    client = signed_in(app)
    reference = submit(client, "building", estimated_cost=typed, title="  Garage  ").headers["Location"].rsplit("/")[-1]
    with app.app_context():
        application = db.session.scalar(select(Application))
        assert application.details["estimated_cost"] == stored and application.title == "Garage"
    page = client.get(f"/applications/{reference}").get_data(as_text=True)
    assert f"<dt>Estimated cost (rands)</dt><dd>{stored}</dd>" in page


def test_an_unknown_permit_type_is_refused(app):
    client = signed_in(app)
    response = client.post("/apply", data={"csrf_token": csrf(client, "/apply"), "permit_type": "casino", **COMMON})
    assert response.status_code == 400 and count(app) == 0


def test_only_the_applicant_sees_and_withdraws_an_application(app):
    owner = signed_in(app)
    reference = submit(owner, "building").headers["Location"].rsplit("/", 1)[1]
    stranger = signed_in(app, sub="sub-2")
    assert stranger.get(f"/applications/{reference}").status_code == 404
    assert stranger.post(f"/applications/{reference}/withdraw", data={"csrf_token": csrf(stranger)}).status_code == 404
    assert owner.post(f"/applications/{reference}/withdraw", data={"csrf_token": csrf(owner)}).status_code == 303
    again = owner.post(f"/applications/{reference}/withdraw", data={"csrf_token": csrf(owner)})
    assert again.status_code == 409 and "can no longer be withdrawn" in again.get_data(as_text=True)
    with app.app_context():
        assert [e.status for e in db.session.scalar(select(Application)).events] == ["submitted", "withdrawn"]


def test_staff_review_from_the_command_line(app):
    reference = submit(signed_in(app), "event").headers["Location"].rsplit("/", 1)[1]
    runner = app.test_cli_runner()
    result = runner.invoke(args=["permits", "review", reference, "--decision", "under-review", "--note", "Checking"])
    assert result.exit_code == 0, result.output
    assert runner.invoke(args=["permits", "review", reference, "--decision", "maybe"]).exit_code == 2
    assert runner.invoke(args=["permits", "review", "PRM-0000-000000", "--decision", "approved"]).exit_code == 1
    assert runner.invoke(args=["permits", "review", reference, "--decision", "approved"]).exit_code == 0
    late = runner.invoke(args=["permits", "review", reference, "--decision", "rejected"])
    assert late.exit_code == 1 and "is approved: it can no longer change" in late.output
    with app.app_context():
        events = db.session.scalar(select(Application)).events
        assert [e.status for e in events] == ["submitted", "under review", "approved"]
        assert events[1].note == "Checking"


def test_the_summary_api_lists_open_applications(app, monkeypatch):
    client = signed_in(app)
    open_one = submit(client, "building").headers["Location"].rsplit("/", 1)[1]
    done = submit(client, "business").headers["Location"].rsplit("/", 1)[1]
    client.post(f"/applications/{done}/withdraw", data={"csrf_token": csrf(client)})
    with app.app_context():
        monkeypatch.setattr(passport.tokens, "check_bearer", lambda header: {"sub": "permits-caller"})
    body = app.test_client().get("/api/residents/sub-1/summary", headers={"Authorization": "Bearer x"}).get_json()
    assert body["department"] == "permits" and body["count_open"] == 1
    assert body["items"][0]["reference"] == open_one
    assert body["items"][0]["url"] == f"http://localhost:5199/applications/{open_one}"
    detail = app.test_client().get(f"/api/applications/{done}", headers={"Authorization": "Bearer x"}).get_json()
    assert [e["status"] for e in detail["events"]] == ["submitted", "withdrawn"]
    assert app.test_client().get("/api/applications/PRM-1", headers={"Authorization": "Bearer x"}).status_code == 404
