"""Checklist 38: no truncation or silent modification of passwords. A 100-character password is set
through the real sign-up page; its 72-character prefix (bcrypt's cut-off), its first letter with the
case flipped, and the password without its leading/trailing spaces must all fail at sign-in, while
the exact password works (whitespace is kept as typed, symmetrically at sign-up and sign-in)."""
from __future__ import annotations

import pytest

from idp.extensions import db
from idp.models import User
from tests.integration.test_signin_flows import login, register

EMAIL = "sipho.mthembu@example.org"
LONG = ("Ubuntu means I am because we are; the mountain watches the bay at dawn " * 2)[:100]


def _register_verified(app, client, password):
    assert register(client, email=EMAIL, name="Sipho Mthembu", password=password).status_code == 200
    with app.app_context():
        user = db.session.scalar(db.select(User).where(User.email == EMAIL))
        user.email_verified = True
        db.session.commit()


def test_item_38_long_password_is_not_truncated(app, client):
    assert len(LONG) == 100
    _register_verified(app, client, LONG)
    assert login(app.test_client(), email=EMAIL, password=LONG[:72]).status_code == 401
    assert login(app.test_client(), email=EMAIL, password=LONG[:99]).status_code == 401
    assert login(app.test_client(), email=EMAIL, password=LONG + "x").status_code == 401
    assert login(app.test_client(), email=EMAIL, password=LONG).status_code == 303


def test_item_38_case_is_significant(app, client):
    _register_verified(app, client, LONG)
    flipped = LONG[0].swapcase() + LONG[1:]
    assert login(app.test_client(), email=EMAIL, password=flipped).status_code == 401
    assert login(app.test_client(), email=EMAIL, password=LONG.upper()).status_code == 401


@pytest.mark.parametrize("typed, other", [
    ("  table mountain cable car  ", "table mountain cable car"),
    ("table mountain cable car", "  table mountain cable car  "),
    ("table  mountain cable car", "table mountain cable car"),
])
def test_item_38_whitespace_is_kept_as_typed_both_ways(app, client, typed, other):
    _register_verified(app, client, typed)
    assert login(app.test_client(), email=EMAIL, password=other).status_code == 401
    assert login(app.test_client(), email=EMAIL, password=typed).status_code == 303


def test_item_38_the_stored_hash_covers_the_whole_password(app, client):
    _register_verified(app, client, LONG)
    hasher = app.extensions["idp.hasher"]
    with app.app_context():
        stored = db.session.scalar(db.select(User.password_hash).where(User.email == EMAIL))
    assert hasher.verify(stored, LONG)
    assert not hasher.verify(stored, LONG[:72]) and not hasher.verify(stored, LONG[:-1])


def test_item_38_whitespace_policy_is_documented():
    from pathlib import Path

    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    assert "leading and trailing ones" in readme and "nothing is changed or cut" in readme
