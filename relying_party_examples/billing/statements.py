"""Billing's arithmetic, apart from the web app: demo statements and meter readings made up
deterministically from an account number, rands and cents, and which statements payments settle."""
from __future__ import annotations

import random
import re
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta, timezone
from decimal import Decimal

from flask_babel import gettext as _

STATEMENT_MONTHS = 6
READING_MONTHS = 12
SETTLED_STATEMENTS = STATEMENT_MONTHS - 2  # the last two are left for the resident to pay
DAYS_TO_PAY = 20
WATER_CENTS_PER_KL = 3_250
ELECTRICITY_CENTS_PER_KWH = 320
REFUSE_CENTS = 18_500
MAX_PAYMENT_CENTS = 1_000_000 * 100
AMOUNT = re.compile(r"-?\d+(?:\.\d+)?")


def month_start(day: date, months_back: int = 0) -> date:
    """The first day of the month ``months_back`` months before ``day``'s month."""
    index = day.year * 12 + day.month - 1 - months_back
    return date(index // 12, index % 12 + 1, 1)


def months_ending(today: date, count: int) -> list[str]:
    """The ``count`` months ("YYYY-MM") up to and including ``today``'s, oldest first."""
    return [f"{month_start(today, back):%Y-%m}" for back in range(count - 1, -1, -1)]


def rands(cents: int) -> str:
    """Cents as rands with two decimals, as the API and CSV files give them: ``123456`` → ``"1234.56"``."""
    return f"{Decimal(cents).scaleb(-2):.2f}"


def rand_label(cents: int) -> str:
    """Cents as a resident reads them: ``123456`` → ``"R1,234.56"``."""
    return f"R{Decimal(cents).scaleb(-2):,.2f}"


def parse_payment(text: str) -> int:
    """An amount typed in rands ("150", "150.5", "R150.00") as cents; ValueError says what is wrong."""
    cleaned = (text or "").strip().removeprefix("R").strip()
    if not cleaned:
        raise ValueError(_("Enter the amount you want to pay, for example 150.00."))
    if not AMOUNT.fullmatch(cleaned):
        raise ValueError(_("Enter the amount in rands using digits and a full stop, for example 150.00."))
    amount = Decimal(cleaned)
    if amount.as_tuple().exponent < -2:
        raise ValueError(_("Enter the amount with at most 2 decimals (cents), for example 150.25."))
    cents = int(amount * 100)
    if cents <= 0:
        raise ValueError(_("The amount must be more than R0.00."))
    if cents > MAX_PAYMENT_CENTS:
        raise ValueError(_("The amount can be at most R1,000,000.00."))
    return cents


# --- demo data -----------------------------------------------------------------------------------
@dataclass
class DemoStatement:
    period: str
    issued_on: date
    due_on: date
    lines: list[dict]

    @property
    def amount_cents(self) -> int:
        return sum(line["amount_cents"] for line in self.lines)


@dataclass
class DemoAccount:
    readings: list[tuple[str, int, int]]  # (month, water_kl, electricity_kwh)
    statements: list[DemoStatement]
    payments: list[tuple[int, datetime]] = field(default_factory=list)  # (cents, paid at) of settled ones


def demo_reading(account_number: str, month: str) -> tuple[int, int]:
    """The meter readings (kl of water, kWh of electricity) of one month: the same every time."""
    rng = random.Random(f"{account_number}:{month}")
    winter = 180 if month[5:] in ("06", "07", "08") else 0
    return rng.randint(9, 32), rng.randint(280, 620) + winter


def demo_account(account_number: str, today: date) -> DemoAccount:
    """Twelve months of readings and six monthly statements ending this month. The last statement
    is due in the future, the one before it is overdue and unpaid, the older ones were paid."""
    rates = random.Random(account_number).randrange(55_000, 160_000, 100)
    months = months_ending(today, READING_MONTHS)
    readings = [(month, *demo_reading(account_number, month)) for month in months]
    usage = {month: (water, power) for month, water, power in readings}
    account = DemoAccount(readings=readings, statements=[])
    periods = months[-STATEMENT_MONTHS:]
    for index, period in enumerate(periods):
        water, power = usage[period]
        issued = date.fromisoformat(f"{period}-01")
        due = issued + timedelta(days=DAYS_TO_PAY)
        if index == len(periods) - 1:
            due = max(due, today + timedelta(days=14))
        account.statements.append(DemoStatement(period, issued, due, [
            {"description": "Property rates", "amount_cents": rates},
            {"description": f"Water: {water} kl at R{rands(WATER_CENTS_PER_KL)}/kl",
             "amount_cents": water * WATER_CENTS_PER_KL},
            {"description": f"Electricity: {power} kWh at R{rands(ELECTRICITY_CENTS_PER_KWH)}/kWh",
             "amount_cents": power * ELECTRICITY_CENTS_PER_KWH},
            {"description": "Refuse removal", "amount_cents": REFUSE_CENTS},
        ]))
    for statement in account.statements[:SETTLED_STATEMENTS]:
        paid_on = statement.due_on - timedelta(days=random.Random(f"{account_number}:{statement.period}").randint(1, 9))
        account.payments.append((statement.amount_cents, datetime.combine(paid_on, time(9), timezone.utc)))
    return account


# --- balances ------------------------------------------------------------------------------------
@dataclass
class Standing:
    balance_cents: int  # billed minus paid; negative when the account is in credit
    in_arrears: bool
    oldest_unpaid_due_on: date | None
    outstanding: dict[str, int]  # period → cents of that statement still unpaid
    as_of: date

    @property
    def amount_due_cents(self) -> int:
        return max(self.balance_cents, 0)

    def status(self, statement) -> str:
        """"Paid", "Due" or "Overdue" for one statement, with what is left of a part-paid one (in
        the page's language)."""
        owed = self.outstanding[statement.period]
        if not owed:
            return _("Paid")
        overdue = statement.due_on < self.as_of
        if owed == statement.amount_cents:
            return _("Overdue") if overdue else _("Due")
        if overdue:
            return _("Overdue: %(amount)s still open", amount=rand_label(owed))
        return _("Due: %(amount)s still open", amount=rand_label(owed))


def standing(statements, paid_cents: int, today: date) -> Standing:
    """Settle ``statements`` (with ``period``, ``amount_cents``, ``due_on``) oldest first from the
    total paid; an unpaid statement past its due date puts the account in arrears."""
    left = paid_cents
    outstanding = {}
    for statement in sorted(statements, key=lambda s: s.period):
        covered = min(left, statement.amount_cents)
        left -= covered
        outstanding[statement.period] = statement.amount_cents - covered
    due_dates = [s.due_on for s in statements if outstanding[s.period] > 0]
    oldest = min(due_dates, default=None)
    billed = sum(s.amount_cents for s in statements)
    return Standing(billed - paid_cents, oldest is not None and oldest < today, oldest, outstanding, today)
