"""Report a Problem: reports with and without a photo (checked by its bytes), billing queries tied
to the resident's own accounts and routed by billing's arrears answer, owner-only pages and photos,
staff updates from the CLI, and the API's JSON."""
from __future__ import annotations

import io
import re
from datetime import date

import pytest
import requests
from sqlalchemy import func, select

from relying_party_examples.common import records
from relying_party_examples.complaints import app as complaints
from relying_party_examples.complaints.app import Complaint, Photo, StatusEvent, create_app, db, passport

ACCOUNT = "4001234568"
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64
JPEG = b"\xff\xd8\xff\xe0" + b"\x00" * 64


BILLING_API = "http://billing.invalid/api"


def make_app(tmp_path, **extra):
    return create_app({"RP_ISSUER": "http://idp.invalid", "RP_CLIENT_ID": "complaints-test",
                       "RP_CLIENT_SECRET": "s", "RP_DATABASE_URL": f"sqlite:///{tmp_path}/complaints.db",
                       "RP_BASE_URL": "http://localhost:5199", "RP_SECRET_KEY": "k",
                       "RP_BILLING_API_URL": "", "RP_BILLING_API_RESOURCE": "", **extra})


@pytest.fixture
def app(tmp_path):
    return make_app(tmp_path)


def signed_in(app, sub="sub-1"):
    client = app.test_client()
    claims = {"sub": sub, "name": "Thandi Nkosi", "acr": "urn:ecitizen:acr:password", "sid": f"sid-{sub}",
              "municipal_accounts": [{"account_number": ACCOUNT, "account_type": "residential", "role": "owner"}]}
    with app.app_context():
        client.set_cookie("complaints_session", passport.start_session(claims, None))
    return client


def report(client, photo: tuple[bytes, str] | None = None, **fields):
    token = re.search(r'name="csrf_token" value="([^"]+)"', client.get("/report").get_data(as_text=True))[1]
    data = {"csrf_token": token, "category": "pothole", "location": "Corner of Bree and Wale Street",
            "description": "A deep pothole in the left lane.", "account_number": "", **fields}
    if photo:
        data["photo"] = (io.BytesIO(photo[0]), photo[1])
    return client.post("/report", data=data, content_type="multipart/form-data")


def stored(app, model=Complaint) -> int:
    with app.app_context():
        return db.session.scalar(select(func.count()).select_from(model))


def only(app) -> Complaint:
    with app.app_context():
        found = db.session.scalar(select(Complaint))
        found.events, found.photo  # load them while the session is open
        return found


def test_a_report_gets_a_reference_a_team_and_a_first_event(app):
    client = signed_in(app)
    response = report(client)
    assert response.status_code == 303
    reference = response.headers["Location"].rsplit("/", 1)[1]
    assert re.fullmatch(rf"CMP-{date.today().year}-\d{{6}}", reference)
    complaint = only(app)
    assert complaint.team == "Roads" and complaint.status == "received" and complaint.account_in_arrears is None
    assert [e.status for e in complaint.events] == ["received"]
    page = client.get(f"/requests/{reference}").get_data(as_text=True)
    assert reference in page and "Roads" in page and "<img" not in page
    assert reference in client.get("/").get_data(as_text=True)


def test_references_are_unique_and_the_newest_request_is_listed_first(app, monkeypatch):
    drawn = iter(["CMP-2026-000001", "CMP-2026-000001", "CMP-2026-000002"])
    monkeypatch.setattr(records, "new_reference", lambda prefix: next(drawn))
    client = signed_in(app)
    first, second = (report(client).headers["Location"].rsplit("/", 1)[1] for _ in range(2))
    assert (first, second) == ("CMP-2026-000001", "CMP-2026-000002") and stored(app) == 2
    home = client.get("/").get_data(as_text=True)
    assert home.index(second) < home.index(first)


def test_a_photo_is_judged_by_its_bytes_and_served_to_its_owner_only(app):
    client = signed_in(app)
    reference = report(client, photo=(PNG, "notes.txt")).headers["Location"].rsplit("/", 1)[1]
    served = client.get(f"/requests/{reference}/photo")
    assert served.status_code == 200 and served.data == PNG and served.content_type == "image/png"
    assert served.headers["X-Content-Type-Options"] == "nosniff" and "private" in served.headers["Cache-Control"]
    stranger = signed_in(app, sub="sub-2")
    assert stranger.get(f"/requests/{reference}").status_code == 404
    assert stranger.get(f"/requests/{reference}/photo").status_code == 404
    assert report(client, photo=(JPEG, "x.png")).status_code == 303


@pytest.mark.parametrize("photo, message", [
    ((b"just some text", "pothole.jpg"), "must be a JPEG or PNG"),
    ((b"\xff\xd8\xff" + b"\x00" * (2 * 1024 * 1024), "big.jpg"), "larger than 2 MB"),
])
def test_a_bad_photo_is_refused_and_nothing_is_stored(app, photo, message):
    response = report(signed_in(app), photo=photo)
    assert response.status_code == 400 and message in response.get_data(as_text=True)
    assert stored(app) == 0 and stored(app, Photo) == 0 and stored(app, StatusEvent) == 0


@pytest.mark.parametrize("fields, message", [
    ({"category": "billing query"}, "Choose the account your billing query is about"),
    ({"category": "billing query", "account_number": "5003141594"}, "Choose one of your own linked accounts"),
    ({"location": "here"}, "The location must be 5 to 200 characters"),
    ({"location": "    ab     "}, "The location must be 5 to 200 characters"),
    ({"description": "too short"}, "The description must be 10 to 2000 characters"),
    ({"description": ""}, "Describe the problem"),
    ({"category": "alien landing"}, "Not a valid choice"),
])
def test_invalid_reports_store_nothing_and_say_what_to_fix(app, fields, message):
    response = report(signed_in(app), **fields)
    page = response.get_data(as_text=True)
    assert response.status_code == 400 and message in page and "There is a problem" in page
    assert stored(app) == 0


@pytest.mark.parametrize("answer, team", [(True, "Revenue: collections"), (False, "Revenue: accounts"),
                                          (None, "Revenue: accounts")])
def test_a_billing_query_is_routed_by_billings_answer(app, monkeypatch, answer, team):
    asked = []
    monkeypatch.setattr(complaints, "billing_standing", lambda number: asked.append(number) or answer)
    assert report(signed_in(app), category="billing query", account_number=ACCOUNT).status_code == 303
    complaint = only(app)
    assert asked == [ACCOUNT] and complaint.team == team and complaint.account_in_arrears is answer


def test_without_billing_settings_the_question_is_not_asked(app, monkeypatch):
    monkeypatch.setattr(requests, "get", lambda *args, **kwargs: pytest.fail("billing was called"))
    with app.test_request_context():
        assert complaints.billing_standing(ACCOUNT) is None


def billing_answer(status: int, body: bytes) -> requests.Response:
    answer = requests.Response()
    answer.status_code, answer._content = status, body
    return answer


@pytest.mark.parametrize("answer, expected", [
    (billing_answer(200, b'{"account_number": "4001234568", "balance_due": "812.40", "in_arrears": true}'), True),
    (billing_answer(200, b'{"account_number": "4001234568", "balance_due": "0.00", "in_arrears": false}'), False),
    (billing_answer(200, b'{"in_arrears": "yes"}'), None),
    (billing_answer(200, b'[true]'), None),
    (billing_answer(200, b"<html>not json</html>"), None),
    (billing_answer(503, b'{"in_arrears": true}'), None),
    (requests.Timeout("slow"), None),
    (requests.ConnectionError("down"), None),
])
def test_billing_standing_asks_billings_api_and_survives_its_failures(tmp_path, monkeypatch, caplog, answer, expected):
    """The real call path (passport.call_department) with the token and HTTP faked: billing's
    answer is used only when it is a clear yes or no, and the token never reaches the log."""
    app = make_app(tmp_path, RP_BILLING_API_URL=BILLING_API + "/", RP_BILLING_API_RESOURCE=BILLING_API)
    calls = []

    def fake_get(url, headers, timeout):
        calls.append((url, headers["Authorization"], timeout))
        if isinstance(answer, Exception):
            raise answer
        return answer

    monkeypatch.setattr(requests, "get", fake_get)
    with app.test_request_context():
        monkeypatch.setattr(passport.tokens, "service_token", lambda resource: f"secret-token-for-{resource}")
        assert complaints.billing_standing(ACCOUNT) is expected
    assert calls == [(f"{BILLING_API}/accounts/{ACCOUNT}/standing", f"Bearer secret-token-for-{BILLING_API}", 3)]
    assert (expected is None) == any(r.levelname == "WARNING" for r in caplog.records)
    assert "secret-token" not in caplog.text


def test_a_refused_service_token_still_accepts_the_report(tmp_path, monkeypatch):
    app = make_app(tmp_path, RP_BILLING_API_URL=BILLING_API, RP_BILLING_API_RESOURCE=BILLING_API)

    def refuse(resource):
        raise requests.HTTPError("the IdP refused a token")

    with app.app_context():
        monkeypatch.setattr(passport.tokens, "service_token", refuse)
    assert report(signed_in(app), category="billing query", account_number=ACCOUNT).status_code == 303
    complaint = only(app)
    assert complaint.account_in_arrears is None and complaint.team == "Revenue: accounts"


def test_staff_updates_from_the_command_line(app):
    reference = report(signed_in(app)).headers["Location"].rsplit("/", 1)[1]
    runner = app.test_cli_runner()
    result = runner.invoke(args=["complaints", "update", reference, "--status", "in-progress", "--note", "Crew sent"])
    assert result.exit_code == 0, result.output
    assert runner.invoke(args=["complaints", "update", reference, "--status", "fixed"]).exit_code == 2
    assert runner.invoke(args=["complaints", "update", "CMP-0", "--status", "resolved"]).exit_code == 1
    assert runner.invoke(args=["complaints", "update", reference, "--status", "closed"]).exit_code == 0
    late = runner.invoke(args=["complaints", "update", reference, "--status", "resolved"])
    assert late.exit_code == 1 and "is closed" in late.output
    assert [e.status for e in only(app).events] == ["received", "in progress", "closed"]


def test_the_api_lists_open_requests(app, monkeypatch):
    client = signed_in(app)
    open_one = report(client).headers["Location"].rsplit("/", 1)[1]
    closed = report(client, category="noise").headers["Location"].rsplit("/", 1)[1]
    app.test_cli_runner().invoke(args=["complaints", "update", closed, "--status", "resolved"])
    with app.app_context():
        monkeypatch.setattr(passport.tokens, "check_bearer", lambda header: {"sub": "caller"})
    http = app.test_client()
    body = http.get("/api/residents/sub-1/summary", headers={"Authorization": "Bearer x"}).get_json()
    assert body["department"] == "complaints" and body["count_open"] == 1
    assert body["items"][0]["reference"] == open_one
    assert body["items"][0]["url"] == f"http://localhost:5199/requests/{open_one}"
    detail = http.get(f"/api/requests/{closed}", headers={"Authorization": "Bearer x"}).get_json()
    assert [e["status"] for e in detail["events"]] == ["received", "resolved"]
    assert http.get("/api/requests/CMP-1", headers={"Authorization": "Bearer x"}).status_code == 404
