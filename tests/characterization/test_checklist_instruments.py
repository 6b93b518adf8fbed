"""Integration: real instrument files read by exotrace.instruments feed the checklist."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from exotrace.characterization import ItemStatus, PurityBand, check_study
from exotrace.cli.main import main

instruments = pytest.importorskip("exotrace.instruments")
read_file = getattr(instruments, "read_file", None)
if read_file is None:  # pragma: no cover - the readers are built in parallel
    pytest.skip("exotrace.instruments.read_file not available", allow_module_level=True)

DATA = Path(__file__).resolve().parents[1] / "data" / "characterization"


@pytest.fixture(scope="module")
def beads2(fixtures_dir):
    path = fixtures_dir / "nanosight" / "beads2.csv"
    if not path.is_file():
        pytest.skip("beads2.csv fixture absent")
    return path


def test_real_nanosight_export_satisfies_counting_and_pairs_with_protein(beads2):
    nta = read_file(beads2)
    # A plate result built with the readers' own record types (no BCA fixture is shared).
    plate = instruments.InstrumentResult(
        file="bca_plate.csv", format="bca-plate", instrument="plate reader",
        protein_samples=(
            instruments.ProteinSample("100nmbeads", 200.0, 20.0, 0.41, 2.1, 3, 10.0),
            instruments.ProteinSample("blank", None, None, 0.0, None, 3, 1.0),
        ),
    )
    report = check_study(DATA / "incomplete_study.yaml", [nta, plate])
    counting = report.item("single_vesicle.counting")
    assert counting.status is ItemStatus.MET
    # the vendor's Average column: 6.09e12 particles/mL, mean 101.5 nm, mode 98.4 nm
    file_evidence = [e for e in counting.evidence if "beads2.csv" in e]
    assert file_evidence and "6.09e+12 particles/mL" in file_evidence[0]
    assert "mean 101.5 nm" in file_evidence[0] and "[NTA]" in file_evidence[0]
    # the file's sample name matches the plate's "100nmbeads" (the blank has no value);
    # the study's own particle value pairs with that single protein value as well
    assert len(report.purity) == 2
    file_ratios = [r for r in report.purity if "beads2.csv" in r.particle_method]
    assert len(file_ratios) == 1
    assert file_ratios[0].particles_per_ug == pytest.approx(6.09e12 / 200.0, rel=1e-12)
    assert file_ratios[0].band is PurityBand.HIGH
    assert report.item("quantification.global_measures").status is ItemStatus.MET
    assert any("Vibration" in n for n in report.notes)


def test_cli_reads_the_real_file(beads2, capsys):
    code = main(["misev", "check", str(DATA / "incomplete_study.yaml"), str(beads2), "--json"])
    out, err = capsys.readouterr()
    assert code == 0, err
    data = json.loads(out)
    assert data["measurements"][0]["format"] == "nanosight-summary"
    assert data["measurements"][0]["particles_per_ml"] == 6.09e12
    # counting was already met from the YAML; the file adds evidence, not a new item
    assert data["score_percent"] == 40.0


def test_cli_unreadable_real_measurement(tmp_path, capsys):
    bad = tmp_path / "truncated_ExperimentSummary.csv"
    bad.write_text("NTA Experiment Summary File,\n[Results]\nConcentration", encoding="utf-8")
    code = main(["misev", "check", str(DATA / "incomplete_study.yaml"), str(bad)])
    _, err = capsys.readouterr()
    assert code != 0 and code != 1
    assert err.count("\n") == 1 and "truncated_ExperimentSummary.csv" in err
