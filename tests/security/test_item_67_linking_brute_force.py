"""Checklist 67: linking brute force and enumeration. An attacker guesses municipal account
numbers and bill verifiers (linking PIN, holder ID number): "no such account" and "wrong verifier"
must give the same answer after the same work; tries are limited per identity, per client address
and per account number across all identities; an account number that reaches its limit is frozen
for online linking (even for its real holder) and the city's staff are alerted, once."""
from __future__ import annotations

import hmac
import logging

from idp.extensions import db
from idp.models import AccountLink, AuditEvent
from idp.services import identifiers, municipal
from tests.conftest import page_without_tokens
from tests.integration.test_signin_flows import login, make_user
from tests.support.mfa import post_form
from tests.support.register import HOLDER_ID, add_account, with_check_digit

ACCOUNT = with_check_digit("410000007")
UNKNOWN = with_check_digit("490000001")


def _link(http, number=ACCOUNT, proof="4821", kind="linking_pin", role="owner"):
    return post_form(http, "/account/municipal/link",
                     {"account_number": number, "proof_kind": kind, "proof": proof, "role": role})


def _resident(app, email, ip="127.0.0.1"):
    user_id = make_user(app, email=email)
    http = app.test_client()
    http.environ_base["REMOTE_ADDR"] = ip
    login(http, email=email)
    return http, user_id


def _count(app, model, *where):
    with app.app_context():
        return db.session.scalar(db.select(db.func.count()).select_from(model).where(*where))


def _events(app, name):
    with app.app_context():
        return list(db.session.scalars(db.select(AuditEvent).where(AuditEvent.event == name)))


def test_item_67_unknown_number_and_wrong_id_number_answer_alike_after_the_same_work(app, monkeypatch):
    add_account(app, ACCOUNT)
    http, user_id = _resident(app, "guesser@example.org")
    wrong_holder = "9001015009086"  # a valid ID number, not the holder's
    assert identifiers.sa_id_ok(wrong_holder)
    work = []
    real_digest, real_compare = identifiers.holder_id_digest, hmac.compare_digest
    with app.app_context():
        guessed = real_digest(wrong_holder)

    def compare(a, b):
        if guessed in (a, b):
            work.append("compare")
        return real_compare(a, b)

    monkeypatch.setattr(identifiers, "holder_id_digest", lambda v: work.append("digest") or real_digest(v))
    monkeypatch.setattr(municipal.hmac, "compare_digest", compare)
    answers = []
    for number in (UNKNOWN, ACCOUNT):
        work.clear()
        answers.append(_link(http, number=number, proof=wrong_holder, kind="id_number"))
        assert work == ["digest", "compare"], number  # one keyed digest and one comparison either way
    assert [a.status_code for a in answers] == [400, 400]
    pages = [page_without_tokens(a).replace(n, "N") for a, n in zip(answers, (UNKNOWN, ACCOUNT))]
    assert pages[0] == pages[1] and "could not match" in pages[0]
    varying = {"Content-Length", "Content-Security-Policy", "X-Request-ID"}  # nonce and request id
    assert [(k, v) for k, v in answers[0].headers.items() if k not in varying] == \
        [(k, v) for k, v in answers[1].headers.items() if k not in varying]
    failed = _events(app, "account_link.failed")
    assert [(e.outcome, e.detail.get("reason")) for e in failed] == [("failure", "no_match")] * 2
    assert _count(app, AccountLink) == 0


def test_item_67_tries_are_limited_per_client_address_across_residents(app, monkeypatch):
    add_account(app, ACCOUNT)
    monkeypatch.setattr(app.config["IDP_SETTINGS"], "link_max_per_ip", 4)
    attacker_ip = "203.0.113.9"
    for index in range(2):  # two identities from one address, two guesses each, at different numbers
        http, _ = _resident(app, f"bot{index}@example.org", ip=attacker_ip)
        for guess in range(2):
            assert _link(http, number=with_check_digit(f"4800000{index}{guess}")).status_code == 400
    # A fresh identity from the same address: refused even with the right proof, nothing stored.
    third, third_id = _resident(app, "bot2@example.org", ip=attacker_ip)
    refused = _link(third)
    assert refused.status_code == 429 and "Too many attempts" in refused.get_data(as_text=True)
    assert _count(app, AccountLink) == 0
    assert [e.ip_address for e in _events(app, "account_link.failed") if e.detail.get("reason") == "throttled"] \
        == [attacker_ip]
    # Another address is not affected.
    owner, owner_id = _resident(app, "owner@example.org", ip="198.51.100.7")
    assert _link(owner).status_code == 303
    assert _count(app, AccountLink, AccountLink.user_id == owner_id) == 1


def test_item_67_a_number_guessed_at_by_many_identities_freezes_and_alerts_once(app, caplog):
    add_account(app, ACCOUNT)
    caplog.set_level(logging.WARNING, logger="idp")
    for index in range(5):  # five identities, five addresses, one wrong PIN each: every other limit untouched
        http, _ = _resident(app, f"ring{index}@example.org", ip=f"192.0.2.{index + 1}")
        assert _link(http, proof=f"99{index}9").status_code == 400
    assert _events(app, "account_link.number_frozen") == []
    late, _ = _resident(app, "ring5@example.org", ip="192.0.2.50")
    assert _link(late, proof="1234").status_code == 429
    # The real holder, with the right PIN, cannot link online while the number is frozen.
    owner, owner_id = _resident(app, "owner@example.org", ip="198.51.100.7")
    refused = _link(owner, proof=HOLDER_ID, kind="id_number")
    assert refused.status_code == 429
    assert _count(app, AccountLink) == 0
    frozen = _events(app, "account_link.number_frozen")
    assert len(frozen) == 1  # alerted once, not once per refused try
    assert frozen[0].outcome == "alert" and frozen[0].detail["account"] == ACCOUNT
    warnings = [r.getMessage() for r in caplog.records if "frozen" in r.getMessage()]
    assert len(warnings) == 1 and ACCOUNT not in warnings[0]  # the log names no account number


def test_item_67_a_frozen_number_and_an_unknown_number_are_refused_alike(app):
    add_account(app, ACCOUNT)
    for index in range(6):
        http, _ = _resident(app, f"ring{index}@example.org", ip=f"192.0.2.{index + 1}")
        _link(http, proof=f"77{index}7")
    # Freeze an unknown number the same way: its refusal must not differ from the real one's.
    for index in range(6):
        http, _ = _resident(app, f"other{index}@example.org", ip=f"192.0.2.{index + 101}")
        _link(http, number=UNKNOWN, proof=f"77{index}7")
    checker, _ = _resident(app, "checker@example.org", ip="198.51.100.9")
    known, unknown = _link(checker, number=ACCOUNT), _link(checker, number=UNKNOWN)
    assert known.status_code == unknown.status_code == 429
    assert page_without_tokens(known).replace(ACCOUNT, "N") == page_without_tokens(unknown).replace(UNKNOWN, "N")
