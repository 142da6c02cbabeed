"""``idp mail status`` and ``idp mail retry``: the persistent mail queue."""
from __future__ import annotations

import click
from flask.cli import with_appcontext

from idp.services import mail_queue


@click.group("mail")
def mail() -> None:
    """The queue of outgoing mail (delivered in the background, retried with backoff)."""


@mail.command("status")
@with_appcontext
def status() -> None:
    """How many messages wait, have failed at least once, or were given up."""
    state = mail_queue.state()
    click.echo(f"waiting: {state.waiting}, failing: {state.failing}, given up: {state.given_up}")
    for row in mail_queue.problems():
        click.echo(f"{row.id}\t{row.created_at:%Y-%m-%d %H:%M}\tattempts {row.attempts}\t"
                   f"{'given up' if row.gave_up_at else 'next ' + f'{row.next_attempt_at:%H:%M:%S}'}\t{row.last_error}")


@mail.command("retry")
@click.option("--given-up", is_flag=True, help="Also retry messages that were given up.")
@with_appcontext
def retry(given_up: bool) -> None:
    """Deliver every waiting message now (whatever its backoff), and report."""
    if given_up:
        mail_queue.requeue()
    mail_queue.make_due_now()
    sent, failed = mail_queue.deliver_due(limit=100_000)
    click.echo(f"sent: {sent}, failed: {failed}")
    if failed:
        raise SystemExit(1)
