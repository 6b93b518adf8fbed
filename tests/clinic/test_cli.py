"""``exotrace protocol show`` and ``exotrace protocol dose``."""

from __future__ import annotations

import json

import pytest

from exotrace.cli.main import main
from exotrace.clinic import example_protocol_path

CARDIO = str(example_protocol_path("cardiomyopathy"))
SKIN = str(example_protocol_path("skin_rejuvenation"))


def test_show_json(capsys):
    assert main(["protocol", "show", CARDIO, "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["id"] == "EXO-CARD-01"
    assert data["arms"][0]["dose_levels"] == [5e9, 1e10, 2e10]
    assert data["outcomes"][0]["loinc"] == "10230-1"


def test_show_human(capsys):
    assert main(["protocol", "show", SKIN]) == 0
    out = capsys.readouterr().out
    assert "EXO-SKIN-01" in out and "ESC-HYDR" in out and "week12" in out


def test_dose_json(capsys):
    code = main(["protocol", "dose", CARDIO, "--arm", "IV", "--level", "3", "--weight-kg", "70",
                 "--particles-per-ml", "2e11", "--particles-per-ug", "1e10", "--json"])
    assert code == 0
    d = json.loads(capsys.readouterr().out)
    assert d["particles"] == pytest.approx(1.4e12)
    assert d["volume_ml"] == pytest.approx(7.0)
    assert d["protein_ug"] == pytest.approx(140.0)
    assert d["dose_unit"] == "particles/kg"


def test_dose_human(capsys):
    assert main(["protocol", "dose", SKIN, "--arm", "MN", "--level", "1",
                 "--particles-per-ml", "5e10"]) == 0
    out = capsys.readouterr().out
    assert "1e+10" in out and "0.2 mL" in out


@pytest.mark.parametrize(("args", "code", "message"), [
    (["--arm", "IV", "--level", "3", "--particles-per-ml", "2e11"], 2, "body weight"),
    (["--arm", "XX", "--level", "1", "--weight-kg", "70", "--particles-per-ml", "2e11"], 5,
     "no arm 'XX'"),
    (["--arm", "IV", "--level", "9", "--weight-kg", "70", "--particles-per-ml", "2e11"], 2,
     "levels are 1-3"),
    (["--arm", "IV", "--level", "1", "--weight-kg", "70", "--particles-per-ml", "-1"], 2,
     "lot concentration"),
])
def test_dose_errors_are_one_line(capsys, args, code, message):
    assert main(["protocol", "dose", CARDIO, *args, "--json"]) == code
    err = capsys.readouterr().err.strip()
    assert message in err and err.count("\n") == 0 and "Traceback" not in err


def test_bad_yaml_names_the_field(tmp_path, capsys):
    bad = tmp_path / "bad.yaml"
    bad.write_text(example_protocol_path("cardiomyopathy").read_text(encoding="utf-8")
                   .replace("route: intravenous", "route: oral"), encoding="utf-8")
    assert main(["protocol", "show", str(bad)]) == 3
    err = capsys.readouterr().err.strip()
    assert "field 'arms[0].route'" in err and str(bad) in err and err.count("\n") == 0


def test_missing_file(tmp_path, capsys):
    assert main(["protocol", "show", str(tmp_path / "none.yaml"), "--json"]) == 3
    assert "file not found" in capsys.readouterr().err
