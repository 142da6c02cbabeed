"""``idp demo`` finds the example departments by their department.json, and says clearly what is
wrong with a broken one or with a port for a department that does not exist."""
from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from idp.cli.demo import EXAMPLES, demo
from idp.services.demo import find_departments


def test_the_examples_describe_four_departments_on_their_own_ports():
    found = find_departments(EXAMPLES)
    assert [d.slug for d in found] == ["billing", "permits", "complaints", "programs"]
    assert len({d.port for d in found}) == 4 and all(d.purpose and d.category for d in found)


def test_a_broken_description_is_named(tmp_path):
    (tmp_path / "parks").mkdir()
    (tmp_path / "parks" / "department.json").write_text(json.dumps({"name": "Parks"}))
    with pytest.raises(ValueError, match="parks/department.json"):
        find_departments(tmp_path)


@pytest.mark.parametrize("option, message", [("nowhere=5999", "no department called nowhere"),
                                             ("billing=port", "use SLUG=PORT"),
                                             ("billing=5000", "need a port each")])
def test_bad_department_ports_stop_the_demo_before_it_starts(option, message, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("IDP_INSTANCE_PATH", str(tmp_path / "instance"))
    result = CliRunner().invoke(demo, ["--department-port", option])
    assert result.exit_code != 0 and message in result.output
    assert not (tmp_path / "instance" / "idp.sqlite3").exists()
