"""Records a department keeps for residents (applications, reports): reference numbers residents
can quote, a status history, and saving a new record under a fresh reference."""
from __future__ import annotations

import secrets
from collections.abc import Callable
from datetime import date, datetime, timezone

import click
from sqlalchemy import Column, DateTime, Integer, String, select
from sqlalchemy.exc import IntegrityError


def new_reference(prefix: str) -> str:
    """A reference such as ``PRM-2026-004211`` (random, so it does not reveal how many there are)."""
    return f"{prefix}-{date.today().year}-{secrets.randbelow(1_000_000):06d}"


def add_status(record, event_model, status: str, note: str = "") -> None:
    """Move ``record`` to ``status`` and add the step to its history (``record.events``)."""
    record.status = status
    record.events.append(event_model(status=status, note=note, at=datetime.now(timezone.utc)))


def history(record) -> list[dict]:
    return [{"status": e.status, "note": e.note, "at": e.at.isoformat()} for e in record.events]


def save_with_reference(db, prefix: str, build: Callable[[str], object], tries: int = 5):
    """Build a record around a fresh reference and commit it (one transaction); a reference that
    is already taken draws another."""
    for _ in range(tries):
        record = build(new_reference(prefix))
        db.session.add(record)
        try:
            db.session.commit()
            return record
        except IntegrityError:
            db.session.rollback()
    raise RuntimeError(f"no free {prefix} reference after {tries} tries")


class StatusEventColumns:
    """The columns of one step in a record's status history; a department's event model mixes this
    in and adds its foreign key and relationship."""
    id = Column(Integer, primary_key=True)
    status = Column(String(20), nullable=False)
    note = Column(String(500), nullable=False, default="")
    at = Column(DateTime(timezone=True), nullable=False)


def add_status_command(group, db, name: str, option: str, *, model, event_model, choices: dict,
                       still_open: Callable[[object], bool], noun: str) -> None:
    """Add ``<group> <name> REFERENCE --<option> STATUS [--note TEXT]`` for city staff: one step
    added to a record's history, with clear errors for bad input."""
    @group.command(name, help=f"Record a step on {noun} REFERENCE (city staff).")
    @click.argument("reference")
    @click.option(f"--{option}", "new_status", required=True, type=click.Choice(list(choices)), help="The new status.")
    @click.option("--note", default="", help="A note the resident sees in the history (at most 500 characters).")
    def command(reference, new_status, note):
        if len(note) > 500:
            raise click.BadParameter("at most 500 characters", param_hint="--note")
        record = db.session.scalar(select(model).where(model.reference == reference))
        if record is None:
            raise click.ClickException(f"no {noun} {reference}")
        if not still_open(record):
            raise click.ClickException(f"{noun} {reference} is {record.status}: it can no longer change")
        add_status(record, event_model, choices[new_status], note)
        db.session.commit()
        click.echo(f"{reference}: {choices[new_status]}")
