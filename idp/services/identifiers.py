"""Checking the numbers residents type from their bills and identity documents: municipal account
numbers (format configurable per city) and South African identity numbers."""
from __future__ import annotations

import re
from datetime import date

from flask import current_app

from idp.security.crypto import keyed_digest

ID_PURPOSE = "register-holder-id"
PIN_PURPOSE = "register-linking-pin"


def luhn_ok(digits: str) -> bool:
    """The Luhn (mod 10) check over a string of digits."""
    if not digits.isdigit():
        return False
    total = 0
    for index, char in enumerate(reversed(digits)):
        value = int(char)
        if index % 2:
            value = value * 2 - 9 if value > 4 else value * 2
        total += value
    return total % 10 == 0


def clean_account_number(raw: str) -> str:
    """An account number as typed (spaces, dashes and dots removed, letters upper-cased)."""
    return re.sub(r"[\s\-.]", "", raw or "").upper()[:64]


def account_number_ok(number: str) -> bool:
    """Whether ``number`` (cleaned) fits the city's format and check digit."""
    settings = current_app.config["IDP_SETTINGS"]
    if not re.fullmatch(settings.account_number_pattern, number):
        return False
    return settings.account_number_check != "luhn" or luhn_ok(number)


def clean_id_number(raw: str) -> str:
    return re.sub(r"\s", "", raw or "")[:32]


def sa_id_ok(number: str) -> bool:
    """A South African identity number: 13 digits, a real date of birth (YYMMDD), citizenship
    0 or 1, and the Luhn check digit."""
    if not re.fullmatch(r"\d{13}", number) or number[10] not in "01":
        return False
    year, month, day = int(number[0:2]), int(number[2:4]), int(number[4:6])
    try:
        date(2000 + year, month, day)  # a leap year either way when the century's is
    except ValueError:
        return False
    return luhn_ok(number)


def holder_id_digest(id_number: str) -> str:
    """How a holder's identity number is kept in the register (a keyed digest, never the number)."""
    return keyed_digest(clean_id_number(id_number), ID_PURPOSE)


def linking_pin_digest(pin: str) -> str:
    """How a bill's linking PIN is kept in the register."""
    return keyed_digest(re.sub(r"\s", "", pin or ""), PIN_PURPOSE)
