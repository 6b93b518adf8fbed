"""Common flow (drift) estimated from linked tracks, and its removal.

NTA cells often run under a syringe pump: every particle moves with the flow,
several px/frame, on top of its Brownian motion. Per frame, the drift step is
the median of all one-frame displacements of linked particles (robust to the
odd wrong link); the medians are smoothed over a few frames, since the flow
changes slowly, and missing frames are interpolated. Positions are corrected by
subtracting the accumulated drift. Each particle contributes about one step in
``n_particles * window`` to the estimate, so removing it shrinks the Brownian
variance by a negligible fraction.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from ..errors import InvalidInput
from ._types import Tracks

__all__ = ["estimate_drift", "subtract_drift"]

# Fewer steps than this in a frame make its median too noisy to use.
_MIN_STEPS_PER_FRAME = 3


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


def estimate_drift(tracks: Tracks, *, smoothing_frames: int = 11) -> np.ndarray:
    """Per-frame drift steps from linked tracks.

    Parameters
    ----------
    tracks : Tracks
        Linked, not yet corrected tracks.
    smoothing_frames : int
        Width of the moving average applied to the per-frame medians, frames.

    Returns
    -------
    ndarray of float64, shape (n_frames, 2)
        ``drift[f]`` is the common (x, y) displacement from frame ``f - 1`` to
        ``f`` in px; ``drift[0] = 0``. Zero everywhere when no frame has enough steps.
    """
    if int(smoothing_frames) != smoothing_frames or smoothing_frames < 1:
        raise InvalidInput(f"smoothing_frames must be a positive integer, got {smoothing_frames}")
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
    for u, a, c in zip(uniq, starts, counts, strict=True):
        if c >= _MIN_STEPS_PER_FRAME and 0 < u < n:
            med[u, 0] = _trimmed_median(dx[a:a + c])
            med[u, 1] = _trimmed_median(dy[a:a + c])
    good = np.isfinite(med[:, 0])
    good[0] = False
    if not good.any():
        return out
    idx = np.arange(n)
    for axis in (0, 1):
        filled = np.interp(idx, idx[good], med[good, axis])
        smooth = ndimage.uniform_filter1d(filled[1:], size=int(smoothing_frames), mode="nearest")
        out[1:, axis] = smooth
    return out


def subtract_drift(tracks: Tracks, drift_px_per_frame: np.ndarray) -> Tracks:
    """Remove accumulated drift from track positions.

    Parameters
    ----------
    tracks : Tracks
    drift_px_per_frame : ndarray, shape (n_frames, 2)
        Per-frame drift steps from :func:`estimate_drift`.

    Returns
    -------
    Tracks
        Copy with corrected ``x_px``, ``y_px``, ``drift_corrected=True`` and
        ``drift_px_per_frame`` set to the mean (x, y) step, px/frame.
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
    mean = d[1:].mean(axis=0) if len(d) > 1 else np.zeros(2)
    return Tracks(track_id=tracks.track_id, frame=tracks.frame, x_px=x, y_px=y,
                  intensity=tracks.intensity, n_frames=tracks.n_frames,
                  frame_shape=tracks.frame_shape,
                  drift_px_per_frame=(float(mean[0]), float(mean[1])), drift_corrected=True,
                  threshold=tracks.threshold, source=tracks.source,
                  metadata=dict(tracks.metadata))
