"""Property tests of the distribution statistics and the gamma likelihood."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from exotrace.nta._sizing_em import em_mixture, gamma_log_likelihood
from exotrace.nta._sizing_stats import distribution_stats, grid_edges_nm
from exotrace.nta.sizing import default_grid_nm

GRID = default_grid_nm(50)


@settings(max_examples=60, deadline=None)
@given(arrays(np.float64, 50, elements=st.floats(0.0, 1.0)).filter(lambda a: a.sum() > 1e-3))
def test_quantiles_are_ordered_and_inside_the_grid(frac):
    s = distribution_stats(GRID, frac / frac.sum())
    edges = grid_edges_nm(GRID)
    assert edges[0] - 1e-9 <= s.d10_nm <= s.d50_nm <= s.d90_nm <= edges[-1] + 1e-9
    assert GRID[0] <= s.mean_nm <= GRID[-1]
    assert s.sd_nm >= 0
    assert all(GRID[0] * 0.9 <= p <= GRID[-1] * 1.1 for p in s.peaks_nm)


@settings(max_examples=30, deadline=None)
@given(st.integers(1, 200), st.floats(0.0, 1 / 6), st.floats(1e-13, 1e-11))
def test_gamma_likelihood_peaks_at_the_expected_mean_step(k, blur, d_true):
    # The likelihood of a track whose mean squared step equals its expectation
    # is highest at (or next to) the true diffusion coefficient.
    dt, s2 = 0.04, 1e-15
    m = 2 * d_true * dt * (1 - 2 * blur) + 2 * s2
    grid_d = np.geomspace(1e-14, 1e-10, 400)
    ll = gamma_log_likelihood(np.array([m]), np.array([k]), np.array([max(k - 1, 0)]), grid_d,
                              frame_interval_s=dt, blur=blur, localization_var_m2=s2)
    best = grid_d[np.argmax(ll[0])]
    assert abs(np.log(best / d_true)) <= np.log(grid_d[1] / grid_d[0]) + 1e-9


def test_em_recovers_mixture_weights_from_exact_gamma_draws():
    # Draw mean squared steps from the model itself (independent steps, no blur),
    # two diffusion coefficients 3:1 by number; plain EM recovers the weights.
    rng = np.random.default_rng(5)
    dt, k = 0.04, 40
    d_small, d_large = 6e-12, 2e-12
    which = rng.random(4000) < 0.75
    d = np.where(which, d_small, d_large)
    m = 2 * d * dt * rng.gamma(k, 1.0 / k, size=d.size)
    grid_d = np.geomspace(5e-13, 2e-11, 120)
    ll = gamma_log_likelihood(m, np.full(d.size, k), np.zeros(d.size), grid_d,
                              frame_interval_s=dt, blur=0.0, localization_var_m2=0.0)
    res = em_mixture(ll, smoothing=0.0, max_iter=3000)
    split = np.sqrt(d_small * d_large)
    # 4000 tracks: binomial SE of the fraction is 0.007; 0.03 allows the EM's
    # residual overlap between the two components.
    assert abs(res.weights[grid_d > split].sum() - 0.75) < 0.03
    np.testing.assert_allclose(res.posterior.sum(axis=1), 1.0, rtol=1e-9)
