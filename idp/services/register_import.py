"""Importing the city's register of municipal accounts from the billing system's export (CSV or
JSON Lines, one account per row; the row format is schemas/municipal-account-register.schema.json).

The file is read once, streaming, so a register of a million accounts never sits in memory: each
row is checked (a rejected row is reported with its line number) and valid rows are upserted in
batches, all inside one transaction. When any row was rejected and ``skip_invalid`` is off, or
anything fails half-way, the transaction is rolled back and the register is as it was.
Re-importing the same file changes nothing but the accounts' ``imported_at`` (when an import last
listed them), which is also how an account number listed twice in one file is noticed."""
from __future__ import annotations

import csv
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from idp.extensions import db
from idp.models import MunicipalAccount
from idp.models.municipal import ACCOUNT_TYPES
from idp.models.types import utcnow
from idp.services import DomainError, audit, identifiers

REQUIRED = ("account_number", "account_type", "holder_name", "service_address")
OPTIONAL = ("erf_number", "status", "holder_id_number", "linking_pin")
LIMITS = {"holder_name": 200, "service_address": 300, "erf_number": 40}
STATUSES = ("active", "closed")
MAX_REPORTED = 1000
FORMATS = {".csv": "csv", ".jsonl": "jsonl", ".ndjson": "jsonl"}


@dataclass
class ImportReport:
    total: int = 0
    inserted: int = 0
    updated: int = 0
    unchanged: int = 0
    rejected_count: int = 0
    rejected: list[tuple[int, str]] = field(default_factory=list)
    written: bool = False

    def reject(self, line: int, reason: str) -> None:
        self.rejected_count += 1
        if len(self.rejected) < MAX_REPORTED:
            self.rejected.append((line, reason))


def validate_row(row: dict) -> tuple[dict | None, str | None]:
    """(model values, None) for a good row (digests instead of ID number and PIN), else (None, reason)."""
    if not isinstance(row, dict):
        return None, "not an object"
    unknown = sorted(k for k in row if k not in REQUIRED + OPTIONAL)
    if unknown:
        return None, f"unknown field: {unknown[0]}"
    values = {}
    for key in REQUIRED + OPTIONAL:
        raw = row.get(key)
        if raw is not None and not isinstance(raw, str):
            return None, f"{key}: must be text"
        values[key] = (raw or "").strip()
    for key in REQUIRED:
        if not values[key]:
            return None, f"{key}: required"
    for key, limit in LIMITS.items():
        if len(values[key]) > limit:
            return None, f"{key}: longer than {limit} characters"
    number = identifiers.clean_account_number(values["account_number"])
    if number != values["account_number"].upper() or not identifiers.account_number_ok(number):
        return None, "account_number: does not match the city's format or check digit"
    if values["account_type"] not in ACCOUNT_TYPES:
        return None, "account_type: must be one of " + ", ".join(ACCOUNT_TYPES)
    status = values["status"] or "active"
    if status not in STATUSES:
        return None, "status: must be active or closed"
    if values["holder_id_number"] and not identifiers.sa_id_ok(values["holder_id_number"]):
        return None, "holder_id_number: not a valid South African identity number"
    pin = values["linking_pin"]
    if pin and not (pin.isdigit() and 4 <= len(pin) <= 8):
        return None, "linking_pin: must be 4 to 8 digits"
    return {"account_number": number, "account_type": values["account_type"], "holder_name": values["holder_name"],
            "service_address": values["service_address"], "erf_number": values["erf_number"] or None,
            "status": status,
            "holder_id_digest": identifiers.holder_id_digest(values["holder_id_number"])
            if values["holder_id_number"] else None,
            "linking_pin_digest": identifiers.linking_pin_digest(pin) if pin else None}, None


def detect_format(path: Path, fmt: str | None) -> str:
    if fmt:
        if fmt not in ("csv", "jsonl"):
            raise DomainError("invalid_format", "format must be csv or jsonl")
        return fmt
    found = FORMATS.get(path.suffix.lower())
    if found is None:
        raise DomainError("invalid_format", "cannot tell the format from the file name: use --format csv or jsonl")
    return found


def read_rows(path: Path, fmt: str) -> Iterator[tuple[int, dict | str]]:
    """(line number, row) or (line number, error text), streaming."""
    with path.open(newline="", encoding="utf-8-sig") as handle:
        if fmt == "csv":
            reader = csv.DictReader(handle)
            if not reader.fieldnames:
                return
            extra = [name for name in reader.fieldnames if name not in REQUIRED + OPTIONAL]
            for row in reader:
                line = reader.line_num
                if extra:
                    yield line, f"unknown column: {extra[0]}"
                elif None in row:
                    yield line, "more values than columns"
                else:
                    yield line, {k: v for k, v in row.items() if v not in (None, "")}
            return
        for line, text in enumerate(handle, start=1):
            if not text.strip():
                continue
            try:
                parsed = json.loads(text)
            except ValueError:
                yield line, "not valid JSON"
                continue
            yield line, parsed if isinstance(parsed, dict) else "not a JSON object"


def _upsert(batch: list[tuple[int, dict]], report: ImportReport, run_at) -> None:
    numbers = [values["account_number"] for _, values in batch]
    existing = {row.account_number: row for row in db.session.scalars(
        db.select(MunicipalAccount).where(MunicipalAccount.account_number.in_(numbers)))}
    for line, values in batch:
        row = existing.get(values["account_number"])
        if row is not None and row.imported_at == run_at:
            report.reject(line, "account_number: appears twice in the file")
        elif row is None:
            existing[values["account_number"]] = MunicipalAccount(**values, imported_at=run_at)
            db.session.add(existing[values["account_number"]])
            report.inserted += 1
        else:
            changed = any(getattr(row, key) != value for key, value in values.items())
            for key, value in values.items():
                setattr(row, key, value)
            row.imported_at = run_at
            report.updated += changed
            report.unchanged += not changed
    db.session.flush()
    db.session.expunge_all()  # nothing of this batch stays in memory


def import_register(path: str | Path, *, fmt: str | None = None, skip_invalid: bool = False,
                    batch_size: int = 1000) -> ImportReport:
    """Check and upsert the register file in one transaction; see the module docstring."""
    path = Path(path)
    fmt = detect_format(path, fmt)
    report = ImportReport()
    run_at = utcnow()
    batch: list[tuple[int, dict]] = []
    try:
        for line, row in read_rows(path, fmt):
            report.total += 1
            values, problem = (None, row) if isinstance(row, str) else validate_row(row)
            if problem:
                report.reject(line, problem)
                continue
            batch.append((line, values))
            if len(batch) >= batch_size:
                _upsert(batch, report, run_at)
                batch = []
        if batch:
            _upsert(batch, report, run_at)
    except Exception:
        db.session.rollback()
        raise
    report.rejected.sort()  # duplicates are noticed when their batch is written
    if report.rejected_count and not skip_invalid:
        db.session.rollback()
        report.inserted = report.updated = report.unchanged = 0
        return report
    db.session.commit()
    report.written = True
    audit.record("register.imported", inserted=report.inserted, updated=report.updated,
                 unchanged=report.unchanged, rejected=report.rejected_count, file=path.name[:100])
    return report
