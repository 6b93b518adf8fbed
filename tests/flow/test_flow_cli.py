"""``exotrace flow`` end to end on a simulated session: JSON round trips and bad input."""

from __future__ import annotations

import json

import numpy as np
import pytest

from exotrace.cli.main import main

from .conftest import BEADS_NM


def run(capsys, *args):
    capsys.readouterr()
    code = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture(scope="module")
def cal_file(session_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("flowcal") / "flowcal.json"
    assert main(["flow", "calibrate", str(session_dir / "beads.fcs"), "--bead-sizes-nm",
                 *[str(b) for b in BEADS_NM], "--bead-ri", "1.59", "--wavelength-nm", "405",
                 "-o", str(out), "--json"]) == 0
    return out


def test_simulate_writes_a_session(capsys, tmp_path):
    code, out, err = run(capsys, "flow", "simulate", tmp_path / "s", "--seed", "2",
                         "--particles-per-ml", "5e9", "--bead-sizes-nm", "100", "200", "500", "--json")
    assert code == 0, err
    data = json.loads(out)
    truth = json.loads((tmp_path / "s" / "truth.json").read_text())
    assert data["triggered_particles_per_ml"] == truth["sample"]["triggered_particles_per_ml"]
    assert truth["beads"]["bead_diameters_nm"] == [100.0, 200.0, 500.0]
    assert truth["sample"]["particles_per_ml"] == 5e9
    for key in ("beads", "mesf_beads", "sample", "blank", "isotype"):
        assert (tmp_path / "s" / f"{key}.fcs").is_file()


def test_calibrate_size_concentration_positive_report(capsys, session_dir, truth, cal_file, tmp_path):
    cal = json.loads(cal_file.read_text())
    assert cal["scale_au_per_nm2"] == pytest.approx(truth["beads"]["scale_au_per_nm2"], rel=0.05)
    plot = tmp_path / "dist.png"
    code, out, err = run(capsys, "flow", "size", session_dir / "sample.fcs", "--calibration", cal_file,
                         "--blank", session_dir / "blank.fcs", "--dilution", "100", "--plot", plot, "--json")
    assert code == 0, err
    size = json.loads(out)
    assert size["d50_nm"] == pytest.approx(truth["sample"]["median_diameter_above_limit_nm"], rel=0.02)
    assert size["detection_range_nm"][0] == pytest.approx(truth["sample"]["detection_limit_nm"], rel=0.01)
    nd = size["number_distribution"]
    assert len(nd["diameter_nm"]) == len(nd["fraction"]) and sum(nd["fraction"]) == pytest.approx(1.0)
    assert plot.read_bytes()[:4] == b"\x89PNG"
    code, out, err = run(capsys, "flow", "concentration", session_dir / "sample.fcs", "--blank",
                         session_dir / "blank.fcs", "--dilution", "100", "--json")
    assert code == 0, err
    conc = json.loads(out)
    sd = conc["sd_particles_per_ml"]
    assert abs(conc["particles_per_ml"] - truth["sample"]["triggered_particles_per_ml"]) < 4 * sd
    code, out, err = run(capsys, "flow", "positive", session_dir / "sample.fcs", "--control",
                         session_dir / "isotype.fcs", "--channel", "CD63", "--mesf-beads",
                         session_dir / "mesf_beads.fcs", "--mesf-values", "0", "2000", "8000",
                         "30000", "100000", "--json")
    assert code == 0, err
    pos = json.loads(out)
    assert pos["net_percent_positive"] == pytest.approx(100 * truth["sample"]["positive_fraction_of_events"],
                                                        abs=0.6)
    assert pos["mesf_gate"] > 0 and pos["mesf_calibration"]["slope"] == pytest.approx(1.0, abs=0.02)
    code, out, err = run(capsys, "flow", "report", session_dir / "sample.fcs", "--calibration", cal_file,
                         "--blank", session_dir / "blank.fcs", "--control", session_dir / "isotype.fcs",
                         "--channel", "FITC-H", "--dilution", "100", "--json")
    assert code == 0, err
    rep = json.loads(out)
    assert rep["detection_limits"]["lower_nm"] == pytest.approx(size["detection_limit_nm"])
    assert any("detergent" in m for m in rep["missing"])


def test_human_output_runs_through_the_same_numbers(capsys, session_dir, cal_file):
    code, out, _ = run(capsys, "flow", "size", session_dir / "sample.fcs", "--calibration", cal_file)
    assert code == 0 and "D10 / D50 / D90" in out and "detection limit" in out
    code, out, _ = run(capsys, "flow", "report", session_dir / "sample.fcs")
    assert code == 0 and "missing:" in out


def _one_line_error(code, out, err, expect_code, *fragments):
    assert code == expect_code, (code, err)
    assert out == ""
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in err and "internal error" not in err, err
    for f in fragments:
        assert f in lines[0], lines[0]


def test_calibration_file_that_is_not_one(capsys, session_dir, tmp_path):
    nta = tmp_path / "nta_cal.json"
    nta.write_text(json.dumps({"schema": "exotrace-nta-calibration", "volume_ul": 1.0}))
    code, out, err = run(capsys, "flow", "size", session_dir / "sample.fcs", "--calibration", nta)
    _one_line_error(code, out, err, 3, str(nta), "not a flow scatter calibration")
    code, out, err = run(capsys, "flow", "size", session_dir / "sample.fcs", "--calibration",
                         session_dir / "beads.fcs")
    _one_line_error(code, out, err, 3, "beads.fcs")


def test_channel_that_does_not_exist(capsys, session_dir):
    code, out, err = run(capsys, "flow", "positive", session_dir / "sample.fcs", "--control",
                         session_dir / "isotype.fcs", "--channel", "PE-A", "--json")
    _one_line_error(code, out, err, 2, "sample.fcs", "no channel 'PE-A'", "FITC-H")


def test_bead_file_without_the_populations(capsys, session_dir, tmp_path):
    code, out, err = run(capsys, "flow", "calibrate", session_dir / "blank.fcs", "--bead-sizes-nm",
                         "100", "200", "300", "-o", tmp_path / "c.json", "--json")
    _one_line_error(code, out, err, 4, "blank.fcs", "scatter populations for 3 bead sizes")
    assert not (tmp_path / "c.json").exists()


@pytest.mark.parametrize("args", [
    ("flow", "concentration", "missing.fcs"),
    ("flow", "concentration", "{sample}", "--dilution", "-3"),
    ("flow", "size", "{sample}", "--calibration", "missing.json"),
    ("flow", "size", "{sample}", "--calibration", "{cal}", "--plot", "x.gif"),
    ("flow", "size", "{sample}", "--calibration", "{cal}", "--ri", "0.2"),
    ("flow", "size", "{sample}", "--calibration", "{cal}", "--bin-width-nm", "0"),
    ("flow", "calibrate", "{sample}", "--bead-sizes-nm", "100", "-o", "{tmp}/c.json"),
    ("flow", "calibrate", "{beads}", "--bead-sizes-nm", "100", "200", "-o", "{tmp}/c.json",
     "--wavelength-nm", "50"),
    ("flow", "positive", "{sample}", "--control", "{sample}", "--channel", "CD63", "--quantile", "2"),
    ("flow", "positive", "{sample}", "--control", "{isotype}", "--channel", "CD63",
     "--mesf-beads", "{mesf}"),
    ("flow", "report", "{sample}", "--control", "{isotype}"),
])
def test_bad_input_is_one_line(capsys, session_dir, cal_file, tmp_path, args):
    names = {"sample": session_dir / "sample.fcs", "beads": session_dir / "beads.fcs",
             "isotype": session_dir / "isotype.fcs", "mesf": session_dir / "mesf_beads.fcs",
             "cal": cal_file, "tmp": tmp_path}
    code, out, err = run(capsys, *[a.format(**names) for a in args])
    assert code in (2, 3, 4), (code, err)
    assert len(err.strip().splitlines()) == 1 and "internal error" not in err, err


def test_hostile_fcs_files_never_crash(capsys, cal_file, tmp_path):
    from exotrace.flow.simulate import VesicleSample, simulate_sample, write_fcs

    small = write_fcs(simulate_sample(VesicleSample(particles_per_ml=3e8), seed=1), tmp_path / "small.fcs")
    raw = small.read_bytes()
    rng = np.random.default_rng(5)
    variants = {"truncated": raw[:300], "header_only": raw[:58], "empty": b"",
                "text": b"FCS3.1 this is not a file" * 4, "zeros": bytes(2000)}
    for i in range(10):
        b = bytearray(raw)
        pos = rng.integers(0, 900, size=8)  # HEADER and TEXT: where parsers break
        for p in pos:
            b[p] = int(rng.integers(0, 256))
        variants[f"flip{i}"] = bytes(b)
    from exotrace.errors import ExotraceError
    from exotrace.flow import FlowCalibration, calibrate_scatter, event_concentration, size_events

    cal = FlowCalibration.load(cal_file)
    for name, data in variants.items():
        f = tmp_path / f"{name}.fcs"
        f.write_bytes(data)
        # Every analysis either answers or raises one of exotrace's errors (which the
        # CLI prints as one line); anything else would be a crash.
        for call, extra in ((event_concentration, ()), (size_events, (cal,)),
                            (calibrate_scatter, ((100.0, 200.0),))):
            try:
                call(f, *extra)
            except ExotraceError as exc:
                assert "\n" not in str(exc)
    # The CLI path itself, on a few of them (each run rebuilds the typer app: ~0.5 s).
    for name in ("truncated", "text", "flip0", "flip1"):
        f = tmp_path / f"{name}.fcs"
        for args in (("flow", "concentration", f, "--json"),
                     ("flow", "size", f, "--calibration", cal_file, "--json")):
            code, out, err = run(capsys, *args)
            assert "internal error" not in err and "Traceback" not in err, (name, err)
            if code != 0:
                assert len(err.strip().splitlines()) == 1, (name, err)
            else:
                json.loads(out)


def test_size_is_stored_on_a_lot(capsys, session_dir, cal_file, fresh_db_url, monkeypatch):
    from argon2 import PasswordHasher

    from exotrace.records import _auth

    monkeypatch.setattr(_auth, "_hasher", PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1))
    monkeypatch.setenv("EXOTRACE_DATABASE_URL", fresh_db_url)
    monkeypatch.setenv("EXOTRACE_NEW_PASSWORD", "first-flow-pass-1")
    monkeypatch.setenv("EXOTRACE_PASSWORD", "first-flow-pass-1")
    assert run(capsys, "user", "add", "boss", "--role", "admin")[0] == 0
    assert run(capsys, "user", "add", "ana", "--role", "analyst", "--user", "boss")[0] == 0
    # An account an admin created sets its own password before anything else.
    monkeypatch.setenv("EXOTRACE_NEW_PASSWORD", "flow-sizing-pass-2")
    assert run(capsys, "user", "password", "--user", "ana")[0] == 0
    monkeypatch.setenv("EXOTRACE_PASSWORD", "flow-sizing-pass-2")
    steps = [
        ("donor", "add", "D1", "--age-band", "30-39", "--sex", "female"),
        ("consent", "add", "D1", "--scope", "research", "--version", "v1", "--date", "2025-01-02"),
        ("cellbank", "add", "CB1", "--donor", "D1", "--tissue", "adipose", "--passage", "3",
         "--intended-use", "research"),
        ("collection", "add", "C1", "--cell-bank", "CB1", "--medium", "DMEM", "--serum",
         "serum_free", "--volume-ml", "100", "--days", "2"),
        ("isolation", "add", "I1", "--collection", "C1", "--method",
         "size_exclusion_chromatography", "--input-ml", "100", "--output-ml", "2"),
        ("lot", "create", "L1", "--isolation", "I1", "--intended-use", "research",
         "--volume-ml", "2", "--date", "2025-02-01"),
    ]
    for step in steps:
        code, _, err = run(capsys, *step, "--user", "ana")
        assert code == 0, (step, err)
    args = ("flow", "size", session_dir / "sample.fcs", "--calibration", cal_file, "--dilution", "100",
            "--lot", "L1", "--user", "ana", "--json")
    code, out, err = run(capsys, *args)
    assert code == 0, err
    stored = json.loads(out)["stored_on_lot"]
    assert stored["imported"] and stored["measurements"]
    code, out, err = run(capsys, *args)  # the same file again: nothing written twice
    assert code == 0 and json.loads(out)["stored_on_lot"]["imported"] is False
    import sqlalchemy as sa

    eng = sa.create_engine(fresh_db_url)
    with eng.connect() as c:
        rows = c.execute(sa.text("select result_json from result_file")).fetchall()
    eng.dispose()
    assert len(rows) == 1
    record = json.loads(rows[0][0])
    assert record["extra"]["method"] == "flow"
    assert record["extra"]["detection_range_nm"][0] > 50
    assert len(record["extra"]["number_distribution"]["fraction"]) > 10


def test_real_fcs_files_answer_or_refuse_in_one_line(fixtures_dir, calibration):
    from exotrace.errors import ExotraceError
    from exotrace.flow import calibrate_scatter, event_concentration, size_events

    files = sorted((fixtures_dir / "fcs").iterdir())
    assert files
    answered = 0
    for f in files:
        for call, extra in ((event_concentration, ()), (size_events, (calibration,)),
                            (calibrate_scatter, ((100.0, 200.0),))):
            try:
                call(f, *extra)
                answered += 1
            except ExotraceError as exc:
                assert str(exc).startswith(str(f)) and "\n" not in str(exc), str(exc)
    # G11 and the duplicate-names file carry $VOL: their concentrations are answers.
    assert answered >= 2
