"""``idp retention run``: delete what is kept no longer (see :mod:`idp.services.retention`)."""
from __future__ import annotations

import click
from flask.cli import with_appcontext

from idp.services import retention as retention_service


@click.group("retention")
def retention() -> None:
    """What is no longer needed is deleted; each server does it hourly by itself."""


@retention.command("run")
@with_appcontext
def run() -> None:
    """Run one retention pass now and print what it deleted."""
    outcome = retention_service.run()
    click.echo(f"unconfirmed registrations deleted: {outcome.unverified_accounts}, "
               f"closed accounts erased: {outcome.closed_accounts}, audit events deleted: {outcome.audit_events}, "
               f"one-time records deleted: {outcome.one_time_records}")
