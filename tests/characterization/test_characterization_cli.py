"""``exotrace purity`` and ``exotrace misev check`` through exotrace.cli.main.main."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import exotrace.instruments
from exotrace.characterization import example_study_path
from exotrace.cli.main import main

DATA = Path(__file__).resolve().parents[1] / "data" / "characterization"


def _run(capsys, *args):
    code = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out, err


def test_purity_json(capsys):
    code, out, err = _run(capsys, "purity", "--particles-per-ml", "6e11",
                          "--protein-ug-per-ml", "12", "--particle-method", "NTA",
                          "--protein-method", "micro-BCA", "--json")
    assert code == 0, err
    data = json.loads(out)
    assert data["particles_per_ug"] == pytest.approx(5e10, rel=1e-12)
    assert data["band"] == "high purity"
    assert data["particle_method"] == "NTA"
    assert data["unit"] == "particles/ug protein"


@pytest.mark.parametrize(("particles", "band"), [("3e10", "between bands"),
                                                 ("2e10", "low purity"),
                                                 ("1.5e9", "between bands"),
                                                 ("1.4e9", "impure")])
def test_purity_bands_on_the_command_line(capsys, particles, band):
    code, out, _ = _run(capsys, "purity", "--particles-per-ml", particles,
                        "--protein-ug-per-ml", "1", "--json")
    assert code == 0
    assert json.loads(out)["band"] == band


def test_purity_human_output(capsys):
    code, out, _ = _run(capsys, "purity", "--particles-per-ml", "4e9", "--protein-ug-per-ml", "2")
    assert code == 0
    assert "2e+09 particles/ug protein: low purity" in out


@pytest.mark.parametrize("protein", ["0", "-3", "nan"])
def test_purity_invalid_protein_is_one_line(capsys, protein):
    code, out, err = _run(capsys, "purity", "--particles-per-ml", "1e10",
                          "--protein-ug-per-ml", protein)
    assert code == 2
    assert out == ""
    assert err.count("\n") == 1 and "protein" in err and "Traceback" not in err


def test_purity_non_number_is_a_usage_error(capsys):
    code, _, err = _run(capsys, "purity", "--particles-per-ml", "lots", "--protein-ug-per-ml", "1")
    assert code == 2 and "--particles-per-ml" in err and err.count("\n") == 1


def test_misev_check_json(capsys):
    code, out, err = _run(capsys, "misev", "check", DATA / "incomplete_study.yaml", "--json")
    assert code == 0, err
    data = json.loads(out)
    assert data["score_percent"] == 40.0
    assert data["n_met"] == 8 and data["n_applicable"] == 20


def test_misev_check_human(capsys):
    code, out, _ = _run(capsys, "misev", "check", example_study_path())
    assert code == 0
    assert "completeness 100.0 %" in out


@pytest.mark.parametrize(("fmt", "start"), [("md", "# MISEV2023 checklist"),
                                            ("html", "<!DOCTYPE html>"), ("json", "{")])
def test_misev_check_formats_to_stdout(capsys, fmt, start):
    code, out, _ = _run(capsys, "misev", "check", DATA / "cell_line_study.yaml", "--format", fmt)
    assert code == 0
    assert out.startswith(start)


def test_misev_check_writes_file(capsys, tmp_path):
    target = tmp_path / "report.html"
    code, out, _ = _run(capsys, "misev", "check", DATA / "incomplete_study.yaml", "-o", target,
                        "--json")
    assert code == 0
    summary = json.loads(out)
    assert {k: summary[k] for k in ("output", "format", "score_percent", "n_met",
                                     "n_applicable")} == {
        "output": str(target), "format": "html", "score_percent": 40.0, "n_met": 8,
        "n_applicable": 20}
    assert len(summary["missing"]) == 12
    assert target.read_text(encoding="utf-8").startswith("<!DOCTYPE html>")
    md = tmp_path / "r.txt"
    assert _run(capsys, "misev", "check", DATA / "incomplete_study.yaml", "-o", md)[0] == 0
    assert md.read_text(encoding="utf-8").startswith("# MISEV2023")


def test_misev_check_min_score(capsys):
    code, out, err = _run(capsys, "misev", "check", DATA / "incomplete_study.yaml",
                          "--min-score", "50", "--json")
    assert code == 9
    assert json.loads(out)["score_percent"] == 40.0
    assert "below --min-score 50 %" in err and err.count("\n") == 1


@pytest.mark.parametrize(("name", "words"), [("invalid_syntax.yaml", "line 5"),
                                             ("invalid_method.yaml", "separation.steps[1].method"),
                                             ("invalid_type.yaml", "collection.volume_ml"),
                                             ("absent.yaml", "file not found")])
def test_misev_check_bad_study(capsys, name, words):
    code, out, err = _run(capsys, "misev", "check", DATA / name)
    assert code == 3
    assert out == ""
    assert err.count("\n") == 1 and words in err and name in err


def test_misev_check_unreadable_measurement_names_file(capsys, monkeypatch, tmp_path):
    def broken_reader(path):
        raise ValueError("unexpected byte 0xff")

    monkeypatch.setattr(exotrace.instruments, "read_file", broken_reader, raising=False)
    bad = tmp_path / "garbage.csv"
    bad.write_bytes(b"\xff\xfe junk")
    code, out, err = _run(capsys, "misev", "check", DATA / "incomplete_study.yaml", bad)
    assert code == 3
    assert err.count("\n") == 1
    assert "garbage.csv" in err and "unexpected byte" in err and "Traceback" not in err


def test_misev_check_cannot_write_output(capsys, tmp_path):
    code, _, err = _run(capsys, "misev", "check", DATA / "incomplete_study.yaml", "-o",
                        tmp_path / "no" / "such" / "dir" / "r.md")
    assert code == 3 and "cannot write" in err


def test_misev_example_round_trip(capsys, tmp_path):
    target = tmp_path / "my_study.yaml"
    code, out, _ = _run(capsys, "misev", "example", "-o", target, "--json")
    assert code == 0 and json.loads(out) == {"output": str(target)}
    code, out, _ = _run(capsys, "misev", "check", target, "--json")
    assert code == 0 and json.loads(out)["score_percent"] == 100.0
    code, _, err = _run(capsys, "misev", "example", "-o", target)
    assert code == 3 and "already exists" in err
    code, out, _ = _run(capsys, "misev", "example")
    assert code == 0 and out.startswith("# Example study description")
