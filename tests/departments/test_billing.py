"""City Billing: accounts from the claim only, demo statements and charts, CSV statements, payment
validation, idempotent payments, arrears, receipts for their payer only, and the API's JSON."""
from __future__ import annotations

import re
from datetime import date
from decimal import Decimal

import pytest
from sqlalchemy import func, select

from relying_party_examples.billing.app import Payment, Statement, create_app, db, passport
from relying_party_examples.billing.statements import demo_account, parse_payment

ACCOUNT = "4001234568"
OTHER = "5003141594"


def claims(sub="sub-1", accounts=(ACCOUNT,)):
    return {"sub": sub, "name": "Thandi Nkosi", "email": "thandi@example.org", "acr": "urn:ecitizen:acr:password",
            "amr": ["pwd"], "sid": f"sid-{sub}",
            "municipal_accounts": [{"account_number": n, "account_type": "rates", "role": "owner"} for n in accounts]}


@pytest.fixture
def app(tmp_path):
    return create_app({"RP_ISSUER": "http://idp.invalid", "RP_CLIENT_ID": "billing-test", "RP_CLIENT_SECRET": "s",
                       "RP_DATABASE_URL": f"sqlite:///{tmp_path}/billing.db", "RP_BASE_URL": "http://localhost:5199",
                       "RP_SECRET_KEY": "k"})


def signed_in(app, **kwargs):
    client = app.test_client()
    with app.app_context():
        client.set_cookie("billing_session", passport.start_session(claims(**kwargs), "id-token-placeholder"))
    return client


@pytest.fixture
def http(app):
    return signed_in(app)


def form_fields(page: str) -> dict:
    return dict(re.findall(r'name="(csrf_token|payment_key)" value="([^"]+)"', page))


def pay(http, amount, number=ACCOUNT, fields=None):
    fields = fields or form_fields(http.get(f"/accounts/{number}").get_data(as_text=True))
    return http.post(f"/accounts/{number}/pay", data={**fields, "amount": amount})


def payments(app) -> int:
    with app.app_context():
        return db.session.scalar(select(func.count()).select_from(Payment).where(Payment.sub.is_not(None)))


def balance(http) -> str:
    return re.search(r"Balance due: R([\d,.]+)", http.get(f"/accounts/{ACCOUNT}").get_data(as_text=True))[1]


def test_signed_out_home_offers_sign_in_and_pages_need_it(app):
    client = app.test_client()
    assert 'href="/login"' in client.get("/").get_data(as_text=True)
    assert client.get(f"/accounts/{ACCOUNT}").headers["Location"].startswith("/login?next=")


def test_home_lists_the_accounts_of_the_claim(app):
    page = signed_in(app, accounts=(ACCOUNT, OTHER)).get("/").get_data(as_text=True)
    assert f'href="/accounts/{ACCOUNT}"' in page and f'href="/accounts/{OTHER}"' in page
    empty = signed_in(app, sub="sub-2", accounts=()).get("/").get_data(as_text=True)
    assert "My municipal accounts" in empty and "/accounts/" not in empty


def test_accounts_outside_the_claim_are_not_found(app, http):
    fields = form_fields(http.get(f"/accounts/{ACCOUNT}").get_data(as_text=True))
    assert http.get(f"/accounts/{OTHER}").status_code == 404
    assert http.get(f"/accounts/{OTHER}/statements/{date.today():%Y-%m}.csv").status_code == 404
    assert http.post(f"/accounts/{OTHER}/pay", data={**fields, "amount": "10.00"}).status_code == 404
    assert payments(app) == 0
    with app.app_context():
        assert db.session.scalar(select(Statement).where(Statement.account_number == OTHER)) is None


def test_account_page_shows_statements_arrears_and_both_charts(http):
    page = http.get(f"/accounts/{ACCOUNT}").get_data(as_text=True)
    assert page.count(".csv\"") == 6
    assert "In arrears" in page and page.count(">Overdue<") == 1 and page.count(">Due<") == 1
    assert page.count("<svg") == 2 and page.count('<rect') == 24
    assert '<title id="water-chart-title">' in page and '<title id="electricity-chart-title">' in page
    assert page.count("<details>") == 2


def test_statement_csv_has_lines_and_total(app, http):
    http.get(f"/accounts/{ACCOUNT}")
    period = f"{date.today():%Y-%m}"
    response = http.get(f"/accounts/{ACCOUNT}/statements/{period}.csv")
    assert response.status_code == 200 and response.mimetype == "text/csv"
    assert response.headers["Content-Disposition"] == f'attachment; filename="statement-{ACCOUNT}-{period}.csv"'
    rows = [line.split(",") for line in response.get_data(as_text=True).splitlines()]
    with app.app_context():
        statement = db.session.scalar(select(Statement).where(Statement.account_number == ACCOUNT,
                                                              Statement.period == period))
    assert rows[0] == ["Description", "Amount (ZAR)"] and rows[1][0] == "Property rates"
    assert rows[-1] == ["Total", f"{statement.amount_cents // 100}.{statement.amount_cents % 100:02d}"]
    assert sum(int(r[-1].replace(".", "")) for r in rows[1:-1]) == statement.amount_cents
    assert http.get(f"/accounts/{ACCOUNT}/statements/1999-01.csv").status_code == 404


@pytest.mark.parametrize("amount", ["0", "-5.00", "10.123", "ten rand", "", "1000000.01"])
def test_bad_amounts_are_explained_and_store_nothing(app, http, amount):
    response = pay(http, amount)
    page = response.get_data(as_text=True)
    assert response.status_code == 400
    assert 'aria-invalid="true"' in page and 'id="amount-error"' in page and "There is a problem" in page
    assert payments(app) == 0


def test_a_payment_form_without_its_key_is_refused(app, http):
    fields = form_fields(http.get(f"/accounts/{ACCOUNT}").get_data(as_text=True))
    assert pay(http, "10.00", fields={"csrf_token": fields["csrf_token"]}).status_code == 400
    assert payments(app) == 0


def test_submitting_the_same_form_twice_pays_once(app, http):
    fields = form_fields(http.get(f"/accounts/{ACCOUNT}").get_data(as_text=True))
    first = pay(http, "150.00", fields=fields)
    second = pay(http, "150.00", fields=fields)
    assert first.status_code == second.status_code == 303
    assert first.headers["Location"] == second.headers["Location"]
    assert re.fullmatch(r"/payments/PAY-[A-Z0-9]{8}", first.headers["Location"])
    assert payments(app) == 1
    pay(http, "1.00")  # a freshly rendered form is a new payment
    assert payments(app) == 2


def test_paying_the_balance_ends_the_arrears(app, http):
    assert "In arrears" in http.get(f"/accounts/{ACCOUNT}").get_data(as_text=True)
    due = balance(http).replace(",", "")
    part = pay(http, "1.00")
    assert "still in arrears" in http.get(part.headers["Location"]).get_data(as_text=True)
    receipt = http.get(pay(http, str(Decimal(due) - 1)).headers["Location"]).get_data(as_text=True)
    assert "R0.00" in receipt and "still in arrears" not in receipt
    page = http.get(f"/accounts/{ACCOUNT}").get_data(as_text=True)
    assert "Not in arrears" in page and balance(http) == "0.00"


def test_a_receipt_is_shown_only_to_its_payer(app, http):
    location = pay(http, "25.00").headers["Location"]
    assert "R25.00" in http.get(location).get_data(as_text=True)
    assert signed_in(app, sub="sub-2").get(location).status_code == 404
    assert app.test_client().get(location).status_code == 302


def test_demo_statements_are_deterministic_and_one_is_overdue():
    today = date(2025, 3, 31)
    first, again = demo_account(ACCOUNT, today), demo_account(ACCOUNT, today)
    assert [s.amount_cents for s in first.statements] == [s.amount_cents for s in again.statements]
    assert first.statements[-1].period == "2025-03" and first.statements[-1].due_on > today
    assert first.statements[-2].due_on < today and len(first.payments) == 4
    assert parse_payment(" R150.5 ") == 15050


@pytest.fixture
def api(app, monkeypatch):
    with app.app_context():
        monkeypatch.setattr(passport.tokens, "check_bearer",
                            lambda header: {"sub": "complaints", "client_id": "complaints"})
    return app.test_client()


def test_standing_reports_arrears_until_paid(app, http, api):
    body = api.get(f"/api/accounts/{ACCOUNT}/standing").get_json()
    assert body["in_arrears"] is True and body["currency"] == "ZAR"
    assert re.fullmatch(r"\d{4}-\d{2}-\d{2}", body["oldest_unpaid_due_on"])
    assert body["balance_due"] == balance(http).replace(",", "")
    pay(http, body["balance_due"])
    assert api.get(f"/api/accounts/{ACCOUNT}/standing").get_json() == {
        "account_number": ACCOUNT, "balance_due": "0.00", "currency": "ZAR", "in_arrears": False,
        "oldest_unpaid_due_on": None}


def test_standing_of_unknown_numbers(api):
    assert api.get("/api/accounts/9990001112/standing").get_json()["in_arrears"] is True  # generated on demand
    response = api.get("/api/accounts/not-a-number/standing")
    assert response.status_code == 404 and response.get_json() == {"error": "not_found"}


def test_summary_lists_the_accounts_the_resident_used(app, api):
    assert api.get("/api/residents/sub-1/summary").get_json() == {"department": "billing", "items": [],
                                                                  "count_open": 0}
    signed_in(app, accounts=(ACCOUNT, OTHER)).get("/")
    body = api.get("/api/residents/sub-1/summary").get_json()
    assert body["count_open"] == 2 and [i["title"] for i in body["items"]] == [f"Account {ACCOUNT}", f"Account {OTHER}"]
    assert body["items"][0]["status"] == "in arrears"
    assert body["items"][0]["url"] == f"http://localhost:5199/accounts/{ACCOUNT}"
    signed_in(app, accounts=(OTHER,)).get("/")  # the account was unlinked at the IdP
    assert [i["title"] for i in api.get("/api/residents/sub-1/summary").get_json()["items"]] == [f"Account {OTHER}"]
