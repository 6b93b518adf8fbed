"""Good input through the finished commands: numbers a scientist can check by hand.

Each command runs once for people (table) and once with ``--json`` (strict JSON,
documented keys).
"""

from __future__ import annotations

import json
import math

import pytest

from .conftest import CARDIO, SKIN, SPEC, run_cli


def _json(capsys, args):
    code, out, err = run_cli(capsys, [*args, "--json"])
    assert code == 0, err
    assert err == ""
    return json.loads(out)


def test_purity_band_and_units(capsys):
    code, out, err = run_cli(capsys, ["purity", "--particles-per-ml", "1e11",
                                      "--protein-ug-per-ml", "20"])
    assert code == 0 and err == ""
    assert "5e+09 particles/ug protein: low purity" in out
    d = _json(capsys, ["purity", "--particles-per-ml", "1e11", "--protein-ug-per-ml", "20"])
    assert d["particles_per_ug"] == pytest.approx(5e9, rel=1e-12)  # 1e11 / 20
    assert d["band"] == "low purity" and d["unit"] == "particles/ug protein"


def test_misev_example_scores_100(capsys, files):
    code, out, err = run_cli(capsys, ["misev", "check", files.study])
    assert code == 0 and err == ""
    assert "completeness 100.0 %" in out
    d = _json(capsys, ["misev", "check", files.study])
    assert {"items", "score_percent", "n_met", "n_applicable", "missing_ids"} <= set(d)
    assert d["score_percent"] == 100.0 and d["n_met"] == d["n_applicable"] == 24
    # 6e11 particles/mL over 12 ug/mL protein in the example
    assert d["purity"][0]["particles_per_ug"] == pytest.approx(5e10, rel=1e-12)


def test_misev_min_score_gate(capsys, files):
    code, _, err = run_cli(capsys, ["misev", "check", files.study_nan])
    assert code == 3 and "study_nan.yaml" in err  # NaN volume refused with the file named
    code, _, err = run_cli(capsys, ["misev", "check", files.study, "--min-score", "100"])
    assert code == 0, err


def test_protocol_dose_per_kg(capsys):
    code, out, err = run_cli(capsys, ["protocol", "dose", CARDIO, "--arm", "IV", "--level", "2",
                                      "--particles-per-ml", "1e11", "--weight-kg", "70",
                                      "--particles-per-ug", "3e10"])
    assert code == 0 and err == ""
    assert "volume to draw   7 mL" in out and "particles/kg" in out
    d = _json(capsys, ["protocol", "dose", CARDIO, "--arm", "IV", "--level", "2",
                       "--particles-per-ml", "1e11", "--weight-kg", "70"])
    # level 2 = 1e10 particles/kg; x 70 kg = 7e11 particles; / 1e11 per mL = 7 mL
    assert d["particles"] == pytest.approx(7e11, rel=1e-12)
    assert d["volume_ml"] == pytest.approx(7.0, rel=1e-12)
    assert d["fraction_of_maximum"] == pytest.approx(0.5, rel=1e-12)
    assert d["dose_unit"] == "particles/kg"


def test_protocol_dose_flat(capsys):
    d = _json(capsys, ["protocol", "dose", SKIN, "--arm", "MN", "--level", "3",
                       "--particles-per-ml", "2e11"])
    assert d["particles"] == pytest.approx(1e11) and d["volume_ml"] == pytest.approx(0.5)


def test_protocol_show(capsys):
    code, out, err = run_cli(capsys, ["protocol", "show", CARDIO])
    assert code == 0 and err == ""
    assert "EXO-CARD-01" in out and "particles/kg" in out
    d = _json(capsys, ["protocol", "show", CARDIO])
    assert d["arms"][0]["dose_levels"] == [5e9, 1e10, 2e10]


def test_spec_show(capsys):
    code, out, err = run_cli(capsys, ["spec", "show", SPEC])
    assert code == 0 and err == ""
    assert "< 200 nm" in out and "< 0.5 EU/mL" in out
    d = _json(capsys, ["spec", "show", SPEC])
    assert {"name", "version", "effective_date", "status", "tests"} <= set(d)
    assert d["effective_date"] == "2026-01-01" and len(d["tests"]) == 15
    size = d["tests"][0]["criterion"]
    assert size["upper"] == 200.0 and size["unit"] == "nm" and size["upper_inclusive"] is False


def test_spc_check_limits_by_hand(capsys, files):
    d = _json(capsys, ["spc", "check", files.spc, "--column", "size_nm", "--baseline", "8"])
    lim = d["limits"]
    # baseline 10,12,10,12,...: mean 11, MRbar 2, sigma = 2 / 1.128
    assert lim["mean"] == pytest.approx(11.0, abs=1e-12)
    assert lim["mr_bar"] == pytest.approx(2.0, abs=1e-12)
    assert lim["sigma"] == pytest.approx(2.0 / 1.128, rel=1e-9)
    assert lim["ucl"] == pytest.approx(11 + 3 * 2.0 / 1.128, rel=1e-9)
    assert {"rule": 1, "index": 8} in d["violations"]  # 25 is beyond 3 sigma
    code, out, _ = run_cli(capsys, ["spc", "check", files.spc, "--column", "size_nm",
                                    "--baseline", "8"])
    assert code == 0 and "1 point beyond 3 sigma" in out


def test_shelf_life_below_true_crossing(capsys, files):
    d = _json(capsys, ["stability", "shelf-life", files.stab, "--time-column", "month",
                       "--value-column", "conc_e11", "--batch-column", "batch",
                       "--lower-limit", "8"])
    # Identical batches pool; the true mean line reaches 8 at 20 months and the 95 %
    # lower bound must cross earlier, but not much earlier with a +-0.05 wiggle.
    assert d["model"] == "pooled"
    assert 18.0 < d["shelf_life"] < 20.0
    assert d["crossing"] == "lower" and d["capped"] is False


def test_freeze_thaw_whole_cycles(capsys, files):
    d = _json(capsys, ["stability", "freeze-thaw", files.ft, "--cycles-column", "cycles",
                       "--value-column", "size_nm", "--batch-column", "batch",
                       "--upper-limit", "120"])
    # mean reaches 120 nm at 5 cycles; the upper bound earlier, after 4
    assert d["max_cycles"] == 4
    assert 4.0 < d["shelf_life"] < 5.0


def test_potency_recovers_half(capsys, files):
    d = _json(capsys, ["potency", files.pot, "--dose-column", "dose_particles",
                       "--response-column", "inhibition_pct", "--sample-column", "sample",
                       "--reference", "REF"])
    s = d["samples"][0]
    # EC50 600e6 vs 300e6: RP 0.5; +-0.2 % points wiggle on a 90 % span moves it < 3 %
    assert s["relative_potency"] == pytest.approx(0.5, rel=0.03)
    assert s["ci_low"] < 0.5 < s["ci_high"] and s["parallel"] is True
    code, out, _ = run_cli(capsys, ["potency", files.pot, "--dose-column", "dose_particles",
                                    "--response-column", "inhibition_pct",
                                    "--sample-column", "sample", "--reference", "REF"])
    assert code == 0 and "potency" in out and "…" not in out  # headers not cut at 80 columns


def test_compare_difference_and_not_compared(capsys, files):
    d = _json(capsys, ["compare", "--group-a", files.ga, "--group-b", files.gb,
                       "--margin", "size_nm=10"])
    c = d["attributes"][0]
    assert c["attribute"] == "size_nm" and c["verdict"] == "equivalent"
    assert c["difference"] == pytest.approx(1.0, abs=1e-9)  # B = A + 1 exactly
    assert d["not_compared"] == ["purity"]  # was every attribute (operator precedence)
    code, out, _ = run_cli(capsys, ["compare", "--group-a", files.ga, "--group-b", files.gb,
                                    "--margin", "size_nm=10"])
    assert code == 0 and "size_nm: equivalent" in out


def test_json_is_strict(capsys, files):
    # inf/NaN never leak into --json output (strict JSON parsers reject them)
    d = _json(capsys, ["stability", "shelf-life", files.stab, "--time-column", "month",
                       "--value-column", "conc_e11", "--lower-limit", "8"])
    assert all(math.isfinite(v["shelf_life"]) for v in d["batches"].values())


def test_compare_reads_semicolon_csv_like_spc(capsys, files, tmp_path):
    # `spc check` sniffed ; and tab delimiters but `compare` did not ("no numeric columns")
    semi = tmp_path / "gb_semicolon.csv"
    semi.write_text(files.gb.read_text().replace(",", ";"))
    d = _json(capsys, ["compare", "--group-a", files.ga, "--group-b", semi,
                       "--margin", "size_nm=10"])
    assert d["attributes"][0]["difference"] == pytest.approx(1.0, abs=1e-9)
