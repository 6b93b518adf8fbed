"""File-based quality commands: JSON output and one-line errors for bad CSVs."""

from __future__ import annotations

import json

import numpy as np
import pytest

from exotrace.cli.main import main
from exotrace.quality import four_pl, shelf_life
from exotrace.quality._spec import example_specification_path


def run(capsys, *args):
    code = main(list(map(str, args)))
    out, err = capsys.readouterr()
    return code, out, err


def write(tmp_path, name, text):
    p = tmp_path / name
    p.write_text(text)
    return p


@pytest.fixture()
def trend_csv(tmp_path):
    # 20 in-control points around 100 (hand-made, no rule fires), then a shift of
    # 9 points above the centre (rule 2 at index 28) and one far point.
    base = [100, 101, 99, 100.5, 99.5, 100, 101.5, 98.5, 100, 100.8,
            99.2, 100.3, 99.7, 101, 99, 100.2, 99.8, 100.6, 99.4, 100]
    shift = [100.4, 100.6, 100.3, 100.9, 100.5, 100.7, 100.2, 100.8, 100.5]
    values = base + shift + [112.0]
    lines = ["lot,size_nm"] + [f"L{i},{v}" for i, v in enumerate(values)]
    return write(tmp_path, "trend.csv", "\n".join(lines) + "\n")


def test_spc_check_json_and_plot(capsys, trend_csv, tmp_path):
    png = tmp_path / "chart.png"
    code, out, err = run(capsys, "spc", "check", trend_csv, "--column", "size_nm",
                         "--baseline", 20, "--plot", png, "--json")
    assert code == 0, err
    r = json.loads(out)
    v = {(x["rule"], x["index"]) for x in r["violations"]}
    assert (2, 28) in v and (1, 29) in v
    assert r["limits"]["n_baseline"] == 20
    assert r["limits"]["mean"] == pytest.approx(100.0, abs=1e-9)
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_spc_check_given_limits(capsys, trend_csv):
    code, out, _ = run(capsys, "spc", "check", trend_csv, "--column", "size_nm",
                       "--mean", 100, "--sigma", 4, "--json")
    r = json.loads(out)
    assert code == 0 and r["limits"]["ucl"] == 112.0
    # 112 is exactly at 3 sigma: "beyond" is strict, so rule 1 does not fire
    assert not any(x["rule"] == 1 for x in r["violations"])


@pytest.mark.parametrize("content, args, code, words", [
    ("lot,size_nm\nL1,100\nL2,abc\n", ["--column", "size_nm"], 3,
     ["line 3", "'size_nm'", "'abc' is not a number"]),
    ("lot,size_nm\nL1,100\n", ["--column", "size"], 3, ["no column 'size'"]),
    ("lot,size_nm\nL1,100\n", ["--column", "size_nm"], 4, ["at least 2"]),
    ("lot,size_nm\nL1,100\nL2,\n", ["--column", "size_nm"], 3, ["line 3", "empty cell"]),
    ("", ["--column", "size_nm"], 3, ["empty"]),
    ("lot,size_nm\nL1,1\nL2,2\n", ["--column", "size_nm", "--mean", "1"], 2, ["--sigma"]),
])
def test_spc_bad_csv_one_line_errors(capsys, tmp_path, content, args, code, words):
    p = write(tmp_path, "bad.csv", content)
    rc, out, err = run(capsys, "spc", "check", p, *args)
    assert rc == code
    assert err.count("\n") == 1 and "Traceback" not in err
    for w in words:
        assert w in err


def _stability_csv(tmp_path):
    rng = np.random.default_rng(4)
    rows = ["batch,month,potency_pct"]
    t_all, y_all, b_all = [], [], []
    for b in ("A", "B", "C"):
        for t in (0, 3, 6, 9, 12, 18, 24):
            y = 100 - 0.4 * t + rng.normal(0, 0.5)
            rows.append(f"{b},{t},{y:.6f}")
            t_all.append(t)
            y_all.append(float(f"{y:.6f}"))
            b_all.append(b)
    return write(tmp_path, "stab.csv", "\n".join(rows) + "\n"), (t_all, y_all, b_all)


def test_stability_shelf_life_json(capsys, tmp_path):
    p, (t, y, b) = _stability_csv(tmp_path)
    code, out, err = run(capsys, "stability", "shelf-life", p, "--time-column", "month",
                         "--value-column", "potency_pct", "--batch-column", "batch",
                         "--lower-limit", 90, "--json")
    assert code == 0, err
    r = json.loads(out)
    ref = shelf_life(t, y, b, lower_limit=90)
    assert r["shelf_life"] == pytest.approx(ref.shelf_life)
    assert r["model"] in ("pooled", "common slope", "separate") and r["model"] == ref.model
    assert r["p_slopes"] == pytest.approx(ref.p_slopes)
    # the line reaches 90 at 25 months; the lower bound somewhat earlier
    assert 20 < r["shelf_life"] < 25


def test_stability_errors(capsys, tmp_path):
    p, _ = _stability_csv(tmp_path)
    rc, _, err = run(capsys, "stability", "shelf-life", p, "--time-column", "month",
                     "--value-column", "potency_pct", "--lower-limit", 150)
    assert rc == 2 and "wrong side" in err and "potency_pct" in err
    rc, _, err = run(capsys, "stability", "shelf-life", p, "--time-column", "month",
                     "--value-column", "potency_pct", "--upper-limit", 10)
    assert rc == 2 and "wrong side" in err
    rc, _, err = run(capsys, "stability", "shelf-life", p, "--time-column", "week",
                     "--value-column", "potency_pct", "--lower-limit", 90)
    assert rc == 3 and "no column 'week'" in err
    short = write(tmp_path, "s.csv", "month,v\n0,100\n1,99\n")
    rc, _, err = run(capsys, "stability", "shelf-life", short, "--time-column", "month",
                     "--value-column", "v", "--lower-limit", 90)
    assert rc == 4 and "at least 3" in err


def test_freeze_thaw_command(capsys, tmp_path):
    rows = ["cycles,conc"] + [f"{c},{1 - 0.08 * c + 0.005 * ((-1) ** c):.4f}"
                              for c in range(6) for _ in range(2)]
    p = write(tmp_path, "ft.csv", "\n".join(rows) + "\n")
    code, out, err = run(capsys, "stability", "freeze-thaw", p, "--cycles-column", "cycles",
                         "--value-column", "conc", "--lower-limit", 0.7, "--json")
    assert code == 0, err
    assert json.loads(out)["max_cycles"] == 3  # line reaches 0.7 at 3.75 cycles


def test_potency_command(capsys, tmp_path):
    rng = np.random.default_rng(2)
    doses = np.repeat(np.geomspace(0.1, 1000, 9), 3)
    rows = ["sample,dose,resp"]
    for name, ec50 in (("RS", 10.0), ("LOT1", 5.0)):
        y = four_pl(doses, 100, 1.2, ec50, 5) + rng.normal(0, 2, doses.size)
        rows += [f"{name},{d},{v}" for d, v in zip(doses, y, strict=False)]
    p = write(tmp_path, "pot.csv", "\n".join(rows) + "\n")
    code, out, err = run(capsys, "potency", p, "--dose-column", "dose", "--response-column",
                         "resp", "--sample-column", "sample", "--reference", "RS", "--json")
    assert code == 0, err
    s = json.loads(out)["samples"][0]
    assert s["sample"] == "LOT1" and s["ci_low"] < 2.0 < s["ci_high"] and s["parallel"]
    rc, _, err = run(capsys, "potency", p, "--dose-column", "dose", "--response-column",
                     "resp", "--sample-column", "sample", "--reference", "NIST")
    assert rc == 2 and "'NIST' not found" in err


def test_compare_command(capsys, tmp_path):
    a = write(tmp_path, "a.csv", "lot,size_nm,conc\nA1,120,1.0e11\nA2,122,1.1e11\n"
                                 "A3,119,0.9e11\nA4,121,1.0e11\n")
    b = write(tmp_path, "b.csv", "lot,size_nm,conc\nB1,121,1.5e11\nB2,120,1.6e11\n"
                                 "B3,122,1.4e11\nB4,,1.5e11\n")
    code, out, err = run(capsys, "compare", "--group-a", a, "--group-b", b,
                         "--margin", "size_nm=5", "--margin", "conc=15%", "--json")
    assert code == 0, err
    r = json.loads(out)
    v = {x["attribute"]: x["verdict"] for x in r["attributes"]}
    assert v == {"size_nm": "equivalent", "conc": "not shown equivalent"}
    assert next(x for x in r["attributes"] if x["attribute"] == "size_nm")["n_b"] == 3


def test_spec_show(capsys, tmp_path):
    code, out, _ = run(capsys, "spec", "show", example_specification_path(), "--json")
    assert code == 0 and json.loads(out)["version"] == "1.0"
    bad = write(tmp_path, "bad.yaml", "name: x\nproduct_type: y\nversion: 1\n"
                                      "effective_date: 2026-01-01\ntests:\n"
                                      "  - {name: e, method: m, criterion: {kind: range, "
                                      "upper: 1, unit: bananas}}\n")
    rc, _, err = run(capsys, "spec", "show", bad)
    assert rc == 3 and "tests.0.criterion.unit" in err and "bananas" in err


def test_binary_csv_is_one_line_error(capsys, tmp_path):
    p = tmp_path / "video.csv"
    p.write_bytes(b"\x89PNG\r\n\x1a\n\xff\xfe\x00\x01")
    rc, _, err = run(capsys, "spc", "check", p, "--column", "x")
    assert rc == 3 and "cannot read" in err and err.count("\n") == 1
