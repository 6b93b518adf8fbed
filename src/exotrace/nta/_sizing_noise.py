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


def fit_localization_model(localization_var_m2, mean_log_intensity, n_steps, mean_step_sq_m2):
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

    Returns
    -------
    (a, c) : tuple of float or None
        Model coefficients (m^2, m^2 x intensity), or ``None`` when the data do
        not support a brightness dependence (too few tracks, no intensities,
        or a fitted c <= 0).

    Notes
    -----
    The variance of a track's sigma^2 estimate scales as <dx^2>^2 / k, so each
    track is weighted by k / <dx^2>^2.
    """
    s2 = np.asarray(localization_var_m2, dtype=float)
    mli = np.asarray(mean_log_intensity, dtype=float)
    ok = np.isfinite(s2) & np.isfinite(mli)
    if ok.sum() < 20:
        return None
    x = np.exp(-mli[ok])
    y = s2[ok]
    w = np.asarray(n_steps, dtype=float)[ok] / np.asarray(mean_step_sq_m2, dtype=float)[ok] ** 2
    if not np.all(np.isfinite(w)) or w.sum() <= 0:
        return None
    w = w / w.sum()
    x_mean = float(np.sum(w * x))
    y_mean = float(np.sum(w * y))
    var_x = float(np.sum(w * (x - x_mean) ** 2))
    if var_x <= 0:
        return None
    c = float(np.sum(w * (x - x_mean) * (y - y_mean)) / var_x)
    if c <= 0:
        return None
    a = y_mean - c * x_mean
    return a, c
