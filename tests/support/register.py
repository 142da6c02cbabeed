"""Putting accounts in the municipal register for tests, with valid Luhn account numbers."""
from __future__ import annotations

from idp.extensions import db
from idp.models import MunicipalAccount
from idp.services import identifiers

HOLDER_ID = "8001015009087"  # a valid South African identity number


def with_check_digit(nine_digits: str) -> str:
    """Nine digits plus the Luhn check digit that makes a valid account number."""
    for digit in "0123456789":
        if identifiers.luhn_ok(nine_digits + digit):
            return nine_digits + digit
    raise AssertionError("unreachable")


def add_account(app, number: str, *, pin: str = "4821", holder_id: str = HOLDER_ID, status: str = "active",
                account_type: str = "residential", address: str = "12 Long Street, Cape Town") -> str:
    with app.app_context():
        db.session.add(MunicipalAccount(
            account_number=number, account_type=account_type, holder_name="T Nkosi", service_address=address,
            erf_number="ERF 1234", status=status, holder_id_digest=identifiers.holder_id_digest(holder_id),
            linking_pin_digest=identifiers.linking_pin_digest(pin)))
        db.session.commit()
    return number
