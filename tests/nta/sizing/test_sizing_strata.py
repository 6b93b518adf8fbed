"""The EM with a prior per brightness class of tracks (``em_mixture(strata=...)``)."""

from __future__ import annotations

import numpy as np
import pytest

from exotrace.errors import InvalidInput
from exotrace.nta._sizing_em import em_mixture, gamma_log_likelihood

DT = 0.04
GRID_D = np.geomspace(5e-13, 5e-11, 200)  # m^2/s, ~2.3 % apart in D


def _two_kinds_of_tracks(seed: int):
    """Fast particles leave short (2-step) tracks, slow ones mostly long (40-step) tracks.

    Like a 70/140 nm NTA mixture: the fast, dim particles give short tracks
    whose steps barely tell the sizes apart, the slow, bright ones long,
    informative tracks; brightness class 0 holds all fast particles and a
    third of the slow ones (seen at the edge of the sheet), class 1 the
    rest. Mean squared steps are drawn from the likelihood's own gamma law
    (independent steps, no blur or noise), so any bias is the estimator's.
    """
    rng = np.random.default_rng(seed)
    n = 6000
    fast = rng.random(n) < 0.6
    d = np.where(fast, 8e-12, 2e-12)
    edge = ~fast & (rng.random(n) < 1 / 3)
    k = np.where(fast | edge, 2, 40)
    stratum = np.where(fast | edge, 0, 1)
    m = 2 * d * DT * rng.gamma(k, 1.0 / k)
    ll = gamma_log_likelihood(m, k, np.zeros(n), GRID_D, frame_interval_s=DT, blur=0.0,
                              localization_var_m2=0.0)
    return ll, stratum, fast


@pytest.mark.parametrize("seed", [1, 2])
def test_brightness_classes_recover_the_fraction_one_prior_misses(seed):
    ll, stratum, fast = _two_kinds_of_tracks(seed)
    split = np.sqrt(8e-12 * 2e-12)
    truth = fast.mean()
    plain = em_mixture(ll, smoothing=0.45, max_iter=5000, tol=1e-9)
    strat = em_mixture(ll, smoothing=0.45, max_iter=5000, tol=1e-9, strata=stratum)
    plain_frac = plain.posterior[:, GRID_D > split].sum(axis=1).mean()
    strat_frac = strat.posterior[:, GRID_D > split].sum(axis=1).mean()
    # One prior for all: the 2-step tracks inherit the long tracks' mix (slow
    # particles), so the fast fraction comes out far low.
    assert plain_frac < truth - 0.08
    # 6000 tracks: binomial SE 0.006; 0.04 allows the short tracks' overlap.
    assert strat_frac == pytest.approx(truth, abs=0.04)
    # The pooled weights are the mean posterior (what the size distribution uses).
    np.testing.assert_allclose(strat.posterior.sum(axis=1), 1.0, rtol=1e-9)
    assert strat.weights[GRID_D > split].sum() == pytest.approx(strat_frac, abs=0.01)


def test_one_stratum_is_the_plain_em():
    ll, _, _ = _two_kinds_of_tracks(3)
    plain = em_mixture(ll, smoothing=0.45, max_iter=300, tol=1e-9)
    one = em_mixture(ll, smoothing=0.45, max_iter=300, tol=1e-9, strata=np.zeros(len(ll), int))
    # The same fixed point; the accelerated iteration (SQUAREM) may take its
    # extrapolations differently from rounding alone, so the two stop within
    # the convergence tolerance of each other, not bit for bit.
    np.testing.assert_allclose(one.weights, plain.weights, rtol=1e-5, atol=1e-10)
    np.testing.assert_allclose(one.posterior, plain.posterior, rtol=1e-5, atol=1e-8)
    assert one.converged and plain.converged


def test_strata_must_match_the_tracks():
    ll, _, _ = _two_kinds_of_tracks(4)
    with pytest.raises(InvalidInput, match="one entry per track"):
        em_mixture(ll, strata=np.zeros(len(ll) - 1, int))
