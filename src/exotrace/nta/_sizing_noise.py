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

from dataclasses import dataclass

import numpy as np

__all__ = ["LagNoise", "fit_localization_model", "lag_noise_by_brightness"]


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


# Fewest pairs at the longer lag over all tracks for the lag-based intercepts, and fewest
# tracks with a brightness to fit their law in brightness.
MIN_LAG_NOISE_PAIRS = 500
MIN_LAW_TRACKS = 20


@dataclass(frozen=True)
class LagNoise:
    """Per-frame noise of the tracks by brightness class, from their lag moments.

    Attributes
    ----------
    row_var_m2 : ndarray, shape (n_rows,)
        Effective localization variance per axis of every row (kept tracks,
        then short ones), m^2: ``a + c exp(-y)`` at its brightness y, or the
        global value (unknown brightness, no law).
    class_var_m2 : ndarray
        Value of each brightness class on its own (index = class), m^2, for
        inspection.
    class_pairs : ndarray of int
        Pairs at the longer lag behind each class.
    global_var_m2 : float
        The value over all tracks, m^2.
    reference_diffusion_m2_per_s : float
        (MSD(L) - MSD(1)) / (2 (L - 1) dt) over all tracks, m^2/s.
    law : (float, float) or None
        (a, c) of ``s^2 = a + c exp(-y)``, m^2; ``None`` when not fitted.
    """

    row_var_m2: np.ndarray
    class_var_m2: np.ndarray
    class_pairs: np.ndarray
    global_var_m2: float
    reference_diffusion_m2_per_s: float
    law: tuple | None = None


def lag_noise_by_brightness(mean_step_sq1_m2, n_steps1, mean_lag_sq_m2, n_lag,
                            log_peak_ratio, *, frame_interval_s: float, blur: float,
                            class_width: float, lag: int = 2) -> LagNoise | None:
    """Effective localization variance by brightness from MSD(1) and MSD(``lag``).

    Everything that acts on single frames (localization error, a neighbour's
    light pulling a centroid, detection favouring frames in which a dim
    particle moved little during the exposure) adds the same amount to the
    mean squared displacement at every lag, while diffusion adds 2 D dt per
    frame of lag. Per axis, ``MSD(L) = 2 D dt (L - 2 R) + 2 s^2`` with R the
    nominal blur factor, so the pooled MSD(1) and MSD(2) of a class of tracks
    give its D and its per-frame term ``s^2``, which is what the size
    likelihood of consecutive steps needs (with the nominal R). Lag 2 rather
    than 3: a pair of positions is only in a track if the track survived the
    frames between, which favours slow moments; over one frame between less
    so (on simulated 100 nm videos D50 came out ~0.5 % nearer the truth, the
    70 nm peak of a 70/140 mixture 1-2 % nearer).

    The per-track CVE estimates (:func:`fit_localization_model`) assume the
    blur model holds frame by frame; for dim particles it does not (the
    frames detected are those whose exposure stayed compact), and on
    simulated 70/140 nm videos the CVE gave the 70 nm tracks 0.9-2.5 px^2
    where their consecutive steps needed 0.1-0.6 px^2, which sized them
    10-25 % too large.

    Parameters
    ----------
    mean_step_sq1_m2, n_steps1, mean_lag_sq_m2, n_lag : ndarray, shape (n,)
        Per kept track: mean squared consecutive step and ``lag``-frame
        displacement per axis (m^2), and their counts.
    log_peak_ratio : ndarray, shape (n_rows,)
        Mean ln(peak / threshold) of every row (kept tracks first); ``nan``
        for unknown (such rows get the global value).
    frame_interval_s : float
        s.
    blur : float
        Nominal motion-blur factor R.
    class_width : float
        Width of a brightness class in ln units (classes are reported, the
        rows follow the law).
    lag : int
        The longer lag (>= 2).

    Returns
    -------
    LagNoise or None
        ``None`` with fewer than :data:`MIN_LAG_NOISE_PAIRS` pairs at ``lag``
        or a non-positive reference diffusion.
    """
    m1 = np.asarray(mean_step_sq1_m2, dtype=float)
    m3 = np.asarray(mean_lag_sq_m2, dtype=float)
    n1 = np.asarray(n_steps1, dtype=float)
    n3 = np.asarray(n_lag, dtype=float)
    y = np.asarray(log_peak_ratio, dtype=float)
    n = len(m1)
    ok = (n1 > 0) & (n3 > 0) & np.isfinite(m1) & np.isfinite(m3)
    if n3[ok].sum() < MIN_LAG_NOISE_PAIRS:
        return None
    # one weight for both lags of a track keeps the pooled relations linear
    # in each track's D (polydisperse samples)
    w = np.where(ok, np.minimum(n1, n3), 0.0)
    m1 = np.where(ok, m1, 0.0)
    m3 = np.where(ok, m3, 0.0)
    dt = frame_interval_s

    def intercept(weights):
        total = weights.sum()
        mean1 = float(np.dot(weights, m1) / total)
        mean3 = float(np.dot(weights, m3) / total)
        d_dt2 = (mean3 - mean1) / (lag - 1)  # 2 D dt
        return 0.5 * (mean1 - d_dt2 * (1.0 - 2.0 * blur)), d_dt2 / (2.0 * dt)

    s2_global, d_ref = intercept(w)
    if not (np.isfinite(d_ref) and d_ref > 0):
        return None
    known = np.isfinite(y)
    cls = np.full(len(y), -1, dtype=np.int64)
    cls[known] = np.floor(np.maximum(y[known], 0.0) / class_width).astype(np.int64)
    n_cls = int(cls.max()) + 1 if np.any(known) else 0
    class_var = np.full(n_cls, s2_global)
    class_pairs = np.zeros(n_cls, dtype=np.int64)
    kept_cls = cls[:n]
    for b in range(n_cls):
        wb = np.where(kept_cls == b, w, 0.0)
        class_pairs[b] = int(n3[ok & (kept_cls == b)].sum())
        if wb.sum() > 0:
            class_var[b] = intercept(wb)[0]
    # A smooth law through the classes, s^2 = a + c exp(-y) (shot noise: the
    # variance falls as 1 / brightness), fitted to the tracks' own per-frame
    # terms: per class the values scatter by ~0.3 px^2 (a few hundred tracks),
    # which rippled a broad size distribution into two peaks.
    z = 0.5 * (m1 - (m3 - m1) / (lag - 1) * (1.0 - 2.0 * blur))  # per-track s^2, unbiased
    fit = known[:n] & ok
    row = np.full(len(y), s2_global)
    law = None
    if fit.sum() >= MIN_LAW_TRACKS:
        g = np.exp(-np.maximum(y[:n][fit], 0.0))
        wf = w[fit] / w[fit].sum()
        g_mean = float(np.dot(wf, g))
        z_mean = float(np.dot(wf, z[fit]))
        sgg = float(np.dot(wf, (g - g_mean) ** 2))
        if sgg > 0:
            c = max(float(np.dot(wf, (g - g_mean) * (z[fit] - z_mean))) / sgg, 0.0)
            a = z_mean - c * g_mean
            law = (a, c)
            row[known] = a + c * np.exp(-np.maximum(y[known], 0.0))
    return LagNoise(row_var_m2=row, class_var_m2=class_var, class_pairs=class_pairs,
                    global_var_m2=float(s2_global), reference_diffusion_m2_per_s=float(d_ref),
                    law=law)


# Tracks at least this bright (ln(peak / threshold), a factor 7.4) estimate
# the blur factor when the exposure is unknown, and how many lag-3 pairs
# they need.
BRIGHT_LOG_RATIO = 2.0
MIN_BLUR_PAIRS = 300


def blur_from_bright_tracks(mean_step_sq1_m2, n_steps1, mean_lag3_sq_m2, n_lag3,
                            log_peak_ratio) -> float | None:
    """Motion-blur factor R from the brightest tracks' MSD(1) and MSD(3).

    Per axis ``MSD(L) = 2 D dt (L - 2 R) + 2 sigma^2``. For spots far above
    the threshold the localization variance is small beside the blur term
    (on simulated 140 nm EVs 0.08 px^2 against 2 R D dt = 1.65 px^2), so
    ``R = (1 - MSD(1) / (2 D dt)) / 2`` with ``2 D dt = (MSD(3) - MSD(1)) / 2``
    pooled over the tracks brighter than :data:`BRIGHT_LOG_RATIO`. Used when
    the shutter time is not known: without it the blur, which makes steps
    look shorter, is not corrected and sizes come out up to a third large.

    Returns
    -------
    float or None
        R within [0, 1/6] (1/6: shutter open the whole frame), or ``None``
        with fewer than :data:`MIN_BLUR_PAIRS` lag-3 pairs of bright tracks.
    """
    m1 = np.asarray(mean_step_sq1_m2, dtype=float)
    m3 = np.asarray(mean_lag3_sq_m2, dtype=float)
    n1 = np.asarray(n_steps1, dtype=float)
    n3 = np.asarray(n_lag3, dtype=float)
    y = np.asarray(log_peak_ratio, dtype=float)[:len(m1)]
    ok = ((n1 > 0) & (n3 > 0) & np.isfinite(m1) & np.isfinite(m3) & np.isfinite(y)
          & (y >= BRIGHT_LOG_RATIO))
    if n3[ok].sum() < MIN_BLUR_PAIRS:
        return None
    w = np.minimum(n1, n3)[ok]
    mean1 = float(np.dot(w, m1[ok]) / w.sum())
    mean3 = float(np.dot(w, m3[ok]) / w.sum())
    d_dt2 = 0.5 * (mean3 - mean1)
    if not d_dt2 > 0:
        return None
    return float(np.clip(0.5 * (1.0 - mean1 / d_dt2), 0.0, 1.0 / 6.0))
