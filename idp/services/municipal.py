"""Residents' links to municipal accounts: proven with the bill's linking PIN or the holder's
identity number, or approved by staff from a supporting document; listed, shared between roles
and removed; released to departments as the ``municipal_accounts`` claim.

A wrong proof and an unknown account number get the same answer, and tries are limited per
resident and per account number, so the register cannot be enumerated through these pages."""
from __future__ import annotations

import hmac
import logging
from dataclasses import dataclass

from flask import current_app
from flask_babel import gettext as _
from sqlalchemy.exc import IntegrityError

from idp.extensions import db
from idp.i18n import in_language_of
from idp.models import AccountLink, LinkRequest, MunicipalAccount, User
from idp.models.municipal import LINK_ROLES
from idp.models.types import utcnow
from idp.services import DomainError, Throttled, audit, identifiers, security_mail, throttle
from idp.services import action_tokens as links

PIN, ID_NUMBER, DOCUMENT = "linking_pin", "id_number", "document"
MAX_TRIES = 5  # wrong proofs per resident, and per account number, per window
TRY_WINDOW = 3600
log = logging.getLogger("idp.security")
_NO_DIGEST = "0" * 64  # compared with when there is nothing to compare with
DOCUMENT_TYPES = {b"%PDF-": "application/pdf", b"\x89PNG\r\n\x1a\n": "image/png", b"\xff\xd8\xff": "image/jpeg"}


@dataclass(frozen=True)
class LinkedAccount:
    link_id: int
    account_id: int
    account_number: str
    account_type: str
    service_address: str
    holder_name: str
    status: str
    role: str
    verification: str
    verified_at: object


def _no_match() -> DomainError:
    return DomainError("no_match", _("We could not match that account number with that proof. "
                                     "Check both against your latest bill."))


def _throttled() -> Throttled:
    return Throttled("throttled", _("Too many attempts. Try again in an hour, or ask to link it with a document."))


def clean_number(raw: str) -> str:
    """The account number as the register has it; DomainError when it cannot be one (format only:
    this says nothing about whether the account exists)."""
    number = identifiers.clean_account_number(raw)
    if not identifiers.account_number_ok(number):
        raise DomainError("invalid_account_number",
                          _("That is not a valid account number. Copy it exactly as it is printed on your bill."))
    return number


def link_with_proof(user: User, raw_number: str, proof_kind: str, proof: str, role: str, *, ip: str = "") -> AccountLink:
    """Link an account the resident proves with its PIN or the holder's ID number."""
    number = clean_number(raw_number)
    if proof_kind not in (PIN, ID_NUMBER) or role not in LINK_ROLES:
        raise DomainError("invalid_request", _("Choose how you prove the link and your role."))
    if proof_kind == ID_NUMBER and not identifiers.sa_id_ok(identifiers.clean_id_number(proof)):
        raise DomainError("invalid_id_number", _("That is not a valid South African identity number."))
    _count_try(user, number, ip)
    account = db.session.scalar(db.select(MunicipalAccount).where(MunicipalAccount.account_number == number))
    if proof_kind == PIN:
        expected, given = (account.linking_pin_digest if account else None), identifiers.linking_pin_digest(proof)
    else:
        expected, given = (account.holder_id_digest if account else None), identifiers.holder_id_digest(proof)
    # Compare even when there is no such account (against a digest nothing matches): the same work
    # either way, so the answer's timing does not tell whether the number is in the register.
    matched = hmac.compare_digest(expected or _NO_DIGEST, given)
    if account is None or account.status != "active" or not expected or not matched:
        audit.record("account_link.failed", outcome="failure", user_id=user.id, ip_address=ip,
                     reason="no_match", proof=proof_kind)
        raise _no_match()
    throttle.reset("link-user", str(user.id))
    throttle.reset("link-account", number)
    link = _create_link(user, account, role, proof_kind, ip=ip)
    security_mail.send(user, "account_linked", ip=ip, detail=masked(number))
    return link


def _count_try(user: User, number: str, ip: str) -> None:
    """Count a linking try per resident, per client address and per account number across all
    residents, first (atomic INCR: parallel guesses cannot exceed a limit); Throttled beyond any.

    The account number's limit freezes it for online linking until the window ends; the moment it
    freezes is reported once to the city's staff (``account_link.number_frozen``, an alert)."""
    ip_limit = current_app.config["IDP_SETTINGS"].link_max_per_ip
    by_user = throttle.add_failure("link-user", str(user.id), TRY_WINDOW)
    by_ip = throttle.add_failure("link-ip", ip, TRY_WINDOW) if ip else 0
    by_account = throttle.add_failure("link-account", number, TRY_WINDOW)
    if by_account == MAX_TRIES + 1:
        audit.record("account_link.number_frozen", outcome="alert", user_id=user.id, ip_address=ip, account=number)
        log.warning("account number frozen for online linking after %d tries in %d s", MAX_TRIES, TRY_WINDOW)
    if by_user > MAX_TRIES or by_ip > ip_limit or by_account > MAX_TRIES:
        audit.record("account_link.failed", outcome="failure", user_id=user.id, ip_address=ip, reason="throttled")
        raise _throttled()


def _create_link(user: User, account: MunicipalAccount, role: str, verification: str, *, ip: str = "",
                 actor_id: int | None = None) -> AccountLink:
    link = AccountLink(user_id=user.id, account_id=account.id, role=role, verification=verification,
                       verified_at=utcnow())
    db.session.add(link)
    try:
        db.session.commit()
    except IntegrityError:
        db.session.rollback()
        raise DomainError("already_linked", _("This account is already linked to your eCitizen Passport.")) from None
    audit.record("account_link.created", user_id=user.id, actor_id=actor_id, ip_address=ip,
                 account=account.account_number, role=role, verification=verification)
    _tell_other_holders(user, account)
    return link


def masked(number: str) -> str:
    """An account number as notices show it: its last four digits only."""
    return "…" + number[-4:]


def _tell_other_holders(user: User, account: MunicipalAccount) -> None:
    """Mail everyone else linked to ``account`` that one more person now is (never who: no name,
    no address), so a holder notices a link they did not expect and can remove it or call the city."""
    holders = db.session.scalars(db.select(User).join(AccountLink, AccountLink.user_id == User.id).where(
        AccountLink.account_id == account.id, AccountLink.user_id != user.id, User.status == "active"))
    for holder in holders:
        with in_language_of(holder):
            links.notify(holder.email, _("Someone else linked your municipal account"), "account_link_holder",
                         name=holder.name, account_number=masked(account.account_number))


def _rows(query) -> list[LinkedAccount]:
    return [LinkedAccount(link.id, account.id, account.account_number, account.account_type, account.service_address,
                          account.holder_name, account.status, link.role, link.verification, link.verified_at)
            for link, account in db.session.execute(query).all()]


def _joined():
    return db.select(AccountLink, MunicipalAccount).join(MunicipalAccount, AccountLink.account_id == MunicipalAccount.id)


def linked_accounts(user: User) -> list[LinkedAccount]:
    """The resident's linked accounts, by account number."""
    return _rows(_joined().where(AccountLink.user_id == user.id).order_by(MunicipalAccount.account_number))


def others_on(user: User, account_id: int) -> list[tuple[LinkedAccount, str]]:
    """For an owner: the other residents linked to the account (with their names); [] otherwise."""
    if not _is_owner(user, account_id):
        return []
    query = (db.select(AccountLink, MunicipalAccount, User.name)
             .join(MunicipalAccount, AccountLink.account_id == MunicipalAccount.id)
             .join(User, AccountLink.user_id == User.id)
             .where(AccountLink.account_id == account_id, AccountLink.user_id != user.id))
    return [(LinkedAccount(link.id, account.id, account.account_number, account.account_type,
                           account.service_address, account.holder_name, account.status, link.role,
                           link.verification, link.verified_at), name)
            for link, account, name in db.session.execute(query).all()]


def _is_owner(user: User, account_id: int) -> bool:
    return db.session.scalar(db.select(AccountLink.id).where(
        AccountLink.user_id == user.id, AccountLink.account_id == account_id, AccountLink.role == "owner")) is not None


def unlink(user: User, link_id: int, *, ip: str = "") -> bool:
    """Remove one of the resident's own links."""
    link = db.session.get(AccountLink, link_id)
    if link is None or link.user_id != user.id:
        return _refused(user, link_id, "unlink", ip)
    return _remove(link, actor=user, ip=ip)


def remove_other(owner: User, link_id: int, *, ip: str = "") -> bool:
    """An owner removes a tenant's, agent's or representative's link to their account (not another owner's)."""
    link = db.session.get(AccountLink, link_id)
    if link is None or link.user_id == owner.id or link.role == "owner" or not _is_owner(owner, link.account_id):
        return _refused(owner, link_id, "remove", ip)
    return _remove(link, actor=owner, ip=ip)


def _refused(user: User, link_id: int, action: str, ip: str) -> bool:
    """Audit an attempt on a link that is not the resident's to change (someone else's id, or none)."""
    audit.record("account_link.denied", outcome="failure", user_id=user.id, ip_address=ip, link=link_id,
                 action=action)
    return False


def _remove(link: AccountLink, *, actor: User, ip: str) -> bool:
    account = db.session.get(MunicipalAccount, link.account_id)
    user_id, role = link.user_id, link.role
    db.session.delete(link)
    db.session.commit()
    audit.record("account_link.removed", user_id=user_id, actor_id=actor.id, ip_address=ip,
                 account=account.account_number if account else "", role=role)
    if actor.id == user_id and account is not None:  # the resident's own unlink: a security notice
        security_mail.send(actor, "account_unlinked", ip=ip, detail=masked(account.account_number))
    return True


def claim(user: User) -> list[dict]:
    """The ``municipal_accounts`` claim: every active linked account (schema in schemas/)."""
    return [{"account_number": row.account_number, "account_type": row.account_type, "role": row.role,
             "verification": row.verification,
             "verified_at": int(row.verified_at.timestamp())}
            for row in linked_accounts(user) if row.status == "active"]


# --- link requests with a supporting document ------------------------------------------------------

def sniff_document(data: bytes) -> str | None:
    """The document's type by its content (PDF, PNG or JPEG), whatever its name says."""
    for magic, kind in DOCUMENT_TYPES.items():
        if data.startswith(magic):
            return kind
    return None


def request_link(user: User, raw_number: str, role: str, document: bytes, filename: str, note: str = "", *,
                 ip: str = "") -> LinkRequest:
    """File a request for staff to review; the document must be a PDF or an image within the size limit."""
    number = clean_number(raw_number)
    if role not in LINK_ROLES:
        raise DomainError("invalid_request", _("Choose your role."))
    limit = current_app.config["IDP_SETTINGS"].link_document_max_kb * 1024
    if not document:
        raise DomainError("invalid_document", _("Attach a document: a PDF, PNG or JPEG file."))
    if len(document) > limit:
        raise DomainError("invalid_document", _("The document is too large: the limit is %(n)d KB.", n=limit // 1024))
    kind = sniff_document(document)
    if kind is None:
        raise DomainError("invalid_document", _("The document must be a PDF, PNG or JPEG file."))
    pending = db.session.scalar(db.select(db.func.count()).select_from(LinkRequest)
                                .where(LinkRequest.user_id == user.id, LinkRequest.status == "pending")) or 0
    if pending >= 10:
        raise Throttled("throttled", _("You have 10 requests waiting already. Wait for the city to review them."))
    request = LinkRequest(user_id=user.id, account_number=number, role=role, document=document, document_type=kind,
                          document_name=(filename or "")[-120:], note=(note or "").strip()[:500])
    db.session.add(request)
    db.session.commit()
    audit.record("account_link.requested", user_id=user.id, ip_address=ip, account=number, role=role,
                 request=request.id)
    return request


def requests_of(user: User) -> list[LinkRequest]:
    return list(db.session.scalars(db.select(LinkRequest).where(LinkRequest.user_id == user.id)
                                   .order_by(LinkRequest.created_at.desc())))


def pending_requests() -> list[LinkRequest]:
    """The review queue, oldest first."""
    return list(db.session.scalars(db.select(LinkRequest).where(LinkRequest.status == "pending")
                                   .order_by(LinkRequest.created_at)))


def _pending(request_id: int) -> LinkRequest:
    request = db.session.get(LinkRequest, request_id)
    if request is None or request.status != "pending":
        raise DomainError("not_pending", "no pending request with that number")
    return request


def approve(request_id: int, reviewer: str, *, actor_id: int | None = None) -> AccountLink:
    """Staff approve a request: the link is made (verified by document) and the resident told."""
    request = _pending(request_id)
    account = db.session.scalar(db.select(MunicipalAccount).where(MunicipalAccount.account_number == request.account_number))
    if account is None:
        raise DomainError("unknown_account", "the account number is not in the register")
    user = db.session.get(User, request.user_id)
    request.status, request.reviewed_at, request.reviewer = "approved", utcnow(), reviewer[:254]
    db.session.commit()
    link = _create_link(user, account, request.role, DOCUMENT, actor_id=actor_id)
    with in_language_of(user):
        links.notify(user.email, _("Your account link was approved"), "link_request_decided", name=user.name,
                     approved=True, account_number=request.account_number, reason="")
    return link


def reject(request_id: int, reviewer: str, reason: str, *, actor_id: int | None = None) -> LinkRequest:
    """Staff reject a request with a reason the resident is told."""
    request = _pending(request_id)
    if not reason.strip():
        raise DomainError("reason_required", "give the resident a reason")
    request.status, request.reviewed_at, request.reviewer = "rejected", utcnow(), reviewer[:254]
    request.reason = reason.strip()[:500]
    db.session.commit()
    user = db.session.get(User, request.user_id)
    audit.record("account_link.request_rejected", user_id=user.id, actor_id=actor_id, request=request.id)
    with in_language_of(user):
        links.notify(user.email, _("Your account link request was not approved"), "link_request_decided",
                     name=user.name, approved=False, account_number=request.account_number, reason=request.reason)
    return request
