"""Checklist 53: recovery codes. Each code carries at least 64 bits, only keyed digests are stored,
a code works once even when submitted in parallel, wrong codes are throttled like the other
authenticators (the right one is then refused too), and making a new set voids the old one and
tells the resident by email."""
from __future__ import annotations

import math
import threading

import pytest

from idp.extensions import db
from idp.models import RecoveryCode, User
from idp.services import DomainError, Throttled, recovery_codes
from tests.integration.test_pages_account import signed_in_client
from tests.integration.test_signin_flows import login
from tests.support.mfa import enrol_totp, form_token, post_form
from tests.support.passkeys_http import stepped_up
from tests.support.smtp import body_of


@pytest.fixture
def enrolled(app):
    client, user_id = signed_in_client(app)
    _, codes = enrol_totp(client)
    return client, user_id, codes


def test_item_53_each_code_carries_at_least_64_bits_and_only_digests_are_kept(app, enrolled):
    _, _, codes = enrolled
    assert len(codes) == 10 and len(set(codes)) == 10
    for code in codes:
        letters = code.replace("-", "")
        assert set(letters) <= set(recovery_codes.ALPHABET)
        assert len(letters) * math.log2(len(recovery_codes.ALPHABET)) >= 64
    with app.app_context():
        digests = db.session.scalars(db.select(RecoveryCode.code_digest)).all()
    assert len(digests) == 10
    assert not any(code.replace("-", "") in d or code in d for d in digests for code in codes)


def test_item_53_a_code_works_once_even_in_parallel(app, enrolled):
    _, user_id, codes = enrolled
    outcomes = []
    barrier = threading.Barrier(4)

    def use():
        with app.test_request_context():
            barrier.wait()
            try:
                outcomes.append(recovery_codes.use(db.session.get(User, user_id), codes[0]))
            except DomainError as exc:
                outcomes.append(exc.code)
            finally:
                db.session.remove()

    threads = [threading.Thread(target=use) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert outcomes.count(True) == 1, outcomes
    with app.test_request_context():
        assert recovery_codes.remaining(db.session.get(User, user_id)) == 9


def test_item_53_wrong_codes_are_throttled_like_other_authenticators(app, enrolled):
    _, user_id, codes = enrolled
    limit = app.config["IDP_SETTINGS"].otp_max_failures
    with app.test_request_context():
        user = db.session.get(User, user_id)
        for _ in range(limit):
            assert recovery_codes.use(user, "zzzzz-zzzzz-zzzzz") is False
        with pytest.raises(Throttled):
            recovery_codes.use(user, codes[0])
        assert recovery_codes.remaining(user) == 10


def test_item_53_a_new_set_voids_the_old_one_and_tells_the_resident(app, enrolled, smtp_server):
    client, user_id, old = enrolled
    stepped_up(app, user_id)
    smtp_server.clear()
    made = post_form(client, "/account/security/recovery-codes", token_from="/account/security")
    assert made.status_code == 303
    page = client.get(made.headers["Location"]).get_data(as_text=True)
    assert not any(code in page for code in old)
    notice = smtp_server.wait_for("amara@example.org", subject_contains="New recovery codes")
    assert "/not-me/" in body_of(notice) and not any(code in body_of(notice) for code in old)
    browser = app.test_client()
    login(browser)
    refused = browser.post("/login/second-factor/recovery",
                           data={"csrf_token": form_token(browser, "/login/second-factor/recovery"), "code": old[0]})
    assert refused.status_code == 400 and browser.get("/account/").status_code == 302
