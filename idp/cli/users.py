"""``idp users create``, ``idp users grant-role`` and ``idp users force-reset``."""
from __future__ import annotations

import click
from flask.cli import with_appcontext

from idp.extensions import db
from idp.services import DomainError, accounts, audit, breach

ROLES = ("support", "administrator")


@click.group()
def users() -> None:
    """Manage residents and staff."""


@users.command("create")
@click.option("--email", required=True, help="The resident's email address.")
@click.option("--password", required=True, help="The initial password (policy applies).")
@click.option("--name", default="", help="Display name.")
@click.option("--verified-email", is_flag=True, help="Mark the address as already verified.")
@with_appcontext
def create(email: str, password: str, name: str, verified_email: bool) -> None:
    """Create a resident account."""
    try:
        user = accounts.create_user(email, password, name=name, email_verified=verified_email)
    except DomainError as exc:
        raise click.ClickException(exc.message) from None
    audit.record("user.created", user_id=user.id, via="cli")
    click.echo(f"created user {user.sub} <{user.email}>")


@users.command("grant-role")
@click.argument("email")
@click.argument("role", type=click.Choice(ROLES))
@with_appcontext
def grant_role(email: str, role: str) -> None:
    """Give a staff role to an existing account."""
    user = accounts.find_by_email(email)
    if user is None:
        raise click.ClickException("no account with that email address")
    if role not in user.roles:
        user.roles = [*user.roles, role]
        db.session.commit()
    audit.record("user.role_granted", user_id=user.id, role=role, via="cli")
    click.echo(f"{user.email} now has role {role}")


@users.command("force-reset")
@click.option("--all", "everyone", is_flag=True, help="Every resident with a password.")
@click.option("--email", "emails", multiple=True, help="An affected resident's address (repeatable).")
@click.option("--incident", required=True,
              help="What happened, in a few plain sentences: quoted in every resident's notice.")
@click.option("--reason", required=True, help="Why (kept in the audit trail), e.g. the incident number.")
@click.option("--authenticator-apps", is_flag=True,
              help="Also delete their authenticator-app secrets (when those, or the key that seals them, may "
                   "have leaked); the notice asks them to set the app up again.")
@click.option("--dry-run", is_flag=True, help="Only count the residents it would reset.")
@with_appcontext
def force_reset(everyone: bool, emails: tuple[str, ...], incident: str, reason: str, authenticator_apps: bool,
                dry_run: bool) -> None:
    """Breach response (POPIA s22): switch off the passwords of the affected residents (and with
    --authenticator-apps their authenticator-app secrets), end their sessions and tokens, mail each
    the notice (what happened, what it may mean, what was done, what to do) and print a draft of the
    report to the Information Regulator."""
    if everyone == bool(emails):
        raise click.UsageError("give either --all or one or more --email")
    try:
        user_ids = breach.affected(everyone=everyone, emails=emails)
        if dry_run:
            click.echo(f"would reset {len(user_ids)} residents")
            return
        outcome = breach.force_reset(user_ids, incident=incident, reason=reason, authenticator_apps=authenticator_apps)
    except DomainError as exc:
        raise click.ClickException(exc.message) from None
    click.echo(f"passwords switched off and notices queued for {outcome.residents} residents")
    if authenticator_apps:
        click.echo(f"authenticator-app secrets deleted: {outcome.authenticator_apps}")
    click.echo()
    click.echo(breach.regulator_draft(outcome, incident))
