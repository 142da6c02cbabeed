"""``idp users create`` and ``idp users grant-role``."""
from __future__ import annotations

import click
from flask.cli import with_appcontext

from idp.extensions import db
from idp.services import DomainError, accounts, audit

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
