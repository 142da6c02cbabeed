"""Checklist 68: an account number already linked to another identity. Trying it with a wrong
proof answers exactly like an unknown number (no hint that, or by whom, it is held); with the
right proof the product links it in the person's own role (an account can have an owner, tenants
and agents) and every current holder is mailed, without the newcomer's name or address; the
person never sees who else holds it; and a manual review path (a document request that staff
decide in the console) exists for a disputed number."""
from __future__ import annotations

import io

from idp.extensions import db
from idp.models import AccountLink, LinkRequest
from tests.conftest import page_without_tokens
from tests.integration.test_admin import staff_client
from tests.integration.test_pages_account import signed_in_client
from tests.integration.test_signin_flows import login, make_user
from tests.support.mfa import form_token, post_form
from tests.support.register import HOLDER_ID, add_account, with_check_digit
from tests.support.smtp import body_of

HELD = with_check_digit("680000001")
UNKNOWN = with_check_digit("680000099")


def _link(http, number=HELD, proof="4821", kind="linking_pin", role="owner"):
    return post_form(http, "/account/municipal/link",
                     {"account_number": number, "proof_kind": kind, "proof": proof, "role": role})


def _newcomer(app):
    make_user(app, email="sipho@example.org", name="Sipho Newcomer")
    http = app.test_client()
    login(http, email="sipho@example.org")
    return http


def test_item_68_a_held_number_with_a_wrong_proof_answers_like_an_unknown_number(app):
    add_account(app, HELD)
    owner, _ = signed_in_client(app)  # Amara Dlamini holds it
    assert _link(owner, proof=HOLDER_ID, kind="id_number").status_code == 303
    http = _newcomer(app)
    held, unknown = _link(http, proof="0000"), _link(http, number=UNKNOWN, proof="0000")
    assert held.status_code == unknown.status_code == 400
    assert page_without_tokens(held).replace(HELD, "N") == page_without_tokens(unknown).replace(UNKNOWN, "N")
    for hint in ("amara", "Dlamini", "already linked", "T Nkosi", "12 Long Street"):
        assert hint not in held.get_data(as_text=True), hint


def test_item_68_a_second_identity_with_the_right_proof_is_announced_to_the_holders(app, smtp_server):
    add_account(app, HELD)
    owner, owner_id = signed_in_client(app)
    assert _link(owner, proof=HOLDER_ID, kind="id_number").status_code == 303
    smtp_server.clear()
    http = _newcomer(app)
    assert _link(http, role="tenant").status_code == 303
    notice = smtp_server.wait_for("amara@example.org", subject_contains="Someone else linked")
    text = body_of(notice)
    assert HELD[-4:] in text and HELD not in text
    assert "Sipho" not in text and "sipho@example.org" not in text  # who it was is not given away
    assert "remove them" in text
    page = http.get("/account/municipal/").get_data(as_text=True)
    assert "Amara" not in page and "amara@example.org" not in page  # nor who holds it, to the newcomer
    with app.app_context():
        assert db.session.scalar(db.select(db.func.count()).select_from(AccountLink)
                                 .where(AccountLink.user_id == owner_id)) == 1


def test_item_68_a_disputed_number_goes_to_manual_review(app):
    add_account(app, HELD)
    owner, _ = signed_in_client(app)
    assert _link(owner, proof=HOLDER_ID, kind="id_number").status_code == 303
    http = _newcomer(app)
    filed = http.post("/account/municipal/request", content_type="multipart/form-data", data={
        "csrf_token": form_token(http, "/account/municipal/request"), "account_number": HELD, "role": "owner",
        "note": "I bought the property last month", "document": (io.BytesIO(b"%PDF-1.4\n%%EOF\n"), "deed.pdf")})
    assert filed.status_code == 303
    with app.app_context():
        request = db.session.scalar(db.select(LinkRequest))
        assert (request.account_number, request.status) == (HELD, "pending")
    staff, _ = staff_client(app)
    queue = staff.get("/admin/link-requests").get_data(as_text=True)
    assert HELD in queue and "I bought the property last month" in queue
