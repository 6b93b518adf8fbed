"""Effective motion-blur factor of detected frames, measured from the tracks.

Under motion blur a dim particle is detected more often in frames in which it
moved little during the exposure: its light stays on fewer pixels and its
peak is higher. The positions that make up a track therefore come from
exposures that are more compact than average, and the mean squared step
between consecutive detected frames is smaller than the blur model
``2 D dt (1 - 2R) + 2 sigma^2`` (R = t_E / (6 dt)) predicts; on simulated
videos of 100 nm EVs (30 ms exposure at 25 fps) by about 5 %, so sizes came
out 3-5 % large.

Such a selection acts on each detected frame separately, so it adds the same
constant to the mean squared displacement at every lag L >= 1 (it only
changes the exposure-internal parts at the two ends of a displacement). The
difference of MSDs at lags 3 and 1, over all pairs of detected positions
(whether or not the frames between were detected), is then free of it::

    D_ref = (MSD(3) - MSD(1)) / (4 dt)

Matching the consecutive-step moments of the same tracks to
``2 D_ref dt (1 - 2 R_eff) + 2 sigma^2`` gives the effective blur factor
``R_eff`` that the size likelihood then uses. Localization error is a
per-frame effect too, so errors in sigma^2 are absorbed in ``R_eff`` at the
sample's mean diffusion.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["LINEARITY_RANGE", "SelectionCalibration", "effective_blur_factor",
           "selection_weight"]

# Fewest lag-3 pairs for a calibration (~1 % precision on D_ref needs a few
# thousand; below this the nominal blur factor is kept).
MIN_LAG3_PAIRS = 500
# R_eff is kept within these bounds around the nominal R: detection selection
# only makes exposures look more compact (R_eff >= R), but localization noise
# mis-estimated by the per-track model may pull it a little either way.
_BELOW_NOMINAL = 0.03
_ABOVE_NOMINAL = 0.2
# Brownian motion: MSD(3) - MSD(2) = MSD(2) - MSD(1). On clean simulated
# tracks the ratio came out 0.94-0.98; wrong links between overlapping spots
# of a dense field gave 0.79 (and a reference D 9-39 % high).
LINEARITY_RANGE = (0.85, 1.15)
# Scale of g(y) = exp(-y / scale), y = ln(peak / threshold): motion blur
# changes a spot's peak by a factor of up to ~2-3 between a compact and a
# smeared exposure, so selection fades within about one unit of y. On a
# simulated 70/140 nm mixture scales 0.5 / 1 / 2 put the peaks at 70.1 /
# 70.4 / 71.1 and 137.6 / 136.6 / 134.9 nm (100 nm alone: the same D50).
SELECTION_SCALE = 0.5


@dataclass(frozen=True)
class SelectionCalibration:
    """Result of :func:`effective_blur_factor`.

    Attributes
    ----------
    blur_factor : float
        Mean R_eff over the tracks (dimensionless).
    nominal_blur_factor : float
        R = t_E / (6 dt) of the acquisition.
    reference_diffusion_m2_per_s : float or None
        D_ref, the pair-weighted mean diffusion coefficient from MSD(3) - MSD(1);
        ``None`` when there were too few pairs (R_eff = R then).
    n_pairs : int
        Lag-3 pairs used.
    clipped : bool
        R_eff hit a bound.
    linear : bool
        The displacements grew linearly with the lag (else no calibration).
    delta : float
        Extra blur factor of a track at the threshold; a track's factor is
        ``R + delta * g(y)``.
    per_track : ndarray or None
        Each track's factor (``None`` without calibration).
    """

    blur_factor: float
    nominal_blur_factor: float
    reference_diffusion_m2_per_s: float | None
    n_pairs: int
    clipped: bool = False
    linear: bool = True
    delta: float = 0.0
    per_track: np.ndarray | None = None


def selection_weight(log_peak_ratio, scale: float) -> np.ndarray:
    """g(y) = exp(-y / scale) for y = ln(peak / threshold) >= 0 (1 at the threshold).

    Unknown brightness (nan) gets the mean of the known values (1 if none).
    """
    y = np.asarray(log_peak_ratio, dtype=float)
    g = np.exp(-np.maximum(y, 0.0) / scale)
    known = np.isfinite(g)
    if not known.all():
        g = np.where(known, g, float(g[known].mean()) if known.any() else 1.0)
    return g


def effective_blur_factor(mean_step_sq1_m2, n_steps1, mean_lag2_sq_m2, n_lag2,
                          mean_lag3_sq_m2, n_lag3, localization_var_m2, *,
                          frame_interval_s: float, blur: float,
                          log_peak_ratio=None) -> SelectionCalibration:
    """Effective blur factor of the detected frames (see the module notes).

    Parameters
    ----------
    mean_step_sq1_m2, n_steps1 : ndarray, shape (n,)
        Per track: mean squared consecutive-frame step per axis (m^2) and steps.
    mean_lag2_sq_m2, n_lag2, mean_lag3_sq_m2, n_lag3 : ndarray, shape (n,)
        Per track: mean squared 2- and 3-frame displacement per axis (m^2) and
        their numbers of pairs.
    localization_var_m2 : float or ndarray, shape (n,)
        Localization variance per axis used by the likelihood, m^2.
    frame_interval_s : float
        s.
    blur : float
        Nominal blur factor R.
    log_peak_ratio : ndarray, shape (n,), optional
        Per track mean ln(peak / threshold). With it the extra blur factor
        is ``delta * g(y)`` (:func:`selection_weight`): the selection acts
        on spots near the threshold, not on bright ones. Without it one
        R_eff for all tracks.

    Returns
    -------
    SelectionCalibration
        ``blur_factor`` is the nominal R when there are too few pairs or the
        displacements do not grow linearly with the lag beyond one frame
        (``linear`` False: wrong links between overlapping particles, flow
        left in the tracks), because the reference would then be wrong too.
    """
    m1 = np.asarray(mean_step_sq1_m2, dtype=float)
    m2 = np.asarray(mean_lag2_sq_m2, dtype=float)
    m3 = np.asarray(mean_lag3_sq_m2, dtype=float)
    n1 = np.asarray(n_steps1, dtype=float)
    n2 = np.asarray(n_lag2, dtype=float)
    n3 = np.asarray(n_lag3, dtype=float)
    s2 = np.broadcast_to(np.asarray(localization_var_m2, dtype=float), m1.shape)
    g = (np.ones(m1.shape) if log_peak_ratio is None
         else selection_weight(log_peak_ratio, SELECTION_SCALE))
    ok = ((n1 > 0) & (n2 > 0) & (n3 > 0) & np.isfinite(m1) & np.isfinite(m2)
          & np.isfinite(m3) & np.isfinite(s2))
    n_pairs = int(n3[ok].sum())
    nominal = SelectionCalibration(blur_factor=float(blur), nominal_blur_factor=float(blur),
                                   reference_diffusion_m2_per_s=None, n_pairs=n_pairs)
    if n_pairs < MIN_LAG3_PAIRS:
        return nominal
    # One weight for all lags of a track keeps the pooled relations linear in
    # each track's D (polydisperse samples).
    w = np.minimum(np.minimum(n1, n2), n3)[ok]
    mean1, mean2, mean3 = (float(np.sum(w * m[ok]) / np.sum(w)) for m in (m1, m2, m3))
    d_ref = (mean3 - mean1) / (4.0 * frame_interval_s)
    step12, step23 = mean2 - mean1, mean3 - mean2
    linear = bool(step12 > 0 and step23 > 0
                  and LINEARITY_RANGE[0] <= step23 / step12 <= LINEARITY_RANGE[1])
    if not (np.isfinite(d_ref) and d_ref > 0 and linear):
        return SelectionCalibration(blur_factor=float(blur), nominal_blur_factor=float(blur),
                                    reference_diffusion_m2_per_s=None, n_pairs=n_pairs,
                                    linear=linear)
    # Per track D from the lag difference (unbiased, noisy); the pooled
    # balance of  m1 = 2 D dt (1 - 2 R - 2 delta g) + 2 sigma^2  gives delta.
    d_lag = (m3[ok] - m1[ok]) / (4.0 * frame_interval_s)
    dt = frame_interval_s
    excess = np.sum(w * (2.0 * d_lag * dt * (1.0 - 2.0 * blur) + 2.0 * s2[ok] - m1[ok]))
    scale = 4.0 * dt * np.sum(w * d_lag * g[ok])
    delta = float(excess / scale) if scale > 0 else 0.0
    lo, hi = -_BELOW_NOMINAL, _ABOVE_NOMINAL
    clipped = not lo <= delta <= hi
    delta = min(max(delta, lo), hi)
    per_track = blur + delta * g
    return SelectionCalibration(blur_factor=float(np.sum(w * per_track[ok]) / np.sum(w)),
                                nominal_blur_factor=float(blur),
                                reference_diffusion_m2_per_s=float(d_ref), n_pairs=n_pairs,
                                clipped=clipped, delta=delta,
                                per_track=per_track)
