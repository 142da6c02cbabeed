"""Checklist 76: stored XSS and export injection in the staff console. Resident-controlled text
(name, user agent, passkey name, link-request note, municipal register data) carrying `<script>`,
`"><img src=x onerror=…>` or `javascript:` arrives escaped in the console's lists and detail pages
and in the audit page; mail is plain text only; a note with a right-to-left override is refused;
the audit CSV export prefixes cells that a spreadsheet would run as a formula (= + - @)."""
from __future__ import annotations

import csv
import io
import json

import pytest
from markupsafe import escape

from idp.extensions import db
from idp.models import AuditEvent, LinkRequest, User, UserSession, WebAuthnCredential
from idp.services import audit_log, support
from tests.integration.test_admin import export_audit, staff_client
from tests.integration.test_pages_account import signed_in_client
from tests.integration.test_signin_flows import make_user
from tests.support.mfa import form_token

PAYLOADS = ['<script>alert(1)</script>', '"><img src=x onerror=alert(1)>', "javascript:alert(1)"]


def _assert_inert(html: str) -> None:
    assert "<script>alert" not in html and "<img src=x" not in html and "onerror=alert(1)>" not in html
    assert 'href="javascript:' not in html and "href='javascript:" not in html


@pytest.mark.parametrize("payload", PAYLOADS)
def test_item_76_resident_text_is_escaped_in_the_console(app, payload):
    target = make_user(app, email="amara@example.org", name="Amara " + payload)
    with app.app_context():
        db.session.add(LinkRequest(user_id=target, account_number="4000000000", role="owner", document=b"%PDF-1.4",
                                   document_type="application/pdf", document_name=payload + ".pdf", note=payload))
        db.session.add(WebAuthnCredential(user_id=target, credential_id=b"cred-" + payload.encode(),
                                          public_key=b"k", sign_count=0, name=payload))
        db.session.execute(db.update(UserSession).values(user_agent=payload))
        db.session.add(AuditEvent(event="account.renamed", user_id=target, detail={"name": payload}))
        db.session.commit()
    http, _ = staff_client(app, email="admin@capetown.gov.za", roles=("administrator",))
    pages = [http.get("/admin/residents", query_string={"q": "amara"}), http.get(f"/admin/residents/{target}"),
             http.get("/admin/link-requests"), http.get("/admin/audit")]
    for page in pages:
        assert page.status_code == 200
        _assert_inert(page.get_data(as_text=True))
    for page in pages[:3]:
        assert str(escape(payload)) in page.get_data(as_text=True)  # shown, as text
    assert "'unsafe-inline'" not in pages[1].headers["Content-Security-Policy"]


def test_item_76_mail_about_a_resident_is_plain_text(app, smtp_server):
    target = make_user(app, email="amara@example.org", name=PAYLOADS[1])
    with app.app_context():
        staff = User(email="staff@example.org", name="Staff", roles=["support"], password_hash="x")
        db.session.add(staff)
        db.session.commit()
        with app.test_request_context("/admin/"):
            support.reset_mfa(staff, db.session.get(User, target), "resident lost the phone, ID checked")
    message = smtp_server.wait_for("amara@example.org")
    assert [part.get_content_type() for part in message.walk() if not part.is_multipart()] == ["text/plain"]


def test_item_76_a_note_with_a_right_to_left_override_is_refused(app):
    http, user_id = signed_in_client(app)
    response = http.post("/account/municipal/request", content_type="multipart/form-data", data={
        "csrf_token": form_token(http, "/account/municipal/request"), "account_number": "4000000006",
        "role": "owner", "note": "refund to \u202eexe.tnuocca", "document": (io.BytesIO(b"%PDF-1.4\n"), "a.pdf")})
    assert response.status_code == 400
    with app.app_context():
        assert db.session.scalar(db.select(db.func.count()).select_from(LinkRequest)) == 0


FORMULAS = ['=HYPERLINK("https://evil.example","x")', "+1+1", "-2+3", "@SUM(A1)", "\t=1", "\r=1"]


def test_item_76_the_audit_csv_never_starts_a_cell_with_a_formula(app):
    with app.app_context():
        for formula in FORMULAS:
            db.session.add(AuditEvent(event="admin.note", outcome="success", client_id=formula, ip_address=formula,
                                      detail={"reason": formula}))
        db.session.commit()
    http, _ = staff_client(app, email="admin@capetown.gov.za", roles=("administrator",))
    response = export_audit(app, http)
    assert response.status_code == 200
    rows = list(csv.reader(io.StringIO(response.get_data(as_text=True), newline="")))
    header = rows[0]
    data = [row for row in rows[1:] if row[header.index("event")] == "admin.note"]
    assert len(data) == len(FORMULAS)
    for row, formula in zip(data, FORMULAS):
        for cell in row:
            assert not cell.startswith(("=", "+", "-", "@", "\t", "\r")), cell
        assert row[header.index("client_id")] == "'" + formula  # kept, made inert
        assert json.loads(row[header.index("detail")])["reason"] == formula
    assert audit_log.spreadsheet_safe(-5) == -5 and audit_log.spreadsheet_safe(None) is None
