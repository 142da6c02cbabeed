"""Linking municipal accounts through the hosted pages: PIN or ID-number proof, answers that do not
reveal the register, throttling per resident and per account, roles, unlinking, document requests
reviewed by staff, and the ``municipal_accounts`` claim in tokens."""
from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest
from joserfc import jwt
from joserfc.jwk import KeySet

from idp.cli.link_requests import link_requests
from idp.extensions import db
from idp.models import AccountLink, AuditEvent, LinkRequest
from tests.conftest import page_without_tokens
from tests.integration.test_pages_account import signed_in_client
from tests.integration.test_signin_flows import login, make_user
from tests.support.mfa import post_form
from tests.support.oidc import authorize_params, exchange, get_code, make_client, pkce_pair
from tests.support.register import HOLDER_ID, add_account, with_check_digit
from tests.support.smtp import body_of

ACCOUNT = with_check_digit("602314785")
CLAIM_SCHEMA = json.loads((Path(__file__).parents[2] / "schemas/municipal-accounts-claim.schema.json").read_text())


def link(client, number=ACCOUNT, proof="4821", kind="linking_pin", role="owner"):
    return post_form(client, "/account/municipal/link",
                     {"account_number": number, "proof_kind": kind, "proof": proof, "role": role})


def links_of(app, user_id):
    with app.app_context():
        return [(l.role, l.verification) for l in db.session.scalars(db.select(AccountLink)
                                                                     .where(AccountLink.user_id == user_id))]


def test_link_with_the_bill_pin(app):
    add_account(app, ACCOUNT)
    client, user_id = signed_in_client(app)
    spaced = f"{ACCOUNT[:3]} {ACCOUNT[3:6]}-{ACCOUNT[6:]}"
    response = link(client, number=spaced, role="tenant")
    assert response.status_code == 303
    assert links_of(app, user_id) == [("tenant", "linking_pin")]
    page = client.get("/account/municipal/").get_data(as_text=True)
    assert ACCOUNT in page and "12 Long Street" in page
    with app.app_context():
        assert db.session.scalar(db.select(AuditEvent).where(AuditEvent.event == "account_link.created"))


def test_link_with_the_holder_id_number_and_a_bad_id_is_a_field_error(app):
    add_account(app, ACCOUNT)
    client, user_id = signed_in_client(app)
    bad = link(client, proof="8001015009086", kind="id_number")
    assert bad.status_code == 400 and "not a valid South African identity number" in bad.get_data(as_text=True)
    assert link(client, proof=HOLDER_ID, kind="id_number").status_code == 303
    assert links_of(app, user_id) == [("owner", "id_number")]


def test_unknown_account_wrong_proof_and_closed_account_answer_alike(app):
    closed = add_account(app, with_check_digit("555555555"), status="closed")
    add_account(app, ACCOUNT)
    client, user_id = signed_in_client(app)
    unknown_number = with_check_digit("987654321")
    answers = [link(client, number=unknown_number), link(client, proof="9999"), link(client, number=closed)]
    assert {a.status_code for a in answers} == {400}
    pages = [page_without_tokens(a).replace(n, "N") for a, n in zip(answers, (unknown_number, ACCOUNT, closed))]
    assert pages[0] == pages[1] == pages[2]
    assert "could not match" in pages[0]
    assert links_of(app, user_id) == []


def test_a_badly_formed_number_is_refused_without_using_a_try(app):
    add_account(app, ACCOUNT)
    client, user_id = signed_in_client(app)
    for _ in range(8):
        response = link(client, number=ACCOUNT[:-1] + str((int(ACCOUNT[-1]) + 1) % 10))
        assert response.status_code == 400 and "not a valid account number" in response.get_data(as_text=True)
    assert link(client).status_code == 303


def test_tries_are_limited_per_resident(app):
    add_account(app, ACCOUNT)
    client, user_id = signed_in_client(app)
    for index in range(5):
        assert link(client, number=with_check_digit(f"11111111{index}")).status_code == 400
    refused = link(client)  # the right proof, but over the limit
    assert refused.status_code == 429 and "Too many attempts" in refused.get_data(as_text=True)
    assert links_of(app, user_id) == []


def test_tries_are_limited_per_account_number(app):
    add_account(app, ACCOUNT)
    for index in range(5):
        make_user(app, email=f"guesser{index}@example.org")
        guesser = app.test_client()
        login(guesser, email=f"guesser{index}@example.org")
        assert link(guesser, proof=f"000{index}").status_code == 400
    owner, owner_id = signed_in_client(app)
    assert link(owner).status_code == 429
    assert links_of(app, owner_id) == []


def test_roles_others_and_removal(app, smtp_server):
    add_account(app, ACCOUNT)
    owner, owner_id = signed_in_client(app)
    make_user(app, email="tenant@example.org", name="Sipho Tenant")
    tenant = app.test_client()
    login(tenant, email="tenant@example.org")
    assert link(owner, proof=HOLDER_ID, kind="id_number").status_code == 303
    assert link(tenant, role="tenant").status_code == 303
    assert link(tenant, role="tenant").status_code == 400  # already linked
    assert "Sipho Tenant" in owner.get("/account/municipal/").get_data(as_text=True)
    assert "Amara" not in tenant.get("/account/municipal/").get_data(as_text=True)  # only owners see others
    with app.app_context():
        owner_link = db.session.scalar(db.select(AccountLink).where(AccountLink.user_id == owner_id))
        tenant_link = db.session.scalar(db.select(AccountLink).where(AccountLink.user_id != owner_id))
        owner_link_id, tenant_link_id = owner_link.id, tenant_link.id
    # A tenant cannot remove the owner; the owner removes the tenant.
    assert post_form(tenant, f"/account/municipal/{owner_link_id}/remove", token_from="/account/municipal/").status_code == 404
    assert post_form(owner, f"/account/municipal/{tenant_link_id}/remove", token_from="/account/municipal/").status_code == 303
    # Unlinking is one's own links only.
    assert post_form(tenant, f"/account/municipal/{owner_link_id}/unlink", token_from="/account/municipal/").status_code == 404
    assert post_form(owner, f"/account/municipal/{owner_link_id}/unlink", token_from="/account/municipal/").status_code == 303
    with app.app_context():
        assert db.session.scalar(db.select(db.func.count()).select_from(AccountLink)) == 0
        events = db.session.scalars(db.select(AuditEvent.event).where(AuditEvent.event.like("account_link.%"))).all()
        assert events.count("account_link.removed") == 2 and events.count("account_link.created") == 2


def _pdf() -> bytes:
    return b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"


def request_link(client, document: bytes, filename="lease.pdf", number=ACCOUNT):
    import io

    from tests.support.mfa import form_token

    return client.post("/account/municipal/request", content_type="multipart/form-data", data={
        "csrf_token": form_token(client, "/account/municipal/request"), "account_number": number,
        "role": "managing_agent", "note": "Appointed agent for the body corporate",
        "document": (io.BytesIO(document), filename)})


def test_a_document_request_is_checked_by_content_and_size(app):
    client, user_id = signed_in_client(app)
    disguised = request_link(client, b"<html>not a pdf</html>", "lease.pdf")
    assert disguised.status_code == 400 and "must be a PDF, PNG or JPEG" in disguised.get_data(as_text=True)
    limit = app.config["IDP_SETTINGS"].link_document_max_kb * 1024
    too_big = request_link(client, _pdf() + b"0" * limit)
    assert too_big.status_code == 400 and "too large" in too_big.get_data(as_text=True)
    with app.app_context():
        assert db.session.scalar(db.select(db.func.count()).select_from(LinkRequest)) == 0
    assert request_link(client, _pdf()).status_code == 303
    assert "waiting for review" in client.get("/account/municipal/").get_data(as_text=True)


def test_staff_approve_and_reject_requests_from_the_cli(app, smtp_server, tmp_path):
    add_account(app, ACCOUNT)
    client, user_id = signed_in_client(app)
    request_link(client, _pdf())
    request_link(client, b"\x89PNG\r\n\x1a\n" + b"0" * 100, "letter.png", number=with_check_digit("222222222"))
    runner = app.test_cli_runner()
    listed = runner.invoke(link_requests, ["list"])
    assert listed.exit_code == 0 and ACCOUNT in listed.output and "managing_agent" in listed.output
    with app.app_context():
        first, second = db.session.scalars(db.select(LinkRequest.id).order_by(LinkRequest.id)).all()
    saved = runner.invoke(link_requests, ["save-document", str(first), str(tmp_path)])
    assert saved.exit_code == 0 and Path(saved.output.strip()).read_bytes() == _pdf()
    approved = runner.invoke(link_requests, ["approve", str(first), "--reviewer", "clerk@capetown.gov.za"])
    assert approved.exit_code == 0, approved.output
    assert links_of(app, user_id) == [("managing_agent", "document")]
    assert "approved" in body_of(smtp_server.wait_for("amara@example.org", subject_contains="approved"))
    unknown = runner.invoke(link_requests, ["approve", str(second), "--reviewer", "clerk"])
    assert unknown.exit_code != 0 and "not in the register" in unknown.output
    rejected = runner.invoke(link_requests, ["reject", str(second), "--reviewer", "clerk", "--reason",
                                             "The letter is not signed."])
    assert rejected.exit_code == 0
    assert "The letter is not signed." in body_of(smtp_server.wait_for("amara@example.org", subject_contains="not approved"))
    again = runner.invoke(link_requests, ["approve", str(first), "--reviewer", "clerk"])
    assert again.exit_code != 0 and "no pending request" in again.output


@pytest.fixture
def rp(app):
    return make_client(app, scope="openid profile email municipal_accounts")


def test_the_claim_in_id_token_and_userinfo_matches_its_schema(app, rp):
    add_account(app, ACCOUNT)
    closed = add_account(app, with_check_digit("333333333"), status="active")
    client, user_id = signed_in_client(app)
    link(client, role="tenant")
    link(client, number=closed, proof=HOLDER_ID, kind="id_number")
    from idp.models import MunicipalAccount

    with app.app_context():  # the city closes the second account after it was linked
        db.session.scalar(db.select(MunicipalAccount).where(MunicipalAccount.account_number == closed)).status = "closed"
        db.session.commit()
    consent = client.get("/authorize", query_string=authorize_params(rp[0], pkce_pair()[1],
                                                                      scope="openid municipal_accounts"))
    assert "municipal accounts you linked" in consent.get_data(as_text=True)
    verifier, challenge = pkce_pair()
    code = get_code(client, rp[0], challenge, scope="openid municipal_accounts")
    tokens = exchange(client, *rp, code, verifier).get_json()
    jwks = client.get("/jwks.json").get_json()
    id_claims = jwt.decode(tokens["id_token"], KeySet.import_key_set(jwks), algorithms=["RS256"]).claims
    userinfo = client.get("/userinfo", headers={"Authorization": "Bearer " + tokens["access_token"]}).get_json()
    for value in (id_claims["municipal_accounts"], userinfo["municipal_accounts"]):
        jsonschema.validate(value, CLAIM_SCHEMA)
        assert [(a["account_number"], a["role"], a["verification"]) for a in value] == [(ACCOUNT, "tenant", "linking_pin")]
    plain = get_code(client, rp[0], challenge, scope="openid email")
    assert "municipal_accounts" not in jwt.decode(exchange(client, *rp, plain, verifier).get_json()["id_token"],
                                                  KeySet.import_key_set(jwks), algorithms=["RS256"]).claims


def test_discovery_lists_the_scope_and_claim(client):
    document = client.get("/.well-known/openid-configuration").get_json()
    assert "municipal_accounts" in document["scopes_supported"]
    assert "municipal_accounts" in document["claims_supported"]
