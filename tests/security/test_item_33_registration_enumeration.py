"""Checklist 33: No enumeration on registration. Registering an address that already has an
account (typed exactly, in other case, or in full-width characters) must answer exactly like a new
registration (status, page, header names and values, cookie shape), do the same work (one argon2
hash, one mail queued, no SMTP wait in the request) so timing cannot tell, create no second account
and leave the existing one untouched, and mail the owner a warning instead of a verification link."""
from __future__ import annotations

import re

import pytest

from idp.extensions import db
from idp.models import User
from idp.models.outbound import OutboundMail
from tests.conftest import blank_tokens
from tests.integration.test_signin_flows import make_user, register

VARYING = {"Date", "X-Request-ID", "Set-Cookie", "Content-Security-Policy", "Content-Length"}


def _shape(response) -> tuple:
    headers = sorted((k, v) for k, v in response.headers.items() if k not in VARYING)
    cookies = sorted(re.sub(r"=[^;]*", "=", h, count=1) for h in response.headers.getlist("Set-Cookie"))
    return response.status_code, headers, cookies, blank_tokens(response.get_data(as_text=True))


@pytest.mark.parametrize("existing_as", ["amara@example.org", "AMARA@Example.ORG", "ａｍａｒａ@example.org"])
def test_item_33_a_taken_address_answers_and_works_exactly_like_a_new_one(app, smtp_server, monkeypatch, existing_as):
    owner = make_user(app)
    with app.app_context():
        before = db.session.get(User, owner).password_hash
    hasher = app.extensions["idp.hasher"]
    hashes: list[str] = []
    real_hash = hasher.hash
    monkeypatch.setattr(hasher, "hash", lambda password: hashes.append(password) or real_hash(password))

    def queued() -> int:
        with app.app_context():
            return db.session.scalar(db.select(db.func.count()).select_from(OutboundMail))

    new = register(app.test_client(), email="brand.new@example.org", password="another long passphrase here")
    after_new_hashes, after_new_mail = len(hashes), queued()
    taken = register(app.test_client(), email=existing_as, name="Mallory Attacker",
                     password="attackers own long passphrase")
    assert _shape(taken) == _shape(new)
    assert "Check your email" in taken.get_data(as_text=True)
    assert after_new_hashes == 1 and len(hashes) == 2  # one argon2 hash each
    assert after_new_mail == 1 and queued() == 2  # one mail each, queued (never sent in the request)
    with app.app_context():
        users = list(db.session.scalars(db.select(User).order_by(User.id)))
        assert [u.email for u in users] == ["amara@example.org", "brand.new@example.org"]
        assert users[0].password_hash == before and users[0].name != "Mallory Attacker"
    warning = smtp_server.wait_for("amara@example.org", subject_contains="tried to register")
    assert "verify-email" not in warning.as_string()
