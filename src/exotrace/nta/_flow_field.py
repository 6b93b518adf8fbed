"""A flow that varies across the field of view, measured from the tracks.

The common drift (:mod:`exotrace.nta._drift`) is one velocity per frame. In a
real cell the flow is not uniform: near the walls of a channel it is slower
(shear, a Poiseuille-like profile), and an inlet that is not centred skews
it. What is left after the common drift is removed then differs from track to
track, and a residual velocity e (px/frame) adds ``e^2 / 2`` per axis to the
mean squared step, ``2 e^2`` to the two-frame one: the lag noise model reads
it as diffusion (``1.5 e^2`` per axis on ``2 D dt``). On videos with a shear
of +-1.7 px/frame across a 288 px field that put 100 nm EVs 7 % small.

The flow of a syringe pump through a cell is a Stokes flow: its shape is
fixed by the cell and its amplitude follows the pump, so it is modelled as
``v(r, t) = s(t) u(r)``: ``s(t)`` is the common drift's strength at frame t
relative to its mean (the projection of each frame's drift on the mean
drift; 1 when there is no clear flow) and ``u(r) - <u>`` a polynomial of
degree 2 in x and y per axis (6 coefficients each). Each track (its first
excursion through the interior of the field, as for the drift) gives its
residual displacement ``e_i = sum_f s(f) u(r_f) ~ S_i u(rbar_i)`` with
``S_i = sum_f s(f)`` over its steps; ``e_i`` is Brownian about that with a
variance proportional to its span ``T_i``, so the coefficients come from
weighted least squares (weights ``1 / T_i``), refitted once without the
3.5-sigma outliers (wrong links). The field is removed only when its
non-constant part is significant (Wald test, false-alarm rate
:data:`FIELD_ALPHA`), so uniform flows are left as they were; positions are
then corrected by the field accumulated along each track.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ._numeric import chi2_sf_even
from ._types import Tracks

__all__ = ["FIELD_ALPHA", "FlowField", "fit_flow_field"]

# False-alarm rate of the test for a non-uniform flow.
FIELD_ALPHA = 1e-3
# Fewer one-frame steps do not pin 12 coefficients down.
MIN_FIELD_STEPS = 300
# Mean drift below this (px/frame) leaves no pump profile to follow.
_MIN_PUMP_PX = 0.5
_OUTLIER_SIGMAS = 3.5
# Band along the field's edges, in robust step sigmas beyond the flow per frame.
_EDGE_BAND_SIGMAS = 4.0


def _basis(u: np.ndarray, w: np.ndarray) -> np.ndarray:
    return np.column_stack([np.ones_like(u), u, w, u * u, u * w, w * w])


@dataclass(frozen=True)
class FlowField:
    """Residual flow ``s(t) (c . phi(r))`` per axis, px/frame.

    Attributes
    ----------
    coef : ndarray, shape (2, 6)
        Coefficients of ``1, u, w, u^2, u w, w^2`` for the x and y velocity,
        ``u, w`` the position scaled to [-1, 1] over the tracked extent.
    centre_px, half_extent_px : (float, float)
        Scaling of x and y.
    pump : ndarray, shape (n_frames,)
        ``s(f)``, the flow's strength at frame f relative to its mean.
    p_value : float
        Of the non-uniform part against none.
    """

    coef: np.ndarray
    centre_px: tuple[float, float]
    half_extent_px: tuple[float, float]
    pump: np.ndarray
    p_value: float

    def velocity(self, x_px, y_px) -> tuple[np.ndarray, np.ndarray]:
        """Field at unit pump strength, px/frame."""
        phi = self._phi(np.asarray(x_px, float), np.asarray(y_px, float))
        return phi @ self.coef[0], phi @ self.coef[1]

    def _phi(self, x, y) -> np.ndarray:
        u = (x - self.centre_px[0]) / self.half_extent_px[0]
        w = (y - self.centre_px[1]) / self.half_extent_px[1]
        return _basis(u, w)

    def accumulated(self, tracks: Tracks) -> tuple[np.ndarray, np.ndarray]:
        """Displacement the field gave each point since its track's start, px.

        Each step from frame f0 to f1 moves by the field at its starting
        (laboratory) position times the pump strengths of frames f0+1..f1.
        """
        n = len(tracks)
        ox, oy = np.zeros(n), np.zeros(n)
        if n < 2:
            return ox, oy
        order = np.lexsort((tracks.frame, tracks.track_id))
        tid, fr = tracks.track_id[order], tracks.frame[order]
        vx, vy = self.velocity(tracks.x_px[order], tracks.y_px[order])
        cum_pump = np.concatenate(([0.0], np.cumsum(self.pump)))
        same = tid[1:] == tid[:-1]
        strength = np.where(same, cum_pump[fr[1:] + 1] - cum_pump[fr[:-1] + 1], 0.0)
        inc_x = np.concatenate(([0.0], vx[:-1] * strength))
        inc_y = np.concatenate(([0.0], vy[:-1] * strength))
        start = np.concatenate(([True], ~same))
        for inc, out in ((inc_x, ox), (inc_y, oy)):
            c = np.cumsum(inc)
            base = np.maximum.accumulate(np.where(start, np.arange(n), 0))
            out[order] = c - c[base]
        return ox, oy

    def to_dict(self) -> dict:
        return {"coef_px_per_frame": self.coef.tolist(), "centre_px": list(self.centre_px),
                "half_extent_px": list(self.half_extent_px), "p_value": self.p_value}


def pump_profile(drift_px_per_frame: np.ndarray) -> np.ndarray:
    """``s(f)``: each frame's drift projected on the mean drift, over its length."""
    d = np.asarray(drift_px_per_frame, dtype=float)
    s = np.ones(len(d))
    if len(d) < 2:
        return s
    mean = d[1:].mean(axis=0)
    speed2 = float(mean @ mean)
    if speed2 >= _MIN_PUMP_PX ** 2:
        s[1:] = (d[1:] @ mean) / speed2
    return s


def fit_flow_field(tracks: Tracks, drift_px_per_frame: np.ndarray, x_corr: np.ndarray,
                   y_corr: np.ndarray, *, alpha: float = FIELD_ALPHA) -> FlowField | None:
    """Fit the residual field (module notes); ``None`` if absent or not measurable.

    Parameters
    ----------
    tracks : Tracks
        Laboratory positions (before drift correction), rows grouped by track
        in frame order.
    drift_px_per_frame : ndarray, shape (n_frames, 2)
        The common drift removed.
    x_corr, y_corr : ndarray
        Positions after the common drift was removed.
    alpha : float
        False-alarm rate of the test for a non-uniform field.
    """
    pump = pump_profile(drift_px_per_frame)
    one = (tracks.track_id[1:] == tracks.track_id[:-1]) & (np.diff(tracks.frame) == 1)
    if one.sum() < MIN_FIELD_STEPS:
        return None
    x0, y0 = tracks.x_px[:-1][one], tracks.y_px[:-1][one]
    ex, ey = np.diff(x_corr)[one], np.diff(y_corr)[one]
    strength = pump[tracks.frame[1:][one]]
    # Steps that start within a step of the field's edge are seen only if they
    # did not leave it (those moving outwards are lost): keep the interior.
    lo = np.array([tracks.x_px.min(), tracks.y_px.min()])
    hi = np.array([tracks.x_px.max(), tracks.y_px.max()])
    inner = np.ones(len(x0), dtype=bool)
    for axis, (pos, lab_step) in enumerate(((x0, np.diff(tracks.x_px)[one]),
                                            (y0, np.diff(tracks.y_px)[one]))):
        mid = float(np.median(lab_step))
        band = abs(mid) + _EDGE_BAND_SIGMAS * 1.4826 * float(np.median(np.abs(lab_step - mid)))
        inner &= (pos >= lo[axis] + band) & (pos <= hi[axis] - band)
    if inner.sum() < MIN_FIELD_STEPS:
        return None
    x0, y0, ex, ey, strength = x0[inner], y0[inner], ex[inner], ey[inner], strength[inner]
    centre = 0.5 * (lo + hi)
    half = np.maximum(0.5 * (hi - lo), 1.0)
    design = _basis((x0 - centre[0]) / half[0], (y0 - centre[1]) / half[1]) * strength[:, None]
    keep = np.ones(len(ex), dtype=bool)
    coef = np.zeros((2, 6))
    wald = 0.0
    for _ in range(2):
        if keep.sum() < MIN_FIELD_STEPS:
            return None
        A = design[keep]
        try:
            inv = np.linalg.inv(A.T @ A)
        except np.linalg.LinAlgError:
            return None
        resid_ok = np.ones(len(ex), dtype=bool)
        wald = 0.0
        for axis, e in enumerate((ex, ey)):
            c = inv @ (A.T @ e[keep])
            r = e - design @ c
            sigma = 1.4826 * float(np.median(np.abs(r[keep] - np.median(r[keep]))))
            if not sigma > 0:
                return None
            resid_ok &= np.abs(r) <= _OUTLIER_SIGMAS * sigma
            coef[axis] = c
            # Wald statistic of the five non-constant coefficients
            wald += float(c[1:] @ np.linalg.solve(sigma ** 2 * inv[1:, 1:], c[1:]))
        keep = resid_ok
    p_value = chi2_sf_even(10, wald)
    if p_value >= alpha:
        return None
    # The constant holds whatever the common drift left uniformly (and the
    # one-frame steps' own selection, see _drift): only the variation is
    # removed, centred on the steps so the common drift keeps its mean.
    phi_mean = (design[keep] / strength[keep, None]).mean(axis=0)
    coef[:, 0] = -(coef[:, 1:] @ phi_mean[1:])
    return FlowField(coef=coef.copy(), centre_px=(float(centre[0]), float(centre[1])),
                     half_extent_px=(float(half[0]), float(half[1])), pump=pump,
                     p_value=p_value)
