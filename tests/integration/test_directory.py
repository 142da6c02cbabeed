"""The public services directory: listed departments on the home page and in categories, and a
search that understands everyday words and forgives typos; listing is checked and audited."""
from __future__ import annotations

import json

import pytest

from idp.extensions import db
from idp.models import AuditEvent, Client
from idp.services import DomainError, directory
from tests.support.oidc import make_client

SERVICES = {
    "City Billing": ("bills-and-payments", "See your municipal accounts and statements, and pay them.",
                     "rates water electricity bills statement pay arrears"),
    "Report a Problem": ("report-a-problem", "Report potholes, leaks and outages.",
                         "pothole roads water leak burst pipe streetlight refuse sewage noise"),
    "City Permits": ("permits-and-licences", "Apply for building, event and business permits.",
                     "building plans event business licence"),
}


@pytest.fixture
def listed(app):
    ids = {}
    for name, (category, purpose, keywords) in SERVICES.items():
        client_id, _ = make_client(app, name=name)
        with app.app_context():
            client = db.session.scalar(db.select(Client).where(Client.client_id == client_id))
            client.purpose = purpose
            directory.set_listing(client, listed=True, category=category, keywords=keywords,
                                  service_url=f"https://{category}.example.gov.za/")
        ids[name] = client_id
    make_client(app, name="Internal Tool")  # registered, never listed
    return ids


def names(app, query) -> list[str]:
    with app.app_context():
        return [listing.name for listing in directory.search(query)]


@pytest.mark.parametrize("query, first", [
    ("pothole", "Report a Problem"), ("Potholes on my street", "Report a Problem"),
    ("water leak", "Report a Problem"), ("rates", "City Billing"), ("pay my bill", "City Billing"),
    ("potwhole", "Report a Problem"), ("electrisity", "City Billing"), ("buidling plans", "City Permits"),
    ("rubbish", "Report a Problem"), ("business licence", "City Permits"), ("workshop", None),
    # the examples the search box gives in Afrikaans, isiXhosa, isiZulu and Sesotho
    ("slaggat", "Report a Problem"), ("waterlek", "Report a Problem"), ("eiendomsbelasting", "City Billing"),
    ("umngxuma endleleni", "Report a Problem"), ("amanzi avuzayo", "Report a Problem"), ("iirhafu", "City Billing"),
    ("umgodi emgwaqweni", "Report a Problem"), ("izintela", "City Billing"), ("mokoti tseleng", "Report a Problem"),
    ("ho dutla ha metsi", "Report a Problem"), ("ditefiso tsa thepa", "City Billing"), ("diphemiti", "City Permits"),
])
def test_search_understands_everyday_words_and_typos(app, listed, query, first):
    found = names(app, query)
    assert (found[0] if found else None) == first, found
    assert "Internal Tool" not in found


def test_the_home_page_lists_services_and_searches_without_javascript(app, client, listed):
    home = client.get("/").get_data(as_text=True)
    for name in SERVICES:
        assert name in home
    assert "Internal Tool" not in home and 'action="/services"' in home and 'method="get"' in home
    results = client.get("/services?q=water+leak").get_data(as_text=True)
    assert "Report a Problem" in results and 'href="https://report-a-problem.example.gov.za/"' in results
    assert "1 service found" in results or "services found" in results
    nothing = client.get("/services?q=zzzz").get_data(as_text=True)
    assert "Nothing matched" in nothing
    assert "<script>" not in client.get("/services?q=<script>alert(1)</script>").get_data(as_text=True)


def test_category_pages(app, client, listed):
    page = client.get("/services/category/permits-and-licences").get_data(as_text=True)
    assert "City Permits" in page and "City Billing" not in page
    assert client.get("/services/category/casinos").status_code == 404


def test_a_disabled_or_unlisted_service_disappears(app, client, listed):
    with app.app_context():
        from idp.services import clients as client_service
        client_service.set_disabled(client_service.find_client(listed["City Permits"]), True)
        directory.set_listing(client_service.find_client(listed["City Billing"]), listed=False)
    home = client.get("/").get_data(as_text=True)
    assert "City Permits" not in home and "City Billing" not in home and "Report a Problem" in home


@pytest.mark.parametrize("options, message", [
    ({"category": "casino", "service_url": "https://x.example.gov.za/"}, "category"),
    ({"category": "other", "service_url": None}, "link"),
    ({"category": "other", "service_url": "javascript:alert(1)"}, "https"),
    ({"category": "other", "service_url": "http://x.example.gov.za/"}, "https"),
    ({"category": "other", "service_url": "https://x.example.gov.za/", "keywords": "k" * 501}, "500"),
])
def test_bad_listings_are_refused_and_change_nothing(app, options, message):
    client_id, _ = make_client(app, name="Water")
    with app.app_context():
        client = db.session.scalar(db.select(Client).where(Client.client_id == client_id))
        with pytest.raises(DomainError, match=message):
            directory.set_listing(client, listed=True, **options)
        db.session.rollback()
        client = db.session.scalar(db.select(Client).where(Client.client_id == client_id))
        assert client.listed is False and client.category is None


def test_staff_list_and_unlist_from_the_command_line(app):
    client_id, _ = make_client(app, name="City Libraries")
    runner = app.test_cli_runner()
    result = runner.invoke(args=["clients", "list-service", client_id, "--category", "programs-and-events",
                                 "--url", "https://libraries.example.gov.za/", "--keywords", "books reading"])
    assert result.exit_code == 0, result.output
    bad = runner.invoke(args=["clients", "list-service", client_id, "--category", "programs-and-events",
                              "--url", "ftp://libraries.example.gov.za/"])
    assert bad.exit_code == 1 and "https" in bad.output
    assert runner.invoke(args=["clients", "list-service", "nope", "--category", "other", "--url",
                               "https://x.example.gov.za/"]).exit_code == 1
    listed_json = json.loads(runner.invoke(args=["clients", "list", "--json"]).output)
    mine = next(row for row in listed_json if row["client_id"] == client_id)
    assert mine["listed"] is True and mine["service_url"] == "https://libraries.example.gov.za/"
    assert runner.invoke(args=["clients", "unlist-service", client_id]).exit_code == 0
    with app.app_context():
        events = db.session.scalars(db.select(AuditEvent.event).where(AuditEvent.client_id == client_id)).all()
        assert "client.listed" in events and "client.unlisted" in events
        assert directory.listings() == []


def test_help_is_searchable_with_the_same_search(app, client, listed):
    results = client.get("/services?q=didnt+get+the+sms").get_data(as_text=True)
    assert "I did not get the text message (SMS)" in results
    results = client.get("/services?q=forgot+pasword").get_data(as_text=True)  # typo
    assert 'href="/help/forgot-password"' in results
    index = client.get("/help").get_data(as_text=True)
    assert "I lost my phone" in index and 'href="/contact"' in index
    topic = client.get("/help/lost-phone").get_data(as_text=True)
    assert "recovery codes" in topic
    assert client.get("/help/nothing-here").status_code == 404


def test_the_contact_page_shows_the_configured_channels(tmp_path, smtp_server):
    from tests.conftest import migrated_app

    with migrated_app(tmp_path, smtp_server.port, IDP_SUPPORT_EMAIL="help@capetown.example.gov.za",
                      IDP_SUPPORT_PHONE="0860 103 089", IDP_SUPPORT_HOURS="Weekdays 08:00-17:00") as other:
        page = other.test_client().get("/contact").get_data(as_text=True)
    assert 'href="tel:0860103089"' in page and "help@capetown.example.gov.za" in page and "Weekdays" in page


def test_without_contact_settings_the_page_says_where_to_go(client):
    assert "customer care office" in client.get("/contact").get_data(as_text=True)


def test_administrators_manage_listings_in_the_console_all_or_nothing(app, client):
    from tests.conftest import csrf_token
    from tests.integration.test_admin import staff_client

    http, _ = staff_client(app, email="admin@capetown.gov.za", roles=("administrator",))
    client_id, _ = make_client(app, name="City Libraries")
    path = f"/admin/clients/{client_id}"
    base = {"name": "City Libraries Renamed", "redirect_uris": "https://billing.example.gov.za/cb",
            "scopes": ["openid"], "purpose": "Borrow books and join reading programs."}
    bad = http.post(path, data={**base, "csrf_token": csrf_token(http.get(path).get_data(as_text=True)),
                                "listed": "y", "category": "programs-and-events", "service_url": "javascript:x"})
    assert bad.status_code == 400
    with app.app_context():
        unchanged = db.session.scalar(db.select(Client).where(Client.client_id == client_id))
        assert unchanged.name == "City Libraries" and not unchanged.listed  # nothing half-saved
    good = http.post(path, data={**base, "csrf_token": csrf_token(http.get(path).get_data(as_text=True)),
                                 "listed": "y", "category": "programs-and-events",
                                 "service_url": "https://libraries.example.gov.za/", "keywords": "books reading"})
    assert good.status_code == 303
    results = client.get("/services?q=bookz").get_data(as_text=True)
    assert "City Libraries Renamed" in results and "Borrow books" in results
    with app.app_context():
        event = db.session.scalar(db.select(AuditEvent).where(AuditEvent.event == "client.updated"))
        assert event.detail["changes"]["listed"] == [False, True]
