"""Programs and Events: a public list, registering once, cancelling and registering again, full and
past programs refused with nothing stored, registrations private to their resident, and the API."""
from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import func, select

from relying_party_examples.programs.app import Program, Registration, create_app, db, passport


@pytest.fixture
def app(tmp_path):
    return create_app({"RP_ISSUER": "http://idp.invalid", "RP_CLIENT_ID": "programs-test", "RP_CLIENT_SECRET": "s",
                       "RP_DATABASE_URL": f"sqlite:///{tmp_path}/programs.db", "RP_BASE_URL": "http://localhost:5199",
                       "RP_SECRET_KEY": "k"})


def signed_in(app, sub="sub-1"):
    client = app.test_client()
    with app.app_context():
        client.set_cookie("programs_session", passport.start_session(
            {"sub": sub, "name": "Thandi Nkosi", "acr": "urn:ecitizen:acr:password", "sid": f"sid-{sub}"}, None))
    return client


def post(client, path):
    token = re.search(r'name="csrf_token" value="([^"]+)"', client.get("/programs/youth-coding-club")
                      .get_data(as_text=True))[1]
    return client.post(path, data={"csrf_token": token})


def live(app, slug="youth-coding-club") -> int:
    with app.app_context():
        return db.session.scalar(select(func.count()).select_from(Registration).join(Program).where(
            Program.slug == slug, Registration.cancelled_at.is_(None)))


def test_the_list_is_public_and_invites_to_sign_in(app):
    page = app.test_client().get("/").get_data(as_text=True)
    assert "Water-wise gardening workshop" in page and "Sign in with eCitizen Passport" in page
    assert 'href="/login"' in page and ", 10:00 · Kirstenbosch Centre" in page  # seeded 10:00 Cape Town time
    detail = app.test_client().get("/programs/ward-115-meeting").get_data(as_text=True)
    assert "/programs/ward-115-meeting/register" not in detail and "Sign in with eCitizen Passport" in detail


def test_register_once_cancel_and_register_again(app):
    client = signed_in(app)
    assert post(client, "/programs/youth-coding-club/register").status_code == 303
    assert post(client, "/programs/youth-coding-club/register").status_code == 303  # no duplicate
    assert live(app) == 1
    assert "Youth coding club" in client.get("/registrations").get_data(as_text=True)
    assert post(client, "/programs/youth-coding-club/cancel").status_code == 303 and live(app) == 0
    assert post(client, "/programs/youth-coding-club/cancel").status_code == 404
    assert post(client, "/programs/youth-coding-club/register").status_code == 303 and live(app) == 1
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(Registration)) == 1  # the row was revived


def test_a_full_program_refuses_and_stores_nothing(app):
    for sub in ("sub-1", "sub-2"):
        post(signed_in(app, sub), "/programs/youth-coding-club/register")
    third = post(signed_in(app, "sub-3"), "/programs/youth-coding-club/register")
    assert third.status_code == 409 and "This program is full" in third.get_data(as_text=True)
    assert live(app) == 2
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(Registration).where(Registration.sub == "sub-3")) == 0


def test_a_past_program_is_closed(app):
    with app.app_context():
        program = db.session.scalar(select(Program).where(Program.slug == "holiday-reading"))
        program.starts_at = datetime.now(timezone.utc) - timedelta(hours=1)
        db.session.commit()
    response = post(signed_in(app), "/programs/holiday-reading/register")
    assert response.status_code == 409 and "already started" in response.get_data(as_text=True)
    assert live(app, "holiday-reading") == 0


def test_nobody_cancels_someone_elses_registration(app):
    post(signed_in(app), "/programs/youth-coding-club/register")
    assert post(signed_in(app, "sub-2"), "/programs/youth-coding-club/cancel").status_code == 404
    assert live(app) == 1


def test_the_api(app, monkeypatch):
    post(signed_in(app), "/programs/water-wise-gardening/register")
    with app.app_context():
        monkeypatch.setattr(passport.tokens, "check_bearer", lambda header: {"sub": "caller"})
    http = app.test_client()
    body = http.get("/api/residents/sub-1/summary", headers={"Authorization": "Bearer x"}).get_json()
    assert body["department"] == "programs" and body["count_open"] == 1
    assert body["items"][0]["title"] == "Water-wise gardening workshop"
    assert body["items"][0]["url"] == "http://localhost:5199/programs/water-wise-gardening"
    listing = http.get("/api/programs", headers={"Authorization": "Bearer x"}).get_json()["programs"]
    assert len(listing) == 6 and next(p for p in listing if p["slug"] == "water-wise-gardening")["places_left"] == 39
