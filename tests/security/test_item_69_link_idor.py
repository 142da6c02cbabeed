"""Checklist 69: IDOR on link objects. Unlinking or removing with another resident's link id (or
an id that does not exist) answers 404, changes nothing and is audited; there is no per-link view
to enumerate; an account's service address, holder name and bill details are never shown to a
resident before a link is verified (a pending document request, a failed proof)."""
from __future__ import annotations

import io

from idp.extensions import db
from idp.models import AccountLink, AuditEvent
from tests.integration.test_pages_account import signed_in_client
from tests.integration.test_signin_flows import login, make_user
from tests.support.mfa import form_token, post_form
from tests.support.register import HOLDER_ID, add_account, with_check_digit

ACCOUNT = with_check_digit("690000002")
SECRET_BITS = ("12 Long Street", "T Nkosi", "ERF 1234")


def _link(http, proof="4821", kind="linking_pin", role="owner"):
    return post_form(http, "/account/municipal/link",
                     {"account_number": ACCOUNT, "proof_kind": kind, "proof": proof, "role": role})


def test_item_69_another_residents_link_id_is_404_unchanged_and_audited(app):
    add_account(app, ACCOUNT)
    owner, owner_id = signed_in_client(app)
    assert _link(owner, proof=HOLDER_ID, kind="id_number").status_code == 303
    make_user(app, email="mallory@example.org")
    mallory = app.test_client()
    login(mallory, email="mallory@example.org")
    with app.app_context():
        victim_link = db.session.scalar(db.select(AccountLink.id))
    token = form_token(mallory, "/account/municipal/")
    for path in (f"/account/municipal/{victim_link}/unlink", f"/account/municipal/{victim_link}/remove",
                 f"/account/municipal/{victim_link + 1000}/unlink"):
        assert mallory.post(path, data={"csrf_token": token}).status_code == 404, path
    for path in (f"/account/municipal/{victim_link}", f"/account/municipal/{victim_link}/edit"):
        assert mallory.get(path).status_code in (404, 405), path  # no per-link view exists
    with app.app_context():
        assert db.session.scalar(db.select(AccountLink.user_id)) == owner_id
        denied = list(db.session.scalars(db.select(AuditEvent).where(AuditEvent.event == "account_link.denied")))
    assert [(e.outcome, e.detail["link"], e.detail["action"]) for e in denied] == [
        ("failure", victim_link, "unlink"), ("failure", victim_link, "remove"), ("failure", victim_link + 1000, "unlink")]
    page = mallory.get("/account/municipal/").get_data(as_text=True)
    assert ACCOUNT not in page and not any(bit in page for bit in SECRET_BITS)


def test_item_69_no_bill_details_before_the_link_is_verified(app):
    add_account(app, ACCOUNT)
    http, _ = signed_in_client(app)
    failed = _link(http, proof="0000").get_data(as_text=True)
    assert not any(bit in failed for bit in SECRET_BITS)
    filed = http.post("/account/municipal/request", content_type="multipart/form-data", data={
        "csrf_token": form_token(http, "/account/municipal/request"), "account_number": ACCOUNT, "role": "tenant",
        "document": (io.BytesIO(b"%PDF-1.4\n%%EOF\n"), "lease.pdf")})
    assert filed.status_code == 303
    page = http.get("/account/municipal/").get_data(as_text=True)
    assert ACCOUNT in page and "waiting for review" in page
    assert not any(bit in page for bit in SECRET_BITS)  # pending: the number only
    assert _link(http).status_code == 303  # once verified, the details appear
    assert "12 Long Street" in http.get("/account/municipal/").get_data(as_text=True)
