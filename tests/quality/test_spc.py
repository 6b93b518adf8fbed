"""I-MR constants, Nelson rules on hand-made series, capability, Hotelling T2."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from exotrace.errors import InsufficientData, InvalidInput
from exotrace.quality import (
    D2_N2,
    D4_N2,
    Violation,
    capability,
    hotelling_t2,
    imr_limits,
    nelson_flags,
    nelson_rules,
)


def idx(x, rule):
    return [v.index for v in nelson_rules(np.asarray(x, float), mean=0.0, sigma=1.0,
                                          rules=(rule,))]


def test_constants_match_published_values():
    # d2 for n = 2 is E|X1 - X2| / sigma = 2/sqrt(pi); d3 = sqrt(2 - 4/pi);
    # D4 = 1 + 3 d3/d2. Published (NIST e-Handbook 6.3.2, Montgomery table VI):
    # d2 = 1.128, D4 = 3.267 (rounded to 3 decimals, hence the tolerance).
    d2 = 2 / math.sqrt(math.pi)
    d3 = math.sqrt(2 - 4 / math.pi)
    assert D2_N2 == pytest.approx(d2, abs=5e-4)
    assert D4_N2 == pytest.approx(1 + 3 * d3 / d2, abs=5e-4)
    assert 3 / D2_N2 == pytest.approx(2.66, abs=1e-3)


def test_imr_limits_hand_computed():
    x = [10, 12, 11, 14, 13]
    lim = imr_limits(x)
    # MR = 2, 1, 3, 1 -> MRbar = 1.75; mean = 12.
    assert lim.mr_bar == pytest.approx(1.75)
    assert lim.mean == pytest.approx(12.0)
    assert lim.sigma == pytest.approx(1.75 / 1.128)
    assert lim.ucl == pytest.approx(12 + 2.66 * 1.75, abs=0.01)  # 2.66 is 3/1.128 rounded
    assert lim.lcl == pytest.approx(12 - 2.66 * 1.75, abs=0.01)
    assert lim.mr_ucl == pytest.approx(3.267 * 1.75)


def test_imr_limits_baseline_and_given():
    x = [10, 12, 11, 14, 13, 100, -50]
    assert imr_limits(x, baseline=5).mean == pytest.approx(12.0)
    g = imr_limits(x, mean=5.0, sigma=2.0)
    assert (g.ucl, g.lcl, g.source) == (11.0, -1.0, "given")
    with pytest.raises(InvalidInput):
        imr_limits(x, mean=5.0)
    with pytest.raises(InsufficientData):
        imr_limits(x, baseline=1)
    with pytest.raises(InsufficientData):
        imr_limits([3, 3, 3])


def test_rule1_strictly_beyond_three_sigma():
    assert idx([0, 0.5, 3.5, -3.01, 3.0, -3.0, 0], 1) == [2, 3]


def test_rule2_nine_on_one_side_and_centre_breaks():
    assert idx([0.5] * 10, 2) == [8, 9]
    assert idx([-0.5] * 9, 2) == [8]
    # a point exactly on the centre line breaks the run: 8 + 0 + 9
    assert idx([0.5] * 8 + [0.0] + [0.5] * 9, 2) == [17]
    assert idx([0.5] * 8, 2) == []


def test_rule3_six_strictly_monotone():
    assert idx([0, 0.1, 0.2, 0.3, 0.4, 0.5], 3) == [5]
    assert idx([0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6], 3) == [5, 6]
    assert idx([0.5, 0.4, 0.3, 0.2, 0.1, 0.0], 3) == [5]
    # a tie breaks the run: longest strictly increasing run has 5 points
    assert idx([0, 0.1, 0.2, 0.2, 0.3, 0.4, 0.5, 0.6], 3) == []


def test_rule4_fourteen_alternating():
    assert idx([0.1, -0.1] * 7, 4) == [13]
    assert idx([0.1, -0.1] * 7 + [0.1], 4) == [13, 14]
    assert idx([0.1, -0.1] * 6 + [0.1], 4) == []  # 13 points
    s = [0.1, -0.1] * 7
    s[6] = s[5]  # a zero step breaks the alternation
    assert idx(s, 4) == []


def test_rule5_two_of_three_beyond_two_sigma_same_side():
    assert idx([0, 2.5, 0, 2.5, 0, 0], 5) == [3]
    assert idx([2.1, 2.1, 0, -2.1, 0, -2.5], 5) == [2, 5]
    assert idx([2.0, 2.0, 2.0], 5) == []        # strict
    assert idx([2.5, -2.5, 0.0], 5) == []       # different sides


def test_rule6_four_of_five_beyond_one_sigma_same_side():
    assert idx([1.5, 1.5, 0, 1.5, 1.5, 0], 6) == [4]
    assert idx([1.5, -1.5, 1.5, -1.5, 1.5], 6) == []
    assert idx([-1.5, -1.5, -1.5, -1.5], 6) == []  # fewer than 5 points
    assert idx([-1.5] * 6, 6) == [4, 5]


def test_rule7_fifteen_within_one_sigma():
    assert idx([0.2] * 15, 7) == [14]
    assert idx([0.2] * 7 + [1.0] + [0.2] * 15, 7) == [22]  # |z| = 1 is not within
    assert idx([0.2] * 14, 7) == []


def test_rule8_eight_beyond_one_sigma_either_side():
    assert idx([1.5, -1.5] * 4, 8) == [7]
    assert idx([1.5, -1.5] * 4 + [1.2], 8) == [7, 8]
    s = [1.5, -1.5] * 4
    s[3] = -1.0  # exactly 1 sigma is not beyond
    assert idx(s, 8) == []


def test_all_rules_sorted_unique_on_combined_series():
    x = [0.0, 3.2] + [0.5] * 9
    v = nelson_rules(x, mean=0.0, sigma=1.0)
    assert v[0] == Violation(1, 1)
    # 9 in a row above: indices 2..10 -> reported at 10; rule 7 needs 15
    assert Violation(2, 10) in v
    assert v == sorted(v, key=lambda w: (w.index, w.rule))
    assert len(v) == len(set(v))


def test_flags_2d_equal_per_series():
    rng = np.random.default_rng(7)
    X = rng.normal(0, 1, (6, 200)).cumsum(axis=1) * 0.3
    means = X.mean(axis=1)
    sig = np.abs(np.diff(X, axis=1)).mean(axis=1) / D2_N2
    F = nelson_flags(X, means, sig)
    for i in range(6):
        assert np.array_equal(F[:, i], nelson_flags(X[i], means[i], sig[i]))


def test_in_control_false_alarm_rate_of_rule1():
    # For in-control normal data P(|z| > 3) = 0.0027; with 200k points the
    # count is ~540 +- 23 (binomial sd); 5 sd tolerance.
    x = np.random.default_rng(11).normal(size=200_000)
    n1 = nelson_flags(x, 0.0, 1.0)[0].sum()
    assert abs(n1 - 0.0027 * 2e5) < 5 * math.sqrt(0.0027 * 2e5)


def test_capability_hand_computed():
    x = np.array([9.8, 10.1, 10.0, 10.3, 9.9, 10.2, 10.0, 9.7])
    c = capability(x, lsl=9.0, usl=11.0)
    mu = x.mean()
    s_w = np.mean(np.abs(np.diff(x))) / 1.128
    s_o = x.std(ddof=1)
    assert c.cpk == pytest.approx(min(11 - mu, mu - 9) / (3 * s_w))
    assert c.ppk == pytest.approx(min(11 - mu, mu - 9) / (3 * s_o))
    assert c.cp == pytest.approx(2 / (6 * s_w))
    one = capability(x, usl=11.0)
    assert one.cp is None and one.cpk == pytest.approx((11 - mu) / (3 * s_w))
    with pytest.raises(InvalidInput):
        capability(x)


def test_hotelling_phase_ii_hand_computed():
    base = np.array([[1.0, 2.0], [2.0, 3.0], [3.0, 3.5], [4.0, 6.0], [5.0, 5.5], [3.0, 4.0]])
    m, p = base.shape
    mean = base.mean(axis=0)
    S = np.cov(base.T)
    # explicit 2x2 inverse
    det = S[0, 0] * S[1, 1] - S[0, 1] ** 2
    inv = np.array([[S[1, 1], -S[0, 1]], [-S[0, 1], S[0, 0]]]) / det
    new = np.array([[3.0, 4.0], [6.0, 3.0]])
    d = new - mean
    expected = [d[i] @ inv @ d[i] for i in range(2)]
    r = hotelling_t2(base, new, alpha=0.01)
    assert r.t2 == pytest.approx(expected)
    ucl = p * (m + 1) * (m - 1) / (m * m - m * p) * stats.f.ppf(0.99, p, m - p)
    assert r.ucl == pytest.approx(ucl)
    assert r.phase == "II"
    assert list(r.out_of_control) == [i for i in range(2) if expected[i] > ucl]


def test_hotelling_detects_correlation_break():
    # Two strongly correlated attributes; a lot that keeps each value within
    # its own range but breaks the correlation is caught by T2.
    rng = np.random.default_rng(3)
    z = rng.normal(size=(50, 1))
    base = np.hstack([z, z + 0.1 * rng.normal(size=(50, 1))])
    r = hotelling_t2(base, [[1.0, -1.0], [1.0, 1.0]])
    assert list(r.out_of_control) == [0]
    phase1 = hotelling_t2(base)
    assert phase1.phase == "I" and phase1.t2.shape == (50,)
    with pytest.raises(InsufficientData):
        hotelling_t2(base[:3])


_WINDOW = {1: 1, 2: 9, 3: 6, 4: 14, 5: 3, 6: 5, 7: 15, 8: 8}


def _hit(rule, w):
    steps = [b - a for a, b in zip(w, w[1:], strict=False)]
    if rule == 1:
        return abs(w[0]) > 3
    if rule == 2:
        return all(v > 0 for v in w) or all(v < 0 for v in w)
    if rule == 3:
        return all(s > 0 for s in steps) or all(s < 0 for s in steps)
    if rule == 4:
        return all(s != 0 for s in steps) and all(
            a * b < 0 for a, b in zip(steps, steps[1:], strict=False))
    if rule == 5:
        return sum(v > 2 for v in w) >= 2 or sum(v < -2 for v in w) >= 2
    if rule == 6:
        return sum(v > 1 for v in w) >= 4 or sum(v < -1 for v in w) >= 4
    if rule == 7:
        return all(abs(v) < 1 for v in w)
    return all(abs(v) > 1 for v in w)


def _naive(x, rule):
    """Direct transcription of the documented conventions, one window at a time."""
    z = [float(v) for v in x]  # mean 0, sigma 1
    k = _WINDOW[rule]
    return [i for i in range(k - 1, len(z)) if _hit(rule, z[i - k + 1:i + 1])]


@pytest.mark.parametrize("rule", range(1, 9))
def test_vectorised_rules_equal_naive_transcription(rule):
    # Values on a coarse grid (multiples of 0.5 in [-3.5, 3.5]) hit the
    # boundaries z = 0, +-1, +-2, +-3 and produce ties, where conventions matter.
    rng = np.random.default_rng(100 + rule)
    for _ in range(40):
        n = int(rng.integers(1, 60))
        scale = rng.choice([0.5, 1.0, 2.0])
        x = np.round(rng.normal(0, scale, n) * 2) / 2
        if rng.random() < 0.3:  # long alternating / monotone stretches
            x = np.cumsum(np.abs(x) + 0.1) / 10 if rng.random() < 0.5 else \
                np.tile([0.5, -0.5], n)[:n]
        assert idx(x, rule) == _naive(x, rule)
