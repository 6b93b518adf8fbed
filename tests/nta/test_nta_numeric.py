"""The helpers that replace scipy calls in the NTA analysis, held against scipy itself."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage, special
from scipy.spatial import cKDTree

from exotrace.nta._numeric import (
    chi2_sf_even,
    close_pairs,
    convolve_rows,
    gaussian_smooth,
    log_gamma,
    moving_mean_nearest,
)
from exotrace.nta._shadowing import _same_frame_pairs

RNG = np.random.default_rng(3)


@pytest.mark.parametrize("size", [1, 2, 3, 4, 7, 10, 31, 60])
@pytest.mark.parametrize("n", [1, 5, 40])
def test_moving_mean_equals_uniform_filter1d(size, n):
    # even sizes too: scipy puts the extra sample on the left
    a = RNG.normal(size=n).cumsum()
    np.testing.assert_allclose(moving_mean_nearest(a, size),
                               ndimage.uniform_filter1d(a, size=size, mode="nearest"),
                               rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("width", [1, 2, 3, 4, 5, 9])
def test_row_convolution_equals_convolve1d(width):
    a = RNG.random((3, 25))
    w = RNG.random(width)  # asymmetric: the flip and the centre both count
    np.testing.assert_allclose(convolve_rows(a, w),
                               ndimage.convolve1d(a, w, axis=1, mode="constant"),
                               rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("sigma", [0.3, 1.0, 2.5, 7.0])
def test_gaussian_smooth_equals_gaussian_filter1d(sigma):
    a = RNG.random(50)
    a[[0, -1]] = 5.0  # spikes at the edges: zero padding shows
    np.testing.assert_allclose(gaussian_smooth(a, sigma),
                               ndimage.gaussian_filter1d(a, sigma, mode="constant"),
                               rtol=1e-12, atol=1e-14)


def test_log_gamma_equals_gammaln_over_the_range_the_likelihood_uses():
    # alpha spans 1e-12 (floored tempering) to ~1e4 steps, as a grid
    x = np.concatenate([np.logspace(-12, 4, 400), [0.5, 1.0, 2.0, 3.5]]).reshape(4, 101)
    np.testing.assert_allclose(log_gamma(x), special.gammaln(x), rtol=1e-13, atol=1e-13)
    assert log_gamma(np.zeros((0, 3))).shape == (0, 3)


@pytest.mark.parametrize("dof", [2, 4, 10])
def test_chi2_tail_equals_chdtrc(dof):
    for x in (1e-8, 0.5, 3.0, 10.0, 18.3, 40.0, 200.0, 1500.0):
        assert chi2_sf_even(dof, x) == pytest.approx(special.chdtrc(dof, x), rel=1e-12,
                                                      abs=1e-300)
    assert chi2_sf_even(dof, 0.0) == 1.0
    with pytest.raises(ValueError):
        chi2_sf_even(3, 1.0)


def test_same_frame_pairs_equal_a_kd_tree_per_frame():
    n = 3000
    x, y = RNG.uniform(0, 300, n), RNG.uniform(0, 200, n)
    frame = RNG.integers(0, 20, n)
    got = _same_frame_pairs(x, y, frame, 32.0)
    assert np.all(got[:, 0] < got[:, 1])
    assert np.all(frame[got[:, 0]] == frame[got[:, 1]])
    pts = np.column_stack([x, y, frame * 1e4])
    want = cKDTree(pts).query_pairs(32.0, output_type="ndarray")
    assert len(want) > 1000
    assert {tuple(p) for p in got} == {tuple(sorted(p)) for p in want}
    assert _same_frame_pairs(x[:1], y[:1], frame[:1], 32.0).shape == (0, 2)


@pytest.mark.parametrize("radius", [1.5, 10.0, 40.0])
def test_close_pairs_equal_query_pairs(radius):
    # radii below and above the grid's 16 px cell
    x, y = RNG.uniform(0, 200, 400), RNG.uniform(0, 150, 400)
    got = close_pairs(x, y, radius)
    assert got.shape[1] == 2 and np.all(got[:, 0] < got[:, 1])
    want = cKDTree(np.column_stack([x, y])).query_pairs(radius, output_type="ndarray")
    assert len(want) > 0
    assert {tuple(p) for p in got} == {tuple(sorted(p)) for p in want}
    assert close_pairs(x[:1], y[:1], radius).shape == (0, 2)
