"""City Billing: the accounts of the ``municipal_accounts`` claim, their statements (CSV
downloads), water and electricity charts, an idempotent sandbox payment, and an API other
departments call with a ``client_credentials`` token (is this account in arrears?)."""
from __future__ import annotations

import csv
import io
import re
import secrets
import string
from datetime import date, datetime, timezone

from flask import Blueprint, Flask, abort, g, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_sqlalchemy import SQLAlchemy
from sqlalchemy import delete, func, select
from sqlalchemy.exc import IntegrityError

from relying_party_examples.billing import statements as ledger
from relying_party_examples.billing.charts import bar_chart
from relying_party_examples.common import Passport, Settings
from relying_party_examples.common.i18n import labelled, local_date

db = SQLAlchemy()
passport = Passport(db)

WELL_FORMED_ACCOUNT = re.compile(r"\d{10}")
PAYMENT_KEY = re.compile(r"[A-Za-z0-9_-]{16,64}")
REFERENCE_ALPHABET = string.ascii_uppercase.replace("O", "").replace("I", "") + "23456789"

# The values of the municipal_accounts claim, as residents read them (the claim keeps the codes).
ACCOUNT_TYPES = {"residential": _l("Residential"), "business": _l("Business"), "government": _l("Government"),
                 "managing_agent": _l("Managing agent")}
ROLES = {"owner": _l("Owner"), "tenant": _l("Tenant"), "managing_agent": _l("Managing agent"),
         "company_representative": _l("Company representative")}
# … and inside a sentence ("you are its owner").
ROLES_IN_SENTENCE = {"owner": _l("owner"), "tenant": _l("tenant"), "managing_agent": _l("managing agent"),
                     "company_representative": _l("company representative")}


class Statement(db.Model):
    __tablename__ = "statements"
    __table_args__ = (db.UniqueConstraint("account_number", "period"),)
    id = db.Column(db.Integer, primary_key=True)
    account_number = db.Column(db.String(32), nullable=False, index=True)
    period = db.Column(db.String(7), nullable=False)  # YYYY-MM
    issued_on = db.Column(db.Date, nullable=False)
    due_on = db.Column(db.Date, nullable=False)
    amount_cents = db.Column(db.Integer, nullable=False)
    lines = db.Column(db.JSON, nullable=False)  # [{"description", "amount_cents"}]


class Reading(db.Model):
    __tablename__ = "readings"
    __table_args__ = (db.UniqueConstraint("account_number", "month"),)
    id = db.Column(db.Integer, primary_key=True)
    account_number = db.Column(db.String(32), nullable=False, index=True)
    month = db.Column(db.String(7), nullable=False)  # YYYY-MM
    water_kl = db.Column(db.Integer, nullable=False)
    electricity_kwh = db.Column(db.Integer, nullable=False)


class Payment(db.Model):
    __tablename__ = "payments"
    id = db.Column(db.Integer, primary_key=True)
    account_number = db.Column(db.String(32), nullable=False, index=True)
    sub = db.Column(db.String(255), index=True)  # None: paid before billing knew anyone (demo history)
    amount_cents = db.Column(db.Integer, nullable=False)
    reference = db.Column(db.String(16), nullable=False, unique=True)
    idempotency_key = db.Column(db.String(80), nullable=False, unique=True)
    created_at = db.Column(db.DateTime(timezone=True), nullable=False)


class ResidentAccount(db.Model):
    """Which accounts a resident's claim listed when they last used billing (for the summary API)."""
    __tablename__ = "resident_accounts"
    sub = db.Column(db.String(255), primary_key=True)
    account_number = db.Column(db.String(32), primary_key=True)


pages = Blueprint("billing", __name__, template_folder="templates")
api = Blueprint("billing_api", __name__, url_prefix="/api")


def create_app(overrides: dict | None = None) -> Flask:
    settings = Settings.load("billing", 5101, overrides)
    app = Flask(__name__)
    passport.init_app(app, settings, title=_l("City Billing"), slug="billing",
                      scope="openid profile email municipal_accounts notification_preferences")
    app.jinja_env.filters.update(
        rands=ledger.rand_label,
        # Month and day names in the page's language: "1 March 2026", "March 2026", "Mar".
        long_date=lambda day: local_date(day, "d MMMM y"),
        month_name=lambda month: local_date(month, "LLLL y"),
        month_abbr=lambda month: local_date(month, "LLL"),
        account_type=lambda code: labelled(ACCOUNT_TYPES, code),
        role=lambda code: labelled(ROLES, code),
        role_in_sentence=lambda code: labelled(ROLES_IN_SENTENCE, code, capitalize=False))
    app.register_blueprint(pages)
    app.register_blueprint(api)
    return app


# --- the ledger ----------------------------------------------------------------------------------
def new_reference() -> str:
    return "PAY-" + "".join(secrets.choice(REFERENCE_ALPHABET) for _position in range(8))


def ensure_demo_data(number: str) -> None:
    """Give an account billing has never seen its demo readings, statements and settled payments."""
    if db.session.scalar(select(Statement.id).where(Statement.account_number == number).limit(1)):
        return
    demo = ledger.demo_account(number, date.today())
    db.session.add_all(Reading(account_number=number, month=month, water_kl=water, electricity_kwh=power)
                       for month, water, power in demo.readings)
    db.session.add_all(Statement(account_number=number, period=s.period, issued_on=s.issued_on, due_on=s.due_on,
                                 amount_cents=s.amount_cents, lines=s.lines) for s in demo.statements)
    db.session.add_all(Payment(account_number=number, amount_cents=cents, reference=new_reference(),
                               idempotency_key=f"demo-{number}-{index}", created_at=paid_at)
                       for index, (cents, paid_at) in enumerate(demo.payments))
    try:
        db.session.commit()
    except IntegrityError:  # another request generated them at the same moment
        db.session.rollback()


def account_standing(number: str) -> ledger.Standing:
    rows = db.session.scalars(select(Statement).where(Statement.account_number == number)).all()
    paid = db.session.scalar(select(func.coalesce(func.sum(Payment.amount_cents), 0))
                             .where(Payment.account_number == number))
    return ledger.standing(rows, paid, date.today())


# --- pages ---------------------------------------------------------------------------------------
@pages.before_request
def remember_accounts() -> None:
    """Keep ``sub`` → account numbers in step with the signed-in resident's claim."""
    resident = g.get("resident")
    if not resident:
        return
    wanted = {a.get("account_number") for a in resident.get("municipal_accounts") or []} - {None}
    known = set(db.session.scalars(select(ResidentAccount.account_number)
                                   .where(ResidentAccount.sub == resident["sub"])))
    if wanted == known:
        return
    db.session.execute(delete(ResidentAccount).where(ResidentAccount.sub == resident["sub"],
                                                     ResidentAccount.account_number.in_(known - wanted)))
    db.session.add_all(ResidentAccount(sub=resident["sub"], account_number=n) for n in wanted - known)
    try:
        db.session.commit()
    except IntegrityError:  # a parallel request of the same resident did it
        db.session.rollback()


def claimed_account(number: str) -> dict:
    """The signed-in resident's claim entry for ``number``; 404 for an account not theirs."""
    for account in g.resident.get("municipal_accounts") or []:
        if account.get("account_number") == number:
            ensure_demo_data(number)
            return account
    abort(404)


@pages.get("/")
def home():
    return render_template("billing/home.html")


def render_account(number: str, *, amount: str | None = None, error: str | None = None, status: int = 200):
    """The account page; the payment form carries a fresh ``payment_key`` unless it is being redisplayed."""
    account = claimed_account(number)
    standing = account_standing(number)
    readings = db.session.scalars(select(Reading).where(Reading.account_number == number)
                                  .order_by(Reading.month)).all()
    return render_template(
        "billing/account.html", account=account, standing=standing, error=error,
        language_next=url_for(".account", number=number),
        amount=ledger.rands(standing.amount_due_cents) if amount is None else amount,
        payment_key=request.form.get("payment_key") if error else secrets.token_urlsafe(24),
        statements=db.session.scalars(select(Statement).where(Statement.account_number == number)
                                      .order_by(Statement.period.desc())).all(),
        payments=db.session.scalars(select(Payment).where(Payment.account_number == number)
                                    .order_by(Payment.created_at.desc())).all(),
        water=bar_chart([(r.month, r.water_kl) for r in readings]),
        electricity=bar_chart([(r.month, r.electricity_kwh) for r in readings]),
    ), status


@pages.get("/accounts/<number>")
@passport.login_required()
def account(number):
    return render_account(number)


@pages.get("/accounts/<number>/statements/<period>.csv")
@passport.login_required()
def statement_csv(number, period):
    claimed_account(number)
    statement = db.session.scalar(select(Statement).where(Statement.account_number == number,
                                                          Statement.period == period))
    if statement is None:
        abort(404)
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow([_("Description"), _("Amount (ZAR)")])
    # The lines' descriptions are stored as they were issued, in English.
    writer.writerows([line["description"], ledger.rands(line["amount_cents"])] for line in statement.lines)
    writer.writerow([_("Total"), ledger.rands(statement.amount_cents)])
    return out.getvalue(), 200, {
        "Content-Type": "text/csv; charset=utf-8",
        "Content-Disposition": f'attachment; filename="statement-{number}-{period}.csv"'}


def payment_for_key(key: str, number: str) -> Payment | None:
    """The payment this form submission already made, if any (404 if the key is someone else's)."""
    payment = db.session.scalar(select(Payment).where(Payment.idempotency_key == key))
    if payment is not None and (payment.sub != g.resident["sub"] or payment.account_number != number):
        abort(404)
    return payment


@pages.post("/accounts/<number>/pay")
@passport.login_required()
def pay(number):
    """Record a sandbox payment once per ``payment_key``, however often the form is submitted."""
    claimed_account(number)
    key = request.form.get("payment_key", "")
    if not PAYMENT_KEY.fullmatch(key):
        return render_template("passport/message.html",
                               message=_("This payment form is incomplete. Go back, reload the page and try again."),
                               language_next=url_for(".account", number=number)), 400
    payment = payment_for_key(key, number)
    if payment is None:
        try:
            cents = ledger.parse_payment(request.form.get("amount", ""))
        except ValueError as exc:
            return render_account(number, amount=request.form.get("amount", ""), error=str(exc), status=400)
        payment = Payment(account_number=number, sub=g.resident["sub"], amount_cents=cents,
                          reference=new_reference(), idempotency_key=key, created_at=datetime.now(timezone.utc))
        db.session.add(payment)
        try:
            db.session.commit()
        except IntegrityError:  # the same form submitted twice at once: the other request paid
            db.session.rollback()
            payment = payment_for_key(key, number)
            if payment is None:
                raise
    return redirect(url_for(".receipt", reference=payment.reference), 303)


@pages.get("/payments/<reference>")
@passport.login_required()
def receipt(reference):
    payment = db.session.scalar(select(Payment).where(Payment.reference == reference,
                                                      Payment.sub == g.resident["sub"]))
    if payment is None:
        abort(404)
    return render_template("billing/receipt.html", payment=payment,
                           standing=account_standing(payment.account_number))


# --- API for other departments -------------------------------------------------------------------
@api.get("/accounts/<number>/standing")
@passport.require_token
def standing(number):
    """Whether an account is in arrears. Any well-formed number gets demo statements on demand."""
    known = db.session.scalar(select(Statement.id).where(Statement.account_number == number).limit(1))
    if not known and not WELL_FORMED_ACCOUNT.fullmatch(number):
        return {"error": "not_found"}, 404
    ensure_demo_data(number)
    result = account_standing(number)
    return {"account_number": number, "balance_due": ledger.rands(result.amount_due_cents), "currency": "ZAR",
            "in_arrears": result.in_arrears,
            "oldest_unpaid_due_on": result.oldest_unpaid_due_on and result.oldest_unpaid_due_on.isoformat()}


@api.get("/residents/<sub>/summary")
@passport.require_token
def summary(sub):
    """Each account the resident used billing with, and whether it is in arrears."""
    items = []
    for number in db.session.scalars(select(ResidentAccount.account_number).where(ResidentAccount.sub == sub)
                                     .order_by(ResidentAccount.account_number)):
        ensure_demo_data(number)
        result = account_standing(number)
        items.append({
            "title": f"Account {number}", "status": "in arrears" if result.in_arrears else "paid up",
            "amount_due": ledger.rands(result.amount_due_cents),
            "due_on": result.oldest_unpaid_due_on and result.oldest_unpaid_due_on.isoformat(),
            "url": passport.settings.base_url + url_for("billing.account", number=number)})
    return {"department": "billing", "items": items, "count_open": sum(i["status"] == "in arrears" for i in items)}
