"""``idp link-requests``: staff review of requests to link a municipal account with a document
(until the admin console shows the queue)."""
from __future__ import annotations

from pathlib import Path

import click
from flask.cli import with_appcontext

from idp.extensions import db
from idp.models import LinkRequest, User
from idp.services import DomainError, municipal

EXTENSIONS = {"application/pdf": ".pdf", "image/png": ".png", "image/jpeg": ".jpg"}


@click.group("link-requests")
def link_requests() -> None:
    """Review residents' requests to link a municipal account with a supporting document."""


@link_requests.command("list")
@with_appcontext
def list_requests() -> None:
    """The pending requests, oldest first."""
    pending = municipal.pending_requests()
    if not pending:
        click.echo("no pending requests")
    for request in pending:
        user = db.session.get(User, request.user_id)
        click.echo(f"{request.id}\t{request.created_at:%Y-%m-%d %H:%M}\t{request.account_number}\t{request.role}\t"
                   f"{user.email if user else '?'}\t{request.document_type}\t{request.note[:60]}")


@link_requests.command("save-document")
@click.argument("request_id", type=int)
@click.argument("directory", type=click.Path(file_okay=False, path_type=Path))
@with_appcontext
def save_document(request_id: int, directory: Path) -> None:
    """Write a request's document to DIRECTORY to look at it (named by request number and type)."""
    request = db.session.get(LinkRequest, request_id)
    if request is None:
        raise click.ClickException("no request with that number")
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"link-request-{request.id}{EXTENSIONS.get(request.document_type, '.bin')}"
    path.write_bytes(request.document)
    click.echo(str(path))


@link_requests.command("approve")
@click.argument("request_id", type=int)
@click.option("--reviewer", required=True, help="Who reviewed it (recorded in the audit log).")
@with_appcontext
def approve(request_id: int, reviewer: str) -> None:
    """Link the account as requested and tell the resident."""
    try:
        link = municipal.approve(request_id, reviewer)
    except DomainError as exc:
        raise click.ClickException(exc.message) from None
    click.echo(f"request {request_id} approved: link {link.id} created")


@link_requests.command("reject")
@click.argument("request_id", type=int)
@click.option("--reviewer", required=True, help="Who reviewed it (recorded in the audit log).")
@click.option("--reason", required=True, help="Why, in words the resident will read in the email.")
@with_appcontext
def reject(request_id: int, reviewer: str, reason: str) -> None:
    """Refuse the request with a reason and tell the resident."""
    try:
        municipal.reject(request_id, reviewer, reason)
    except DomainError as exc:
        raise click.ClickException(exc.message) from None
    click.echo(f"request {request_id} rejected")
