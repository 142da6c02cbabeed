"""Breach response (POPIA s22, checklist 109): force a password reset on the residents a compromise
affects and tell each of them what happened, what it may mean for them, what was done and what to
do; draft the report to the Information Regulator. deploy/README.md ("Breach response") is the runbook."""
from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from flask_babel import gettext as _
from sqlalchemy import delete

from idp.extensions import db
from idp.i18n import in_language_of
from idp.models import TotpCredential, User
from idp.models.types import utcnow
from idp.services import DomainError, audit, grants, sessions
from idp.services import action_tokens as links

MAX_INCIDENT = 2000


@dataclass
class ForcedReset:
    residents: int
    at: str
    authenticator_apps: int = 0  # authenticator-app secrets removed


def affected(*, everyone: bool, emails: Iterable[str]) -> list[int]:
    """The ids of the residents to reset: every account with a password, or those with these addresses
    (an unknown address raises DomainError naming it, before anything changes)."""
    if everyone:
        return list(db.session.scalars(db.select(User.id).where(User.password_hash.is_not(None)).order_by(User.id)))
    from idp.services import accounts

    ids = []
    for email in emails:
        user = accounts.find_by_email(email)
        if user is None:
            raise DomainError("unknown_email", f"no account has the address {email}")
        ids.append(user.id)
    return list(dict.fromkeys(ids))


def force_reset(user_ids: list[int], *, incident: str, reason: str, authenticator_apps: bool = False) -> ForcedReset:
    """Switch off each resident's password, end their sessions and tokens and queue the s22 notice in
    their language (it sends them to "forgot password"; mail never carries a one-time link that could
    expire before they read it). With ``authenticator_apps``, also delete their authenticator-app
    secrets (when those, or the key that seals them, may have leaked): the notice asks them to set
    the app up again. One commit per resident, so an interrupted run can be repeated."""
    incident = (incident or "").strip()
    if not incident or len(incident) > MAX_INCIDENT:
        raise DomainError("invalid_incident", f"describe the incident in 1 to {MAX_INCIDENT} characters")
    removed = 0
    for user_id in user_ids:
        user = db.session.get(User, user_id)
        user.password_hash = None
        had_app = authenticator_apps and db.session.execute(
            delete(TotpCredential).where(TotpCredential.user_id == user_id)).rowcount > 0
        removed += had_app
        db.session.commit()
        sessions.end_all_for_user(user_id)
        grants.revoke_all_for_user(user_id)
        with in_language_of(user):
            links.notify(user.email, _("Important: choose a new eCitizen Passport password"), "forced_reset",
                         name=user.name, incident=incident, app_removed=had_app,
                         link=links.absolute_link("/forgot-password"))
    audit.record("breach.forced_reset", residents=len(user_ids), authenticator_apps=removed, reason=reason[:500])
    return ForcedReset(residents=len(user_ids), at=utcnow().isoformat(timespec="minutes"), authenticator_apps=removed)


def regulator_draft(outcome: ForcedReset, incident: str) -> str:
    """The facts section of the s22 notification to the Information Regulator, to complete by hand."""
    return "\n".join((
        "Draft: notification of a security compromise (POPIA section 22) to the Information Regulator",
        f"- Description of the compromise: {incident.strip()}",
        f"- Data subjects affected: {outcome.residents} residents of eCitizen Passport",
        "- Personal information possibly accessed: email address, name, phone number (if given), password hash",
        f"- Measures taken ({outcome.at} UTC): every affected password switched off; all sessions ended; "
        "all tokens of connected services revoked; "
        + (f"{outcome.authenticator_apps} authenticator-app secrets deleted; " if outcome.authenticator_apps else "")
        + "each resident notified by email in their language",
        "- Recommendation to data subjects: choose a new password; change the same password elsewhere",
        "- Identity of the unauthorised person, if known: (complete)",
    ))
