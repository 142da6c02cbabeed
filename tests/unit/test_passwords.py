"""The password policy (NIST SP 800-63B rev 4) and hashing helpers."""
from __future__ import annotations

import pytest
from flask import Flask
from flask_babel import Babel

from idp.services.passwords import Hasher, check_policy, normalise, strength_hint


@pytest.fixture(scope="module", autouse=True)
def _babel_context():
    app = Flask(__name__)
    Babel(app)
    with app.app_context():
        yield


@pytest.mark.parametrize("password", [
    "correct horse battery stapler",
    "purple elephants dance at dawn",
    "x" * 10 + "ébène-vélo-42",
    "a9$Kd" * 12 + "zQ!m",  # 64 characters
    ("Umuntu ngumuntu ngabantu " * 11)[:256],  # 256 characters
])
def test_accepted(password):
    assert check_policy(password, 12).ok, password


@pytest.mark.parametrize("password, fragment", [
    ("short7!", "at least 12"),
    ("elevenchars", "at least 12"),
    ("Password12345678", "too easy"),
    ("1qaz2wsx3edc4rfv", "too common"),
    ("aaaaaaaaaaaaaaaa", "too"),
    ("ecitizen2026!!", "for this site"),
    ("capetown2026", "too easy"),
    ("x" * 257, "at most 256"),
])
def test_refused_with_reason(password, fragment):
    result = check_policy(password, 12)
    assert not result.ok
    assert fragment in result.reason


def test_email_in_password_refused():
    result = check_policy("amara.dlamini@example.org!", 12, email="amara.dlamini@example.org")
    assert not result.ok and "email" in result.reason
    assert not check_policy("amaradlamini99", 12, email="amaradlamini@example.org").ok


def test_length_counts_code_points_after_nfkc():
    # 12 code points of CJK text: accepted; combining forms are normalised before counting.
    assert check_policy("日本語のパスワードはとても", 12).ok
    assert len(normalise("ﬁ")) == 2  # NFKC expands the ligature
    assert check_policy("😀" * 6, 12).ok is False  # six emoji are six characters, not 24 bytes


def test_min_length_follows_setting():
    assert not check_policy("correct horse battery", 30).ok
    assert check_policy("correct horse battery", 12).ok


def test_hash_verify_and_dummy():
    hasher = Hasher(19456, 2, 1, 2)
    stored = hasher.hash("correct horse battery stapler")
    assert stored.startswith("$argon2id$")
    assert hasher.verify(stored, "correct horse battery stapler")
    assert not hasher.verify(stored, "Correct horse battery stapler")
    assert not hasher.verify(None, "correct horse battery stapler")
    # NFKC: the same password typed in a decomposed form matches.
    accented = hasher.hash("caf\u00e9 au lait tous les jours")
    assert hasher.verify(accented, "cafe\u0301 au lait tous les jours")


def test_strength_hint_range():
    assert strength_hint("aaaa") <= 1
    assert strength_hint("correct horse battery stapler") >= 3
