"""Potency (parallel 4PL), TOST against statsmodels and a worked example, distributions."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats
from statsmodels.stats.weightstats import ttost_ind

from exotrace.errors import InsufficientData, InvalidInput
from exotrace.quality import (
    Equivalence,
    Margin,
    compare_groups,
    compare_size_distributions,
    fit_4pl,
    four_pl,
    relative_potency,
    tost_welch,
    weighted_percentiles_nm,
)

DOSES = np.repeat(np.geomspace(0.1, 1000, 9), 3)


def curves(ec50_sample, slope_sample=1.2, seed=1, sd=2.0):
    rng = np.random.default_rng(seed)
    yr = four_pl(DOSES, 100, 1.2, 10.0, 5) + rng.normal(0, sd, DOSES.size)
    ys = four_pl(DOSES, 100, slope_sample, ec50_sample, 5) + rng.normal(0, sd, DOSES.size)
    return yr, ys


def test_4pl_recovers_parameters():
    yr, _ = curves(5.0, sd=0.5)
    f = fit_4pl(DOSES, yr)
    # noise sd 0.5 on a 95-unit span: parameters within a few percent
    assert f.a == pytest.approx(100, abs=1.5) and f.d == pytest.approx(5, abs=1.5)
    assert f.c == pytest.approx(10, rel=0.05) and f.b == pytest.approx(1.2, rel=0.08)


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_relative_potency_two_recovered_within_ci(seed):
    yr, ys = curves(5.0, seed=seed)  # EC50 10 -> 5: relative potency 2
    r = relative_potency(DOSES, yr, DOSES, ys)
    assert r.ci_low < 2.0 < r.ci_high
    assert r.relative_potency == pytest.approx(2.0, rel=0.15)
    assert r.ci_high / r.ci_low < 1.5  # informative interval with 27 points per curve
    assert r.parallel


def test_ci_coverage_close_to_nominal():
    # 60 simulated assays: a 95 % interval should miss about 3 times; allow up to 8
    # (binomial P(X >= 9 | n=60, p=0.05) < 0.5 %).
    misses = 0
    for seed in range(100, 160):
        yr, ys = curves(5.0, seed=seed, sd=3.0)
        r = relative_potency(DOSES, yr, DOSES, ys)
        misses += not (r.ci_low < 2.0 < r.ci_high)
    assert misses <= 8


def test_non_parallel_detected():
    yr, ys = curves(5.0, slope_sample=3.0)
    r = relative_potency(DOSES, yr, DOSES, ys)
    assert not r.parallel and r.parallelism_p < 1e-6
    assert r.slope_ratio == pytest.approx(2.5, rel=0.2)


def test_potency_input_errors():
    with pytest.raises(InsufficientData):
        relative_potency([1, 2, 3], [1, 2, 3], [1, 2, 3], [1, 2, 3])
    with pytest.raises(InvalidInput, match="positive"):
        fit_4pl([0, 1, 2, 3, 4], [1, 2, 3, 4, 5])


def test_tost_matches_statsmodels_ttost_ind():
    rng = np.random.default_rng(5)
    a = rng.normal(100, 5, 8)
    b = rng.normal(102, 8, 11)
    r = tost_welch(a, b, 6.0)
    # ttost_ind tests x1 - x2 in (low, upp): put b first
    p, lower, upper = ttost_ind(b, a, -6.0, 6.0, usevar="unequal")
    assert r["p_value"] == pytest.approx(p, rel=1e-10)
    assert r["p_lower"] == pytest.approx(lower[1], rel=1e-10)
    assert r["p_upper"] == pytest.approx(upper[1], rel=1e-10)
    assert r["df"] == pytest.approx(lower[2], rel=1e-10)


def test_tost_worked_example_by_hand():
    # Worked example: A = 10, 12, 11, 13, 14; B = 12, 13, 15, 14, 16; margin 3.
    # means 12 and 14, sample variances 2.5 and 2.5 -> se = sqrt(0.5 + 0.5) = 1,
    # Welch df = 1 / (0.25/4 + 0.25/4) = 8. diff = 2.
    # t_lower = (2 + 3)/1 = 5, p = P(T8 > 5) = 0.000526; t_upper = (2 - 3)/1 = -1,
    # p = P(T8 < -1) = 0.1733 -> TOST p = 0.1733: not shown equivalent.
    # 90 % CI = 2 +- 1.8595 = (0.1405, 3.8595), crosses +3.
    r = tost_welch([10, 12, 11, 13, 14], [12, 13, 15, 14, 16], 3.0)
    assert r["se"] == pytest.approx(1.0) and r["df"] == pytest.approx(8.0)
    assert r["p_lower"] == pytest.approx(0.000526, abs=2e-6)
    assert r["p_upper"] == pytest.approx(0.1733, abs=1e-4)
    assert (r["ci_low"], r["ci_high"]) == (pytest.approx(0.1405, abs=1e-4),
                                           pytest.approx(3.8595, abs=1e-4))
    assert r["p_upper"] == pytest.approx(stats.t.cdf(-1, 8))


def test_compare_groups_verdicts():
    rng = np.random.default_rng(8)
    a = {"size_nm": rng.normal(120, 2, 10), "conc": rng.normal(1e11, 5e9, 10),
         "purity": [1, 2], "zeta": rng.normal(-20, 1, 6)}
    b = {"size_nm": rng.normal(120.5, 2, 10), "conc": rng.normal(1.4e11, 5e9, 10),
         "purity": [1, 2, 3], "zeta": rng.normal(-20, 1, 6)}
    rep = compare_groups(a, b, {"size_nm": 5.0, "conc": Margin(0.15, "relative"),
                                "purity": 1.0, "zeta": Margin(0.2, "relative")})
    v = {c.attribute: c.verdict for c in rep.attributes}
    assert v == {"size_nm": Equivalence.EQUIVALENT, "conc": Equivalence.NOT_SHOWN,
                 "purity": Equivalence.INSUFFICIENT, "zeta": Equivalence.EQUIVALENT}
    conc = next(c for c in rep.attributes if c.attribute == "conc")
    assert conc.margin == pytest.approx(0.15 * abs(np.mean(a["conc"])))
    assert rep.summary["insufficient data"] == ["purity"]
    with pytest.raises(InvalidInput, match="margin"):
        compare_groups(a, b, {"size_nm": 5.0})


def test_size_distribution_comparison():
    d = np.arange(20, 500, 2.0)
    ref = stats.lognorm.pdf(d, 0.35, scale=110)
    same = compare_size_distributions(d, ref, d, ref)
    assert same.wasserstein_nm == pytest.approx(0, abs=1e-9)
    assert same.max_cdf_difference == pytest.approx(0, abs=1e-12)
    assert same.d10_d90_overlap == pytest.approx(1.0) and not same.flagged
    shifted = compare_size_distributions(d + 20, ref, d, ref)
    # a pure shift of 20 nm moves every particle 20 nm: W1 = 20 exactly
    assert shifted.wasserstein_nm == pytest.approx(20.0, rel=1e-9)
    assert shifted.flagged
    wide = stats.lognorm.pdf(d, 0.6, scale=110)
    r = compare_size_distributions(d, wide, d, ref)
    assert r.d10_d90_overlap < 0.7 and r.flagged
    # percentiles of a lognormal: median = scale
    assert weighted_percentiles_nm(d, ref)[1] == pytest.approx(110, rel=0.02)
    with pytest.raises(InvalidInput):
        compare_size_distributions([1, 2], [1], d, ref)
    assert math.isfinite(r.wasserstein_nm)


def test_compare_groups_with_size_distributions():
    d = np.arange(20, 500, 2.0)
    a_w = stats.lognorm.pdf(d, 0.35, scale=110)
    b_w = stats.lognorm.pdf(d, 0.35, scale=140)  # larger vesicles after the change
    g = {"size_nm": [110, 112, 108]}
    rep = compare_groups(g, g | {"size_nm": [111, 109, 110]}, {"size_nm": 10.0},
                         size_distributions=(d, b_w, d, a_w))
    assert rep.distribution is not None and rep.distribution.flagged
    assert rep.distribution.d10_d50_d90_nm[1] == pytest.approx(140, rel=0.02)
