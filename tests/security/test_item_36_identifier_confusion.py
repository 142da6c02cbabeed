"""Checklist 36: Identifier confusion. Look-alike forms of a resident's address (case variants,
full-width and other NFKC-equivalent characters, zero-width and soft-hyphen characters, Cyrillic or
Greek letters among Latin ones, a full-width "＠" or ideographic full stop) are used to register, to
sign in, to ask for a password reset and to change an address: none may create a shadow account or
send mail to an address other than the canonical one; equivalent forms reach the same account, and
look-alikes that are not equivalent are refused as invalid addresses."""
from __future__ import annotations

import pytest

from idp.extensions import db
from idp.models import User
from idp.services import DomainError, accounts
from tests.conftest import csrf_token
from tests.integration.test_signin_flows import PASSWORD, login, make_user, register

EQUIVALENT = ["AMARA@EXAMPLE.ORG", "ａｍａｒａ@example.org", "amara＠example.org", "amara@ｅｘａｍｐｌｅ.org",
              "amara@example。org", " amara@example.org "]
REFUSED = ["amara\u200b@example.org", "am\u00adara@example.org", "am\u0430ra@example.org",  # Cyrillic а
           "amar\u03b1@example.org", "amara@ex\u0430mple.org"]  # Greek α, Cyrillic а in the domain


@pytest.mark.parametrize("variant", EQUIVALENT)
def test_item_36_equivalent_forms_are_the_same_account(ctx, variant):
    assert accounts.canonical_email(variant) == "amara@example.org"


@pytest.mark.parametrize("variant", REFUSED)
def test_item_36_confusable_forms_are_refused(ctx, variant):
    with pytest.raises(DomainError) as refused:
        accounts.canonical_email(variant)
    assert refused.value.code == "invalid_email"


def test_item_36_registering_any_variant_creates_no_shadow_account(app, smtp_server):
    make_user(app)
    for variant in EQUIVALENT + REFUSED:
        register(app.test_client(), email=variant, name="Mallory Attacker", password="attackers own long passphrase")
    with app.app_context():
        assert [u.email for u in db.session.scalars(db.select(User))] == ["amara@example.org"]


def test_item_36_equivalent_forms_sign_in_to_the_one_account_and_look_alikes_do_not(app):
    make_user(app)
    assert login(app.test_client(), email="ａｍａｒａ@example.org").status_code == 303
    assert login(app.test_client(), email="am\u0430ra@example.org").status_code == 401


def test_item_36_reset_for_a_look_alike_sends_nothing_anywhere(app, smtp_server):
    make_user(app)
    for variant in REFUSED:
        http = app.test_client()
        page = http.get("/forgot-password")
        http.post("/forgot-password", data={"csrf_token": csrf_token(page.get_data(as_text=True)), "email": variant})
    from idp.services import delivery_worker

    delivery_worker.wait_idle(app)
    assert not [m for m in smtp_server.messages if "reset" in m.as_string().lower()]


def test_item_36_an_email_change_to_a_variant_of_a_taken_address_is_not_a_second_owner(app):
    make_user(app)
    make_user(app, email="bongani@example.org", name="Bongani Zulu")
    http = app.test_client()
    login(http, email="bongani@example.org")
    page = http.get("/account/email")
    http.post("/account/email", data={"csrf_token": csrf_token(page.get_data(as_text=True)),
                                      "new_email": "ＡＭＡＲＡ@example.org", "current_password": PASSWORD})
    with app.app_context():
        assert sorted(u.email for u in db.session.scalars(db.select(User))) == ["amara@example.org",
                                                                                 "bongani@example.org"]
