"""ICH Q1E shelf life against an independent statsmodels computation."""

from __future__ import annotations

import numpy as np
import pytest
import statsmodels.api as sm

from exotrace.errors import InsufficientData, InvalidInput
from exotrace.quality import freeze_thaw_limit, shelf_life

TIMES = np.array([0, 3, 6, 9, 12, 18, 24], dtype=float)


def make(intercepts, slopes, sd, seed):
    rng = np.random.default_rng(seed)
    t = np.tile(TIMES, len(slopes))
    b = np.repeat([f"B{i}" for i in range(len(slopes))], TIMES.size)
    y = np.concatenate([a + s * TIMES for a, s in zip(intercepts, slopes, strict=False)])
    return t, y + rng.normal(0, sd, y.size), b


def dummies(b, names):
    return np.column_stack([(b == n).astype(float) for n in names])


def crossing(fit, exog_of, lower, upper, alpha, t_max):
    """Earliest grid time where statsmodels' CI of the mean leaves the limits."""
    grid = np.linspace(0, t_max, 200_001)
    ci = fit.get_prediction(exog_of(grid)).conf_int(alpha=alpha)
    bad = np.zeros(grid.size, bool)
    if lower is not None:
        bad |= ci[:, 0] < lower
    if upper is not None:
        bad |= ci[:, 1] > upper
    return grid[np.argmax(bad)] if bad.any() else t_max


def reference(t, y, b, lower=None, upper=None):
    names = list(dict.fromkeys(b))
    k = len(names)
    D = dummies(b, names)
    full = sm.OLS(y, np.hstack([D, D * t[:, None]])).fit()
    common = sm.OLS(y, np.hstack([D, t[:, None]])).fit()
    pooled = sm.OLS(y, sm.add_constant(t)).fit()
    if k == 1:
        p_s = p_i = 1.0  # one batch: nothing to pool
    else:
        p_s = full.compare_f_test(common)[1]
        p_i = common.compare_f_test(pooled)[1]
    alpha = 0.05 if (lower is not None and upper is not None) else 0.10
    t_max = 2 * t.max()
    if p_s < 0.25:
        model = "separate"
        sls = []
        for n in names:
            m = b == n
            f = sm.OLS(y[m], sm.add_constant(t[m])).fit()
            sls.append(crossing(f, lambda g: sm.add_constant(g), lower, upper, alpha, t_max))
    elif p_i < 0.25:
        model = "common slope"
        sls = []
        for i in range(k):
            def ex(g, i=i):
                X = np.zeros((g.size, k + 1))
                X[:, i] = 1
                X[:, k] = g
                return X
            sls.append(crossing(common, ex, lower, upper, alpha, t_max))
    else:
        model = "pooled"
        sls = [crossing(pooled, lambda g: sm.add_constant(g), lower, upper, alpha, t_max)]
    return model, p_s, p_i, min(sls)


STEP = 48 / 200_000  # reference grid spacing (time units)


@pytest.mark.parametrize("intercepts, slopes, sd, seed, expected_model", [
    ([100, 100, 100], [-0.5, -0.5, -0.5], 0.6, 1, "pooled"),
    ([101, 98, 100], [-0.5, -0.5, -0.5], 0.3, 2, "common slope"),
    ([100, 100, 100], [-0.2, -0.5, -0.9], 0.3, 3, "separate"),
    ([100, 100, 100, 100], [-0.4, -0.4, -0.4, -0.4], 0.8, 4, "pooled"),
])
def test_against_statsmodels(intercepts, slopes, sd, seed, expected_model):
    t, y, b = make(intercepts, slopes, sd, seed)
    res = shelf_life(t, y, b, lower_limit=90.0)
    model, p_s, p_i, sl = reference(t, y, b, lower=90.0)
    assert res.model == model == expected_model
    assert res.p_slopes == pytest.approx(p_s, rel=1e-9)
    if model != "separate":
        assert res.p_intercepts == pytest.approx(p_i, rel=1e-9)
    # our root is exact; the reference is the first grid point past the crossing
    assert sl - STEP <= res.shelf_life <= sl + 1e-9
    assert res.crossing == "lower" and not res.capped


def test_two_sided_uses_97_5_percent_each_side():
    t, y, b = make([100], [0.4], 0.5, 5)
    res = shelf_life(t, y, None, lower_limit=90.0, upper_limit=105.0)
    assert res.sided == "two-sided" and res.model == "pooled"
    _, _, _, sl = reference(t, y, np.array(["pooled"] * t.size), 90.0, 105.0)
    assert sl - STEP <= res.shelf_life <= sl + 1e-9 and res.crossing == "upper"
    one = shelf_life(t, y, None, upper_limit=105.0)
    assert one.shelf_life > res.shelf_life  # one-sided 95 % bound is narrower


def test_known_slope_recovered_and_cap_warning():
    t, y, b = make([100, 100, 100], [-0.5, -0.5, -0.5], 0.2, 6)
    res = shelf_life(t, y, b, lower_limit=90.0)
    # true line crosses 90 at t = 20; the bound crosses a little earlier
    assert 17.5 < res.shelf_life < 20.0
    flat = shelf_life(t, 100 + 0.01 * np.sin(t) + 0 * y, b, lower_limit=50.0)
    assert flat.capped and flat.shelf_life == pytest.approx(48.0)
    assert any("cap" in w for w in flat.warnings)


def test_freeze_thaw_cycles():
    cycles = np.tile(np.arange(0, 6, dtype=float), 3)
    rng = np.random.default_rng(9)
    conc = 1.0 - 0.08 * cycles + rng.normal(0, 0.01, cycles.size)  # relative concentration
    r = freeze_thaw_limit(cycles, conc, np.repeat(["a", "b", "c"], 6), lower_limit=0.7)
    # true line reaches 0.7 at 3.75 cycles; the lower bound earlier -> 3 whole cycles
    assert r.max_cycles == 3
    assert 3.0 < r.analysis.shelf_life < 3.75


def test_input_errors():
    with pytest.raises(InvalidInput, match="limit"):
        shelf_life([0, 1, 2], [1, 2, 3])
    with pytest.raises(InsufficientData, match="batch b"):
        shelf_life([0, 1, 2, 0, 1], [1, 2, 3, 1, 2], ["a", "a", "a", "b", "b"], lower_limit=0)
    with pytest.raises(InvalidInput, match="below upper"):
        shelf_life([0, 1, 2], [1, 2, 3], lower_limit=5, upper_limit=1)
