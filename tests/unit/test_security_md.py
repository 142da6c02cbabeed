"""SECURITY.md stays true to the suite: every checklist item has a module under tests/security,
the table names exactly those modules, and an item is a "gap" exactly when its module holds a
strict xfail test (so a protection built later shows up as a failing xfail to un-mark)."""
from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).parents[2]
SUITE = ROOT / "tests" / "security"
ROW = re.compile(r"^\| (\d+) \| .*? \| (?:core)? \| (.*?) \| (covered|gap) \|", re.M)


def modules() -> dict[int, set[str]]:
    found: dict[int, set[str]] = {}
    for path in SUITE.glob("test_item_*.py"):
        found.setdefault(int(re.match(r"test_item_(\d+)_", path.name)[1]), set()).add(path.name)
    return found


def has_xfail(name: str) -> bool:
    tree = ast.parse((SUITE / name).read_text(encoding="utf-8"))
    return any(isinstance(node, ast.Attribute) and node.attr == "xfail" for node in ast.walk(tree))


def test_every_item_has_a_module_named_with_its_number():
    assert sorted(modules()) == list(range(1, 116))


def test_the_table_names_each_items_modules_and_marks_gaps_by_their_xfail_tests():
    rows = {int(number): (set(re.findall(r"`(test_item_\w+\.py)`", tests)), status)
            for number, tests, status in ROW.findall((ROOT / "SECURITY.md").read_text(encoding="utf-8"))}
    assert sorted(rows) == list(range(1, 116))
    for number, names in modules().items():
        listed, status = rows[number]
        assert listed == names, number
        assert status == ("gap" if any(has_xfail(name) for name in names) else "covered"), number
