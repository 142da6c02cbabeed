"""Importing the municipal register: CSV and JSON Lines, every bad row reported by line number,
nothing written when a row is bad (unless --skip-invalid), idempotent re-imports, the example file
and schema, and a large file in bounded memory."""
from __future__ import annotations

import json
import random
import tracemalloc
from pathlib import Path

import jsonschema

from idp.cli.municipal_register import accounts
from idp.extensions import db
from idp.models import MunicipalAccount
from idp.models.municipal import ACCOUNT_TYPES
from idp.services import identifiers
from idp.services.register_import import import_register
from tests.support.register import HOLDER_ID, with_check_digit

SCHEMAS = Path(__file__).parents[2] / "schemas"
HEADER = "account_number,account_type,holder_name,service_address,erf_number,status,holder_id_number,linking_pin\n"
A, B, C = with_check_digit("100000001"), with_check_digit("100000002"), with_check_digit("100000003")


def write(tmp_path, name, text):
    path = tmp_path / name
    path.write_text(text)
    return path


def count(app):
    with app.app_context():
        return db.session.scalar(db.select(db.func.count()).select_from(MunicipalAccount))


def test_a_good_csv_file_imports_with_digests_only(app, tmp_path):
    path = write(tmp_path, "register.csv", HEADER
                 + f"{A},residential,T Nkosi,14 Bree Street,ERF 1,active,{HOLDER_ID},4821\n"
                 + f'{B},business,"Bakery (Pty) Ltd","21 Wale Street, Bo-Kaap",,,,1357\n')
    with app.app_context():
        report = import_register(path)
        assert (report.inserted, report.rejected_count, report.written) == (2, 0, True)
        row = db.session.scalar(db.select(MunicipalAccount).where(MunicipalAccount.account_number == A))
        assert row.holder_id_digest == identifiers.holder_id_digest(HOLDER_ID)
        assert HOLDER_ID not in json.dumps({k: str(v) for k, v in row.__dict__.items()}) and "4821" not in row.linking_pin_digest
        other = db.session.scalar(db.select(MunicipalAccount).where(MunicipalAccount.account_number == B))
        assert other.service_address == "21 Wale Street, Bo-Kaap" and other.status == "active"
        assert other.holder_id_digest is None and other.erf_number is None


def test_bad_rows_are_reported_by_line_and_nothing_is_written(app, tmp_path):
    bad_check = A[:-1] + str((int(A[-1]) + 1) % 10)
    path = write(tmp_path, "register.jsonl", "\n".join([
        json.dumps({"account_number": A, "account_type": "residential", "holder_name": "Good", "service_address": "x"}),
        json.dumps({"account_number": bad_check, "account_type": "residential", "holder_name": "X", "service_address": "x"}),
        json.dumps({"account_number": B, "account_type": "farm", "holder_name": "X", "service_address": "x"}),
        "",
        json.dumps({"account_number": C, "account_type": "residential", "service_address": "x"}),
        json.dumps({"account_number": C, "account_type": "residential", "holder_name": "X", "service_address": "x",
                    "holder_id_number": "8001015009086"}),
        "{broken json",
        json.dumps({"account_number": C, "account_type": "residential", "holder_name": "X", "service_address": "x",
                    "colour": "blue"}),
        json.dumps({"account_number": A, "account_type": "residential", "holder_name": "Again", "service_address": "x"}),
        json.dumps(["not", "an", "object"]),
    ]) + "\n")
    with app.app_context():
        report = import_register(path)
    assert not report.written and count(app) == 0
    assert report.rejected == [
        (2, "account_number: does not match the city's format or check digit"),
        (3, "account_type: must be one of " + ", ".join(ACCOUNT_TYPES)),
        (5, "holder_name: required"),
        (6, "holder_id_number: not a valid South African identity number"),
        (7, "not valid JSON"),
        (8, "unknown field: colour"),
        (9, "account_number: appears twice in the file"),
        (10, "not a JSON object"),
    ]


def test_skip_invalid_imports_the_good_rows(app, tmp_path):
    path = write(tmp_path, "register.csv", HEADER + f"{A},residential,A,x,,,,\n{B},residential,,x,,,,\n{C},business,C,y,,,,\n")
    with app.app_context():
        report = import_register(path, skip_invalid=True)
    assert (report.inserted, report.rejected) == (2, [(3, "holder_name: required")]) and count(app) == 2


def test_re_import_is_idempotent_and_changes_are_updates(app, tmp_path):
    path = write(tmp_path, "register.csv", HEADER + f"{A},residential,A,x,,,,\n{B},residential,B,y,,,,\n")
    with app.app_context():
        import_register(path)
        again = import_register(path)
        assert (again.inserted, again.updated, again.unchanged) == (0, 0, 2)
        write(tmp_path, "register.csv", HEADER + f"{A},residential,A Renamed,x,,closed,,\n{B},residential,B,y,,,,\n")
        changed = import_register(path)
        assert (changed.inserted, changed.updated, changed.unchanged) == (0, 1, 1)
        row = db.session.scalar(db.select(MunicipalAccount).where(MunicipalAccount.account_number == A))
        assert (row.holder_name, row.status) == ("A Renamed", "closed")


def test_the_example_file_matches_the_schema_and_imports(app):
    schema = json.loads((SCHEMAS / "municipal-account-register.schema.json").read_text())
    assert schema["properties"]["account_type"]["enum"] == list(ACCOUNT_TYPES)
    example = SCHEMAS / "examples" / "municipal-account-register.jsonl"
    for line in example.read_text().splitlines():
        jsonschema.validate(json.loads(line), schema)
    with app.app_context():
        report = import_register(example)
    assert report.written and report.inserted == len(example.read_text().splitlines())


def _register_file(path: Path, rows: int, start: int) -> Path:
    rng = random.Random(start)
    with path.open("w") as handle:
        handle.write(HEADER)
        for index in range(rows):
            number = with_check_digit(f"{start + index:09d}")
            handle.write(f"{number},residential,Holder {index},{rng.randint(1, 999)} Long Street Cape Town,,,,"
                         f"{rng.randint(1000, 99999999)}\n")
    return path


def _peak_import(app, path: Path) -> tuple[int, int]:
    tracemalloc.start()
    try:
        with app.app_context():
            report = import_register(path)
        return report.inserted, tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_memory_does_not_grow_with_the_size_of_the_file(app, tmp_path):
    small = _register_file(tmp_path / "small.csv", 4_000, 300_000_000)
    large = _register_file(tmp_path / "large.csv", 24_000, 400_000_000)
    small_rows, small_peak = _peak_import(app, small)
    large_rows, large_peak = _peak_import(app, large)
    print(f"4,000 rows: peak {small_peak / 1e6:.1f} MB; 24,000 rows ({large.stat().st_size / 1e6:.1f} MB): "
          f"peak {large_peak / 1e6:.1f} MB")
    assert (small_rows, large_rows) == (4_000, 24_000) and count(app) == 28_000
    # Six times the rows, about the same peak: rows are streamed and flushed in batches, never held.
    assert large_peak < small_peak * 1.5, (small_peak, large_peak)


def test_the_cli_reports_rejections_and_exit_codes(app, tmp_path):
    runner = app.test_cli_runner()
    good = write(tmp_path, "ok.csv", HEADER + f"{A},residential,A,x,,,,\n")
    result = runner.invoke(accounts, ["import", str(good)])
    assert result.exit_code == 0 and "imported: 1 new, 0 updated, 0 unchanged, 0 rejected" in result.output
    bad = write(tmp_path, "bad.csv", HEADER + f"{B},residential,B,x,,,,\n{C},shop,C,x,,,,\n")
    result = runner.invoke(accounts, ["import", str(bad)])
    assert result.exit_code == 1
    assert "line 3: account_type" in result.output and "nothing imported: 1 rows rejected" in result.output
    assert count(app) == 1
    result = runner.invoke(accounts, ["import", str(bad), "--skip-invalid"])
    assert result.exit_code == 0 and "1 new" in result.output and count(app) == 2
    unknown_format = write(tmp_path, "register.txt", "x")
    assert "use --format" in runner.invoke(accounts, ["import", str(unknown_format)]).output
    assert runner.invoke(accounts, ["import", str(tmp_path / "missing.csv")]).exit_code == 2
    extra_column = write(tmp_path, "extra.csv", HEADER.strip() + ",colour\n" + f"{B},residential,B,x,,,,,blue\n")
    result = runner.invoke(accounts, ["import", str(extra_column)])
    assert result.exit_code == 1 and "line 2: unknown column: colour" in result.output
