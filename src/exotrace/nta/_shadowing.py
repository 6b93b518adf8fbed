"""Spots hidden by brighter neighbours: their rate, measured from the spots themselves.

A dim particle next to a much brighter one is not found: the bright spot's
light (often a motion-blurred streak) swamps the dim one's peak, or the
centroid of the dim one slides onto the bright one. In a dilute field this
almost never happens; at ~60-80 spots per 640 x 480 frame it hid ~20 % of
the 70 nm EVs of a 70/140 nm mixture and hardly any 140 nm one, and the 70 nm
number fraction came out 0.05-0.1 low.

The rate is measured without a model of the detector. Particles sit at
random, independently of each other, so around a detected spot the density
of other detected spots at distance r would be flat if nothing were hidden.
Around the spots that *were* found, brighter neighbours are missing at short
distances exactly where they would have hidden the spot: the pair
correlation ``g(r)`` of (spot, brighter neighbour) pairs falls below 1 there,
and ``A = integral (1 - g(r)) 2 pi r dr`` is the area around a brighter spot
in which a dimmer one is lost. Pairs are classed by how much brighter the
neighbour is (a neighbour of equal brightness hides little, one 64x brighter
a lot). A spot of log-brightness l then survives with probability::

    S(l) = exp(- sum_k A_k rho_k(l))

where rho_k(l) is the density of detected spots whose log-brightness exceeds
l by class k (Poisson placement). Weighting each spot by 1 / S
(Horvitz-Thompson) counts the hidden ones back.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ._numeric import close_pairs

__all__ = ["ShadowModel", "spot_survival"]

# Radius (px) within which spots are hidden, and the outer radius of the
# plateau that normalizes g(r). A 64x brighter blurred streak hid dim spots
# out to ~15 px on simulated videos.
SHADOW_RADIUS_PX = 16.0
PLATEAU_RADIUS_PX = 32.0
_RING_PX = 2.0
# Classes of ln(neighbour peak / spot peak): [0, 1), [1, 2), [2, 3), [3, inf).
_RATIO_WIDTH = 1.0
_N_RATIO_CLASSES = 4
# Fewest reference spots (spots far enough from the edges) for a measurement.
_MIN_REFERENCE_SPOTS = 200
# Survival is not taken below this (a spot is never counted more than 4x).
_MIN_SURVIVAL = 0.25


@dataclass(frozen=True)
class ShadowModel:
    """Result of :func:`spot_survival`.

    Attributes
    ----------
    survival : ndarray, shape (n,)
        Per spot: probability that a spot of its brightness is not hidden by
        a brighter neighbour (1 for spots without a usable peak).
    hidden_area_px2 : ndarray, shape (n_classes,)
        Area around a brighter spot in which a dimmer one is lost, per class
        of ln(brightness ratio) (widths of 1), px^2.
    reference_spots : int
        Spots far enough from the field's edges to measure around.
    """

    survival: np.ndarray
    hidden_area_px2: np.ndarray
    reference_spots: int


def _same_frame_pairs(x: np.ndarray, y: np.ndarray, frame: np.ndarray,
                      radius_px: float) -> np.ndarray:
    """Index pairs ``(i, j)``, i < j, of spots in the same frame closer than ``radius_px``.

    Shape (m, 2), in no particular order (:func:`._numeric.close_pairs` per frame).
    """
    order = np.argsort(frame, kind="stable")
    cuts = np.flatnonzero(np.diff(frame[order])) + 1
    found = [idx[close_pairs(x[idx], y[idx], radius_px)]
             for idx in np.split(order, cuts) if len(idx) > 1]
    return np.concatenate(found) if found else np.zeros((0, 2), dtype=np.int64)


def _field_positions(frame, x_px, y_px, cumulative_drift_px):
    """Positions in the camera frame (drift added back when it was removed)."""
    if cumulative_drift_px is None:
        return x_px, y_px
    cum = np.asarray(cumulative_drift_px, dtype=float)
    f = np.clip(frame, 0, len(cum) - 1)
    return x_px + cum[f, 0], y_px + cum[f, 1]


def spot_survival(frame, x_px, y_px, peak, *, frame_shape, n_frames: int,
                  cumulative_drift_px=None, radius_px: float = SHADOW_RADIUS_PX,
                  plateau_px: float = PLATEAU_RADIUS_PX) -> ShadowModel:
    """Probability of each spot's brightness class to escape a brighter neighbour.

    Parameters
    ----------
    frame : ndarray of int, shape (n,)
        Frame of every detected spot (all spots of the video, tracked or not).
    x_px, y_px : ndarray, shape (n,)
        Positions, px (drift-corrected or not; see ``cumulative_drift_px``).
    peak : ndarray, shape (n,)
        Band-passed peak of every spot (``nan`` or <= 0: unknown).
    frame_shape : (int, int)
        (rows, columns) of the field, px.
    n_frames : int
        Frames in the video.
    cumulative_drift_px : ndarray, shape (n_frames, 2), optional
        Drift removed from the positions up to each frame; added back to
        know where the field's edges are.
    radius_px : float
        Radius within which a brighter spot may hide a dimmer one, px.
    plateau_px : float
        Outer radius of the ring (from ``radius_px``) where g(r) is taken as
        1: the pair counts are normalized by it, px.

    Returns
    -------
    ShadowModel
        All survivals 1 when there are too few spots to measure (fewer than
        200 spots farther than ``plateau_px`` from the edges).

    Notes
    -----
    For class k, the observed number of (reference spot, brighter neighbour)
    pairs per unit area within ``radius_px`` is compared with that in the
    ring from ``radius_px`` to ``plateau_px``, where nothing is hidden
    (dividing by the plateau rather than by the field's mean density also
    takes out the strip along the edges where no spot can be found, and part
    of the noise: the same two particles make a pair in many frames). ``A_k``
    is the deficit times the disc's area, clipped at 0. ``rho_k(i)`` counts
    the detected spots per frame and px^2 whose ln(peak) lies ``[k, k + 1)``
    above spot i's (the last class open), on the area the spots cover.
    """
    frame = np.asarray(frame, dtype=np.int64)
    peak = np.asarray(peak, dtype=float)
    n = len(frame)
    survival = np.ones(n)
    empty = ShadowModel(survival=survival, hidden_area_px2=np.zeros(_N_RATIO_CLASSES),
                        reference_spots=0)
    known = np.isfinite(peak) & (peak > 0)
    rows, cols = int(frame_shape[0]), int(frame_shape[1])
    if n == 0 or not np.any(known) or n_frames <= 0 or rows <= 2 * plateau_px \
            or cols <= 2 * plateau_px:
        return empty
    lp = np.where(known, np.log(np.where(known, peak, 1.0)), np.nan)
    fx, fy = _field_positions(frame, np.asarray(x_px, float), np.asarray(y_px, float),
                              cumulative_drift_px)
    reference = (known & (fx >= plateau_px) & (fx <= cols - 1 - plateau_px)
                 & (fy >= plateau_px) & (fy <= rows - 1 - plateau_px))
    n_ref = int(reference.sum())
    if n_ref < _MIN_REFERENCE_SPOTS:
        return empty

    # Density of spots by ln(peak): spots per frame per px^2 above a level,
    # over the area the spots cover (detection leaves a margin at the edges).
    sorted_lp = np.sort(lp[known])
    area = float(max(np.ptp(fx[known]), 1.0) * max(np.ptp(fy[known]), 1.0))

    # the known spots' own levels come sorted too (sorted queries search fast)
    known_idx = np.flatnonzero(known)
    by_level = known_idx[np.argsort(lp[known_idx], kind="stable")]

    def density_above(offset):
        out = np.zeros(n)
        count = len(sorted_lp) - np.searchsorted(sorted_lp, sorted_lp + offset, side="left")
        out[by_level] = count / (n_frames * area)
        return out

    offsets = np.arange(_N_RATIO_CLASSES) * _RATIO_WIDTH  # class k: [offsets[k], offsets[k+1])
    rho = np.empty((n, _N_RATIO_CLASSES))
    above = [density_above(o) for o in offsets]
    for k in range(_N_RATIO_CLASSES):
        upper = above[k + 1] if k + 1 < _N_RATIO_CLASSES else 0.0
        rho[:, k] = above[k] - upper
    rho[~known] = 0.0

    # Pairs within the plateau radius in the same frame (distances do not
    # depend on the drift)
    use = np.flatnonzero(known)
    pairs = _same_frame_pairs(fx[use], fy[use], frame[use], plateau_px)
    inner = np.zeros(_N_RATIO_CLASSES)
    outer = np.zeros(_N_RATIO_CLASSES)
    if len(pairs):
        a, b = use[pairs[:, 0]], use[pairs[:, 1]]
        # orient each pair as (dimmer reference spot, brighter neighbour)
        dim = np.where(lp[a] <= lp[b], a, b)
        bright = np.where(lp[a] <= lp[b], b, a)
        keep = reference[dim]
        dim, bright = dim[keep], bright[keep]
        r = np.hypot(fx[bright] - fx[dim], fy[bright] - fy[dim])
        cls = np.minimum((np.maximum(lp[bright] - lp[dim], 0.0) / _RATIO_WIDTH).astype(np.int64),
                         _N_RATIO_CLASSES - 1)
        inner = np.bincount(cls[r < radius_px], minlength=_N_RATIO_CLASSES).astype(float)
        outer = np.bincount(cls[r >= radius_px], minlength=_N_RATIO_CLASSES).astype(float)
    disc = np.pi * radius_px**2
    annulus = np.pi * (plateau_px**2 - radius_px**2)
    # g within the disc relative to the plateau; a class without pairs in
    # the plateau tells nothing (A = 0)
    with np.errstate(invalid="ignore", divide="ignore"):
        g_inner = np.where(outer > 0, (inner / disc) / (outer / annulus), 1.0)
    area_k = np.maximum(1.0 - g_inner, 0.0) * disc
    survival = np.exp(-(rho * area_k[None, :]).sum(axis=1))
    survival = np.where(known, np.maximum(survival, _MIN_SURVIVAL), 1.0)
    return ShadowModel(survival=survival, hidden_area_px2=area_k, reference_spots=n_ref)
