"""Small numerical helpers that keep scipy out of an NTA analysis' start-up.

Importing ``scipy.special``, ``scipy.spatial`` and ``scipy.ndimage`` took
~0.1 s of every ``exotrace nta analyze`` (numba loads a little of scipy
anyway; the whole command on a 200-frame capture: 1.67 s with them, 1.55 s
without, best of 5) for five functions, each a few lines here.
Each equals the scipy call named in its docstring (the tests hold them
against scipy).
"""

from __future__ import annotations

import math

import numpy as np

from . import _kernels

__all__ = ["chi2_sf_even", "close_pairs", "convolve_rows", "gaussian_smooth", "log_gamma",
           "moving_mean_nearest"]


def close_pairs(x_px, y_px, radius_px: float) -> np.ndarray:
    """``cKDTree(points).query_pairs(radius_px, output_type="ndarray")``.

    Index pairs ``(i, j)``, i < j, of points at most ``radius_px`` apart,
    shape (m, 2), found by the linker's grid search
    (:func:`._kernels.candidate_pairs_nb`).
    """
    x = np.ascontiguousarray(x_px, dtype=np.float64)
    y = np.ascontiguousarray(y_px, dtype=np.float64)
    r = float(radius_px)
    a, b = _kernels.candidate_pairs_nb(x, y, np.full(len(x), r), x, y, max(r, 16.0))
    one = a < b
    return np.column_stack([a[one], b[one]])


def moving_mean_nearest(values, size: int) -> np.ndarray:
    """``scipy.ndimage.uniform_filter1d(values, size, mode="nearest")`` of a 1-D array.

    The window of sample i spans ``i - size // 2 .. i + (size - 1) // 2``
    (scipy's placement for an even size), edges repeated.
    """
    a = np.asarray(values, dtype=float)
    size = int(size)
    if size < 1:
        raise ValueError(f"size must be >= 1, got {size}")
    if a.size == 0 or size == 1:
        return a.copy()
    left, right = size // 2, (size - 1) // 2
    padded = np.concatenate((np.full(left, a[0]), a, np.full(right, a[-1])))
    sums = np.concatenate(([0.0], np.cumsum(padded)))
    return (sums[size:] - sums[:-size]) / size


def convolve_rows(values, kernel) -> np.ndarray:
    """``scipy.ndimage.convolve1d(values, kernel, axis=1, mode="constant")`` of a 2-D array.

    Zero padding; an even-length kernel is placed as scipy places it (its
    centre at ``len // 2``).
    """
    a = np.asarray(values, dtype=float)
    w = np.asarray(kernel, dtype=float)
    n = a.shape[1]
    centre = len(w) // 2
    out = np.zeros_like(a)
    # out[:, i] = sum_j w[j] a[:, i + centre - j]
    for j, wj in enumerate(w):
        shift = centre - j
        lo, hi = max(0, -shift), min(n, n - shift)
        if lo < hi and wj != 0.0:
            out[:, lo:hi] += wj * a[:, lo + shift:hi + shift]
    return out


def gaussian_smooth(values, sigma: float, truncate: float = 4.0) -> np.ndarray:
    """``scipy.ndimage.gaussian_filter1d(values, sigma, mode="constant")`` of a 1-D array."""
    a = np.asarray(values, dtype=float)
    radius = int(truncate * float(sigma) + 0.5)
    x = np.arange(-radius, radius + 1, dtype=float)
    w = np.exp(-0.5 * (x / float(sigma)) ** 2)
    w /= w.sum()
    return np.convolve(a, w, mode="full")[radius:radius + len(a)]


def log_gamma(values) -> np.ndarray:
    """``scipy.special.gammaln``: ln |Gamma(x)| elementwise (libm's ``lgamma``)."""
    a = np.ascontiguousarray(values, dtype=np.float64)
    out = np.empty_like(a)
    if a.size:
        _kernels.lgamma_nb(a.reshape(-1), out.reshape(-1))
    return out


def chi2_sf_even(dof: int, x: float) -> float:
    """``scipy.special.chdtrc(dof, x)``, the chi-square survival function, for even ``dof``.

    For k = dof / 2 the upper tail is ``exp(-x/2) sum_{i<k} (x/2)^i / i!``
    (the Poisson CDF), summed in logarithms so that large x do not overflow.
    """
    if dof < 2 or dof % 2:
        raise ValueError(f"dof must be a positive even number, got {dof}")
    if not x > 0:
        return 1.0 if x == x else float("nan")
    h = 0.5 * float(x)
    terms = [i * math.log(h) - math.lgamma(i + 1) for i in range(dof // 2)]
    top = max(terms)
    return float(math.exp(top - h) * sum(math.exp(t - top) for t in terms))
