"""Vectorised evaluation/trending equal the per-lot path; charts are written."""

from __future__ import annotations

import numpy as np
import pytest

from exotrace.errors import InvalidInput
from exotrace.quality import (
    Conclusion,
    TestResult,
    evaluate,
    evaluate_matrix,
    four_pl,
    imr_limits,
    nelson_rules,
    plot_imr,
    plot_potency,
    plot_stability,
    relative_potency,
    shelf_life,
    trend_matrix,
)

CODE = {0: Conclusion.COMPLIES, 1: Conclusion.DOES_NOT_COMPLY, 2: Conclusion.INCOMPLETE}


def test_evaluate_matrix_matches_evaluate(msc_spec):
    # numeric tests only, so restrict the spec to them
    tests = ["size_d50", "fraction_50_400nm", "particle_concentration", "purity_ratio",
             "endotoxin", "potency", "protein_concentration"]
    spec = msc_spec.model_copy(update={"tests": [msc_spec.test(t) for t in tests]})
    units = ["nm", "%", "particles/uL", "particles/ug", "EU/mL", "%", "ug/mL"]
    rng = np.random.default_rng(12)
    n = 300
    v = np.column_stack([rng.uniform(150, 250, n), rng.uniform(85, 99, n),
                         rng.uniform(0.7e8, 1.3e8, n), rng.uniform(1e9, 1e10, n),
                         rng.uniform(0.3, 0.6, n), rng.uniform(40, 210, n),
                         rng.uniform(10, 100, n)])
    v[::17, 4] = np.nan          # missing endotoxin
    v[5, 0], v[5, 1] = np.nan, 95  # group rescued by the other member
    v[6, 4] = 0.5                # exactly at the exclusive bound
    labels = rng.uniform(0.9e11, 1.1e11, n)
    bulk = evaluate_matrix(spec, tests, v, units, references=labels,
                           reference_unit="particles/mL")
    for i in range(n):
        res = [TestResult(f"{i}-{j}", t, float(v[i, j]), units[j])
               for j, t in enumerate(tests) if np.isfinite(v[i, j])]
        ev = evaluate(spec, res, references={"label_claim": (labels[i], "particles/mL")})
        assert ev.conclusion == CODE[int(bulk.conclusion[i])], i
    assert set(np.unique(bulk.conclusion)) == {0, 1, 2}
    with pytest.raises(InvalidInput, match="qualitative"):
        evaluate_matrix(msc_spec, ["CD9"], np.ones((2, 1)), ["1"])


def test_trend_matrix_matches_per_series():
    rng = np.random.default_rng(13)
    X = rng.normal(0, 1, (400, 5))
    X[250:, 2] += 1.5
    tr = trend_matrix(X, baseline=100)
    for j in range(5):
        lim = imr_limits(X[:, j], baseline=100)
        assert tr.mean[j] == pytest.approx(lim.mean) and tr.sigma[j] == pytest.approx(lim.sigma)
        got = {(r + 1, i) for r, i in zip(*np.nonzero(tr.flags[:, j]), strict=False)}
        want = {(v.rule, v.index) for v in nelson_rules(X[:, j], mean=lim.mean,
                                                         sigma=lim.sigma)}
        assert got == want
    counts = tr.violation_counts()[1]  # rule 2 per attribute
    # a 1.5-sigma shift over 150 lots trips rule 2 far more often than in-control data
    assert counts[2] > 3 * max(counts[[0, 1, 3, 4]]) and counts[2] > 20


def test_charts_written(tmp_path):
    x = np.r_[np.random.default_rng(1).normal(0, 1, 30), 5.0]
    lim = imr_limits(x, baseline=30)
    v = nelson_rules(x, mean=lim.mean, sigma=lim.sigma)
    a, b = tmp_path / "a.svg", tmp_path / "b.svg"
    plot_imr(x, lim, v, a)
    plot_imr(x, lim, v, b)
    assert a.read_bytes() == b.read_bytes()  # reproducible SVG
    assert b"<svg" in a.read_bytes()
    t = np.tile([0.0, 3, 6, 12], 2)
    y = 100 - 0.5 * t + np.tile([0.2, -0.1, 0.1, -0.2], 2)
    res = shelf_life(t, y, np.repeat(["A", "B"], 4), lower_limit=90)
    plot_stability(t, y, np.repeat(["A", "B"], 4), res, tmp_path / "s.png")
    assert (tmp_path / "s.png").read_bytes()[:4] == b"\x89PNG"
    d = np.repeat(np.geomspace(0.1, 1000, 8), 2)
    rng = np.random.default_rng(0)
    yr = four_pl(d, 100, 1, 10, 0) + rng.normal(0, 1, d.size)
    ys = four_pl(d, 100, 1, 20, 0) + rng.normal(0, 1, d.size)
    plot_potency(d, yr, d, ys, relative_potency(d, yr, d, ys), tmp_path / "p.png")
    assert (tmp_path / "p.png").stat().st_size > 1000
    with pytest.raises(InvalidInput, match=".png or .svg"):
        plot_imr(x, lim, v, tmp_path / "c.jpg")
