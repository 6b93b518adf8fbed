"""Localization variance per track from its brightness.

A spot's localization variance falls with its photon count, roughly as
sigma^2 = a + c / I (shot-noise limited, plus a floor). Per-track CVE
estimates of sigma^2 are unbiased but very noisy (they are the small
difference of two large terms), so a per-track value is not usable as it is;
pooling all tracks into the two-parameter model is. Dim, small particles
then get their larger noise in the size likelihood instead of the average,
which would shift their sizes (and, for bright ones, the other way).
"""

from __future__ import annotations

import numpy as np

__all__ = ["fit_localization_model"]


def fit_localization_model(localization_var_m2, mean_log_intensity, n_steps, mean_step_sq_m2,
                           *, min_t: float = 3.0):
    """Fit sigma^2 = a + c / I across tracks by weighted least squares.

    Parameters
    ----------
    localization_var_m2 : ndarray, shape (n,)
        Per-track CVE estimates of the localization variance, m^2.
    mean_log_intensity : ndarray, shape (n,)
        Per-track mean ln(spot intensity); I = exp of it.
    n_steps : ndarray, shape (n,)
        Steps per track.
    mean_step_sq_m2 : ndarray, shape (n,)
        Mean squared step per axis, m^2 (sets each estimate's noise).
    min_t : float
        The brightness term must be this many standard errors above zero;
        otherwise the data cannot tell (noise far below the diffusion steps)
        and ``None`` is returned.

    Returns
    -------
    (a, c) : tuple of float or None
        Model coefficients (m^2, m^2 x intensity), or ``None`` when the data do
        not support a brightness dependence (too few tracks, no intensities,
        or c not significantly above 0).

    Notes
    -----
    Tracks are weighted by their steps k. ``mean_step_sq_m2`` is accepted for
    the interface but not used for weights (see the comment in the code).
    """
    s2 = np.asarray(localization_var_m2, dtype=float)
    mli = np.asarray(mean_log_intensity, dtype=float)
    ok = np.isfinite(s2) & np.isfinite(mli)
    if ok.sum() < 20:
        return None
    x = np.exp(-mli[ok])
    y = s2[ok]
    # Weights from the steps only: weighting by the track's own 1 / <dx^2>^2
    # (its inverse variance) would favour tracks whose <dx^2> came out low by
    # chance, and with it their sigma^2, biasing the fit.
    w = np.asarray(n_steps, dtype=float)[ok]
    if not np.all(np.isfinite(w)) or w.sum() <= 0:
        return None
    w = w / w.sum()
    x_mean = float(np.sum(w * x))
    y_mean = float(np.sum(w * y))
    sxx = float(np.sum(w * (x - x_mean) ** 2))
    if sxx <= 0:
        return None
    c = float(np.sum(w * (x - x_mean) * (y - y_mean)) / sxx)
    a = y_mean - c * x_mean
    # Weighted least squares with the weights known up to a scale: the scale
    # from the residuals, then the standard error of c.
    n = int(ok.sum())
    resid_var = float(np.sum(w * (y - a - c * x) ** 2)) * n / (n - 2)
    se_c = np.sqrt(resid_var / (sxx * n))
    if c <= 0 or c < min_t * se_c:
        return None
    return a, c
