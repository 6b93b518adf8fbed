"""Common flow (drift) estimated from linked tracks, and its removal.

NTA cells often run under a syringe pump: every particle moves with the flow,
several px/frame, on top of its Brownian motion. Two estimators:

* ``"track"`` (default): each track gives its end-to-end displacement and
  the frames elapsed; the flow at frame f is the total displacement over the
  total time of the tracks spanning f (after leaving out tracks whose
  Brownian-normalized residual is a 3-sigma outlier, i.e. wrong links). Dim particles
  are lost in the frames where they moved most during the exposure (their
  streak is longer), mostly along the flow, so one-frame steps that survive
  linking under-state the flow by ~5-15 %; an end-to-end displacement
  includes the motion of every frame in between and is affected only at the
  two ends. A track averages the flow over its span, so the time course is
  taken from the steps covering each frame (gaps included, same ratio of
  sums) and shifted to the tracks' mean level (see :func:`_follow_in_time`).
* ``"step"``: the trimmed median of the one-frame steps of each frame.

Frames without enough tracks fall back to the step estimate, then to
interpolation; the result is smoothed over a few frames (the flow changes
slowly). Positions are corrected by subtracting the accumulated drift and,
when the tracks show one, a flow that varies across the field
(:mod:`exotrace.nta._flow_field`). A
residual drift error e (px/frame) would raise CVE diffusion by 1.5 e^2 / dt,
which is why the flow is worth measuring well.
"""

from __future__ import annotations

import numpy as np

from ..errors import InvalidInput
from . import _kernels
from ._flow_field import FlowField, fit_flow_field
from ._numeric import moving_mean_nearest
from ._types import Tracks

__all__ = ["FlowField", "estimate_drift", "estimate_flow_field", "subtract_drift"]

# Fewer steps than this in a frame make its median too noisy to use.
_MIN_STEPS_PER_FRAME = 3
# Every track with at least one step counts (see _track_velocity_medians).
_MIN_TRACK_SPAN = 1
_METHODS = ("track", "step")


def _trimmed_median(steps: np.ndarray) -> float:
    """Median of the steps within 2 robust sigmas of the median, twice.

    Wrong links (a particle that left, replaced by a neighbour) give steps
    unrelated to the flow that pull a plain median towards zero; Brownian steps
    are symmetric about the flow, so trimming them symmetrically is unbiased.
    """
    m = float(np.median(steps))
    for _ in range(2):
        sigma = 1.4826 * float(np.median(np.abs(steps - m)))
        if sigma <= 0:
            break
        kept = steps[np.abs(steps - m) <= 2.0 * sigma]
        if len(kept) < _MIN_STEPS_PER_FRAME:
            break
        m = float(np.median(kept))
    return m


def estimate_drift(tracks: Tracks, *, smoothing_frames: int = 11,
                   method: str = "track") -> np.ndarray:
    """Per-frame drift steps from linked tracks.

    Parameters
    ----------
    tracks : Tracks
        Linked, not yet corrected tracks.
    smoothing_frames : int
        Width of the moving average applied to the per-frame medians, frames.
    method : {"track", "step"}
        End-to-end track velocities (default) or one-frame steps (see module notes).

    Returns
    -------
    ndarray of float64, shape (n_frames, 2)
        ``drift[f]`` is the common (x, y) displacement from frame ``f - 1`` to
        ``f`` in px; ``drift[0] = 0``. Zero everywhere when no frame has enough steps.
    """
    if int(smoothing_frames) != smoothing_frames or smoothing_frames < 1:
        raise InvalidInput(f"smoothing_frames must be a positive integer, got {smoothing_frames}")
    if method not in _METHODS:
        raise InvalidInput(f"drift method must be one of {', '.join(_METHODS)}, got {method!r}")
    n = int(tracks.n_frames)
    out = np.zeros((max(n, 1), 2))
    if len(tracks) < 2 or n < 2:
        return out
    same = tracks.track_id[1:] == tracks.track_id[:-1]
    one = same & (np.diff(tracks.frame) == 1)
    if not one.any():
        return out
    f = tracks.frame[1:][one]
    dx = np.diff(tracks.x_px)[one]
    dy = np.diff(tracks.y_px)[one]
    order = np.argsort(f, kind="stable")
    f, dx, dy = f[order], dx[order], dy[order]
    uniq, starts, counts = np.unique(f, return_index=True, return_counts=True)
    med = np.full((n, 2), np.nan)
    # "track": end-to-end velocities win wherever they exist, so the one-frame
    # step medians are only needed for the other frames.
    if method == "track":
        by_track = _track_velocity_medians(tracks, n)
        use = np.isfinite(by_track[:, 0])
    else:
        use = np.zeros(n, dtype=bool)
    for u, a, c in zip(uniq, starts, counts, strict=True):
        if c >= _MIN_STEPS_PER_FRAME and 0 < u < n and not use[u]:
            med[u, 0] = _trimmed_median(dx[a:a + c])
            med[u, 1] = _trimmed_median(dy[a:a + c])
    if method == "track":
        med[use] = _follow_in_time(by_track, *_gap_step_flow(tracks, n),
                                   int(smoothing_frames))[use]
    good = np.isfinite(med[:, 0])
    good[0] = False
    if not good.any():
        return out
    idx = np.arange(n)
    for axis in (0, 1):
        filled = np.interp(idx, idx[good], med[good, axis])
        smooth = moving_mean_nearest(filled[1:], int(smoothing_frames))
        out[1:, axis] = smooth
    return out


def _track_velocity_medians(tracks: Tracks, n: int) -> np.ndarray:
    """Per frame: trimmed median of end-to-end velocities of the tracks spanning it."""
    med = np.full((n, 2), np.nan)
    b = tracks.boundaries()
    first, last = _interior_excursions(tracks, b)
    f0 = tracks.frame[first]
    f1 = tracks.frame[last]
    span = f1 - f0
    ok = span >= _MIN_TRACK_SPAN
    if not ok.any():
        return med
    f0, f1, span = f0[ok], f1[ok], span[ok]
    ex = tracks.x_px[last[ok]] - tracks.x_px[first[ok]]
    ey = tracks.y_px[last[ok]] - tracks.y_px[first[ok]]
    span = span.astype(np.float64)
    # Per frame u, the tracks spanning it (f0 < u <= f1) give the flow as
    # their total displacement over their total time: by Wald's identity
    # unbiased although tracks start and end at random (a particle leaving
    # the view, dimming, being missed), as long as they end at stopping times
    # (see _interior_excursions). The tracks spanning u are drawn in
    # proportion to their span, which favours particles that lingered against
    # the flow: -0.1 px/frame at 3 px/frame on a 192 x 160 px field, -0.01 on
    # 1024 x 768. Weighting by 1 / span removes that on clean tracks but lets
    # short tracks of noise spots (no flow) pull the flow towards zero in
    # crowded fields (-0.25 px in y at 4e9/mL on 192 x 160), so the ratio of
    # sums is kept. Wrong links are left out by their Brownian-normalized
    # residual (_inliers, on both axes).
    if _kernels.HAVE_NUMBA:
        return _kernels.flow_by_frame_nb(f0.astype(np.int64), f1.astype(np.int64), ex, ey,
                                         span, n, _MIN_STEPS_PER_FRAME)
    return _flow_by_frame(f0, f1, ex, ey, span, n)  # pragma: no cover


def _gap_step_flow(tracks: Tracks, n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per frame: flow from the steps covering it, gaps included, ratio of sums.

    The same estimate as :func:`_track_velocity_medians` with every step of a
    track's interior excursion (across a linking gap too: the frames a dim
    particle was missed are those it moved most in, so leaving those steps
    out under-states the flow) in place of whole tracks, so it follows the
    flow frame by frame instead of averaging it over each track's span.

    Returns
    -------
    flow, half_a, half_b : ndarray, shape (n, 2)
        The flow (NaN where too few steps) and the same from the tracks of
        even and of odd rank alone (their difference is pure sampling noise).
    """
    nan = np.full((n, 2), np.nan)
    b = tracks.boundaries()
    first, last = _interior_excursions(tracks, b)
    tid = np.repeat(np.arange(len(first)), np.diff(b))
    rows = np.arange(len(tracks))
    inside = (rows >= first[tid]) & (rows <= last[tid])
    ok = (tracks.track_id[1:] == tracks.track_id[:-1]) & inside[1:] & inside[:-1]
    if ok.sum() < _MIN_STEPS_PER_FRAME:
        return nan, nan.copy(), nan.copy()
    f0 = tracks.frame[:-1][ok].astype(np.int64)
    f1 = tracks.frame[1:][ok].astype(np.int64)
    ex = np.diff(tracks.x_px)[ok]
    ey = np.diff(tracks.y_px)[ok]
    span = (f1 - f0).astype(np.float64)
    rank = tid[1:][ok] % 2

    def flow(sel):
        if _kernels.HAVE_NUMBA:
            return _kernels.flow_by_frame_nb(f0[sel], f1[sel], ex[sel], ey[sel], span[sel], n,
                                             _MIN_STEPS_PER_FRAME)
        return _flow_by_frame(f0[sel], f1[sel], ex[sel], ey[sel], span[sel], n)  # pragma: no cover

    return flow(np.ones(len(f0), dtype=bool)), flow(rank == 0), flow(rank == 1)


def _follow_in_time(by_track: np.ndarray, by_step: np.ndarray, half_a: np.ndarray,
                    half_b: np.ndarray, smoothing_frames: int) -> np.ndarray:
    """The step flow's variation in time on the track flow's level, as far as it is real.

    A track spanning a frame gives the mean flow over its whole span, so the
    track estimate is the flow smoothed over the tracks' lengths (tens to
    hundreds of frames): a pump whose rate swings by 25 % over 90 frames
    left 0.7 px/frame of it in 200 nm tracks, which the size read as
    diffusion (-4 %). The steps follow the flow frame by frame; their mean
    over the capture is shifted to the tracks' (short tracks of noise spots
    in crowded fields, which carry no flow, weigh more among steps). But the
    step estimate is noisy and made of the same steps it is then removed
    from (steady flow: sizes +0.4 %; on small fields its noise accumulates
    into px of position), so its difference from the track flow is kept in
    proportion to how much of its variance (after the final smoothing)
    exceeds its sampling noise, ``1 - noise / observed`` per axis: 0 for a
    steady flow, ~1 for a pump that swings well beyond the noise. The noise
    is measured, not modelled: the flows of two halves of the tracks (even
    and odd rank) differ by noise alone, with 4 times the variance of the
    noise of the whole.
    """
    both = (np.isfinite(by_track[:, 0]) & np.isfinite(by_step[:, 0])
            & np.isfinite(half_a[:, 0]) & np.isfinite(half_b[:, 0]))
    both[0] = False
    if both.sum() < max(_MIN_STEPS_PER_FRAME, 2 * smoothing_frames):
        return by_track
    out = by_track.copy()

    def smoothed_var(series):
        series = series - series.mean()
        return float(np.mean(moving_mean_nearest(series, int(smoothing_frames)) ** 2))

    # The measured noise is itself uncertain, by ~sqrt(2 / m) with m the
    # independent stretches of the smoothing window; two of those margins
    # keep a short, noisy capture's flow as the tracks give it.
    margin = 1.0 + 2.0 * np.sqrt(2.0 * smoothing_frames / both.sum())
    for axis in (0, 1):
        diff = by_step[both, axis] - by_track[both, axis]
        observed = smoothed_var(diff)
        noise = 0.25 * smoothed_var(half_a[both, axis] - half_b[both, axis]) * margin
        keep = 0.0 if observed <= 0 else float(np.clip(1.0 - noise / observed, 0.0, 1.0))
        out[both, axis] = by_track[both, axis] + keep * (diff - diff.mean())
    return out


def _flow_by_frame(f0, f1, ex, ey, span, n) -> np.ndarray:
    """numpy reference of :func:`._kernels.flow_by_frame_nb`."""
    med = np.full((n, 2), np.nan)
    for u in range(1, n):
        cover = np.flatnonzero((f0 < u) & (f1 >= u))
        if len(cover) < _MIN_STEPS_PER_FRAME:
            continue
        e_x, e_y, t = ex[cover], ey[cover], span[cover]
        keep = _inliers(e_x, t) & _inliers(e_y, t)
        if keep.sum() < _MIN_STEPS_PER_FRAME:
            continue
        total = t[keep].sum()
        med[u, 0] = e_x[keep].sum() / total
        med[u, 1] = e_y[keep].sum() / total
    return med


# Band along the field's edges, in robust step sigmas beyond the flow per frame.
_EDGE_BAND_SIGMAS = 4.0


def _interior_excursions(tracks: Tracks, bounds: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """First and last row of each track's first excursion through the interior.

    A particle about to leave the field downstream is seen only in the frames
    before it crosses the edge, so the positions of its last frames are the
    ones that did not step out: a track ending at the exit edge under-states
    the flow (by ~10 % on a 192 x 160 px field at 3 px/frame). Cutting every
    track at the first position inside a band along the edges (wider than a
    step, so that position is still seen) stops it at a stopping time, for
    which the displacement is unbiased (Wald). Tracks start at their first
    position away from the band. Tracks never away from the band are left
    out (first = last).
    """
    first, last = bounds[:-1].copy(), bounds[1:] - 1
    if len(tracks) < 2:
        return first, last
    same = tracks.track_id[1:] == tracks.track_id[:-1]
    one = same & (np.diff(tracks.frame) == 1)
    if one.sum() < 10:
        return first, last
    x, y = tracks.x_px, tracks.y_px
    band = []
    for steps in (np.diff(x)[one], np.diff(y)[one]):
        mid = float(np.median(steps))
        sigma = 1.4826 * float(np.median(np.abs(steps - mid)))
        band.append(abs(mid) + _EDGE_BAND_SIGMAS * sigma)
    # the detected extent stands for the field (detection keeps a margin)
    x_lo, x_hi = float(x.min()) + band[0], float(x.max()) - band[0]
    y_lo, y_hi = float(y.min()) + band[1], float(y.max()) - band[1]
    if x_lo >= x_hi or y_lo >= y_hi:
        return first, last
    inside = (x >= x_lo) & (x <= x_hi) & (y >= y_lo) & (y <= y_hi)
    tid = np.repeat(np.arange(len(first)), np.diff(bounds))
    rows = np.arange(len(x))
    big = len(x) + 1
    # first interior row per track
    f_in = np.full(len(first), big)
    np.minimum.at(f_in, tid[inside], rows[inside])
    has = f_in < big
    # first band row after it
    after = ~inside & (rows > f_in[tid])
    l_out = np.full(len(first), big)
    np.minimum.at(l_out, tid[after], rows[after])
    # tracks never away from the band give no span (their ends are biased)
    new_first = np.where(has, f_in, first)
    new_last = np.where(has, np.where(l_out < big, l_out, last), first)
    return new_first, new_last


def _inliers(displacement: np.ndarray, span: np.ndarray) -> np.ndarray:
    """Tracks whose displacement fits the common flow within 3 robust sigmas.

    For Brownian motion with flow v the residual (e - v T) / sqrt(T) has the
    same spread for every track length T.
    """
    v = displacement.sum() / span.sum()
    z = (displacement - v * span) / np.sqrt(span)
    m = np.median(z)
    sigma = 1.4826 * np.median(np.abs(z - m))
    if sigma <= 0:
        return np.ones(len(z), dtype=bool)
    return np.abs(z - m) <= 3.0 * sigma


def estimate_flow_field(tracks: Tracks, drift_px_per_frame: np.ndarray,
                        x_corr: np.ndarray | None = None,
                        y_corr: np.ndarray | None = None) -> FlowField | None:
    """The flow's variation across the field, left after the common drift.

    Parameters
    ----------
    tracks : Tracks
        Linked tracks, laboratory positions (not yet corrected), px.
    drift_px_per_frame : ndarray, shape (n_frames, 2)
        Common drift from :func:`estimate_drift`.
    x_corr, y_corr : ndarray, optional
        The positions with the common drift removed (computed if not given).

    Returns
    -------
    FlowField or None
        ``None`` when the tracks show no significant variation (see
        :mod:`exotrace.nta._flow_field`) or are too few to tell.
    """
    d = np.asarray(drift_px_per_frame, dtype=np.float64)
    if len(tracks) < 2:
        return None
    if x_corr is None or y_corr is None:
        cum = np.cumsum(d, axis=0)
        x_corr = tracks.x_px - cum[tracks.frame, 0]
        y_corr = tracks.y_px - cum[tracks.frame, 1]
    return fit_flow_field(tracks, d, x_corr, y_corr)


def subtract_drift(tracks: Tracks, drift_px_per_frame: np.ndarray, *,
                   flow_field: bool = True) -> Tracks:
    """Remove accumulated drift from track positions.

    Parameters
    ----------
    tracks : Tracks
    drift_px_per_frame : ndarray, shape (n_frames, 2)
        Per-frame drift steps from :func:`estimate_drift`.
    flow_field : bool
        Also remove a flow that varies across the field (see
        :func:`estimate_flow_field`) when the tracks show one.

    Returns
    -------
    Tracks
        Copy with corrected ``x_px``, ``y_px``, ``drift_corrected=True`` and
        ``drift_px_per_frame`` set to the mean (x, y) step, px/frame;
        ``metadata["flow_field"]`` holds the field removed, if any.
    """
    d = np.asarray(drift_px_per_frame, dtype=np.float64)
    if d.ndim != 2 or d.shape[1] != 2:
        raise InvalidInput("drift must have shape (n_frames, 2)")
    cum = np.cumsum(d, axis=0)
    if len(tracks) and tracks.frame.max() >= len(cum):
        raise InvalidInput(f"drift covers {len(cum)} frames but tracks reach frame "
                           f"{int(tracks.frame.max())}")
    x = tracks.x_px - cum[tracks.frame, 0]
    y = tracks.y_px - cum[tracks.frame, 1]
    meta = dict(tracks.metadata)
    if flow_field:
        field = estimate_flow_field(tracks, d, x, y)
        if field is not None:
            ox, oy = field.accumulated(tracks)
            x, y = x - ox, y - oy
            meta["flow_field"] = field.to_dict()
    mean = d[1:].mean(axis=0) if len(d) > 1 else np.zeros(2)
    return Tracks(track_id=tracks.track_id, frame=tracks.frame, x_px=x, y_px=y,
                  intensity=tracks.intensity, n_frames=tracks.n_frames,
                  frame_shape=tracks.frame_shape,
                  drift_px_per_frame=(float(mean[0]), float(mean[1])), drift_corrected=True,
                  threshold=tracks.threshold, source=tracks.source,
                  metadata=meta, peak=tracks.peak,
                  saturated=tracks.saturated)
