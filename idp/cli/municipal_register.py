"""``idp accounts import``: load the city's register of municipal accounts."""
from __future__ import annotations

import csv
from pathlib import Path

import click
from flask.cli import with_appcontext

from idp.services import DomainError
from idp.services.register_import import import_register


@click.group("accounts")
def accounts() -> None:
    """The city's register of municipal accounts."""


@accounts.command("import")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, readable=True, path_type=Path))
@click.option("--format", "fmt", type=click.Choice(["csv", "jsonl"]), default=None,
              help="The file's format (default: from its extension, .csv or .jsonl).")
@click.option("--skip-invalid", is_flag=True, help="Import the valid rows even when some are rejected.")
@with_appcontext
def import_command(file: Path, fmt: str | None, skip_invalid: bool) -> None:
    """Load or update accounts from FILE (CSV or JSON Lines; schemas/municipal-account-register.schema.json)."""
    try:
        report = import_register(file, fmt=fmt, skip_invalid=skip_invalid)
    except DomainError as exc:
        raise click.ClickException(exc.message) from None
    except (UnicodeDecodeError, csv.Error) as exc:
        raise click.ClickException(f"cannot read {file.name}: {exc}") from None
    for line, reason in report.rejected:
        click.echo(f"line {line}: {reason}", err=True)
    if report.rejected_count > len(report.rejected):
        click.echo(f"… and {report.rejected_count - len(report.rejected)} more", err=True)
    if not report.written:
        click.echo(f"nothing imported: {report.rejected_count} rows rejected "
                   "(use --skip-invalid to import the valid rows)", err=True)
        raise SystemExit(1)
    click.echo(f"imported: {report.inserted} new, {report.updated} updated, {report.unchanged} unchanged, "
               f"{report.rejected_count} rejected")

