"""Tracks of an independent-generator video held against the generator's truth.

Splits a D50 error into what the tracking selected and what the estimator
made of it:

* **tracked motion**: the true (exposure-averaged, Brownian) displacements of
  the particles over exactly the frame pairs that the tracks hold, at lags 1
  and 2. Their slope ``(MSD(2) - MSD(1)) / (2 D dt)`` is 1 for unselected
  Brownian motion whatever the blur; below 1 the tracks kept slower moments
  of their particles (detection of dim, blurred spots; track survival).
* **off-particle steps**: consecutive steps whose measured displacement
  differs from the particle's true one by more than a few pixels (wrong links
  to a neighbour, centroids pulled off a streak).
* **ideal positions**: the same tracks with every position replaced by its
  particle's true one plus Gaussian noise; sized again, they show the
  estimator on the tracked motion alone.

Only for the benchmarks: the product never sees the truth.
"""

from __future__ import annotations

import dataclasses

import numpy as np
from _independent_sim import IndependentVideo, stokes_einstein_m2_s

__all__ = ["ideal_tracks", "match_tracks", "tracked_motion"]

# A track's first spot must lie this close to a particle's exposure average
# (px) to be matched; in the benchmark's dilute fields neighbours are tens of
# pixels apart.
MATCH_PX = 3.0
# Measured and true step differ by more than this (px): an off-particle step.
# Localization and flow-field residuals scatter by ~1 px per axis.
OFF_STEP_PX = 10.0


def match_tracks(tracks, video: IndependentVideo) -> np.ndarray:
    """Particle slot of every track (in track order), -1 where none matches.

    The tracks' positions are drift-corrected; the removed drift is added back
    for the first spot of each track, which is matched to the nearest
    particle in that frame. A track whose particle is re-born (left the cell)
    before its last frame is left unmatched.
    """
    cum = np.asarray(tracks.metadata["cumulative_drift_px"], dtype=float)
    bounds = tracks.boundaries()
    slots = np.full(len(bounds) - 1, -1, dtype=np.int64)
    for i, (a, e) in enumerate(zip(bounds[:-1], bounds[1:], strict=True)):
        f0 = tracks.frame[a]
        dist = np.hypot(video.x_px[f0] - (tracks.x_px[a] + cum[f0, 0]),
                        video.y_px[f0] - (tracks.y_px[a] + cum[f0, 1]))
        j = int(np.argmin(dist))
        if dist[j] <= MATCH_PX and np.all(video.birth[tracks.frame[a:e], j] == video.birth[f0, j]):
            slots[i] = j
    return slots


def tracked_motion(tracks, video: IndependentVideo, slots: np.ndarray) -> dict:
    """True motion over the tracked frame pairs, and the off-particle steps.

    Returns
    -------
    dict
        ``slope``: pooled (MSD(2) - MSD(1)) / (2 D dt) of the true
        displacements (1 = unselected); ``lag1``: MSD(1) / (2 D (dt - t_exp/3));
        ``pairs1``, ``pairs2``; ``off_fraction``: consecutive steps of matched
        tracks more than :data:`OFF_STEP_PX` from the true step (a track is
        followed up to its first such step); ``matched``: matched tracks.
    """
    s = video.settings
    d_px2_s = float(stokes_einstein_m2_s(s.diameters_nm[0], s.temperature_c)) / (
        s.pixel_size_nm * 1e-9) ** 2
    dt, t_exp = 1.0 / s.fps, s.exposure_ms * 1e-3
    bounds = tracks.boundaries()
    sums = {1: [0.0, 0], 2: [0.0, 0]}
    steps = off = 0
    for i, (a, e) in enumerate(zip(bounds[:-1], bounds[1:], strict=True)):
        j = slots[i]
        if j < 0:
            continue
        frames = tracks.frame[a:e]
        present = set(frames.tolist())
        bx, by = video.bx_px[:, j], video.by_px[:, j]
        for f in frames:
            for lag in (1, 2):
                if f + lag in present:
                    sums[lag][0] += 0.5 * ((bx[f + lag] - bx[f]) ** 2 + (by[f + lag] - by[f]) ** 2)
                    sums[lag][1] += 1
        dx_meas, dy_meas = np.diff(tracks.x_px[a:e]), np.diff(tracks.y_px[a:e])
        consecutive = np.diff(frames) == 1
        miss = np.hypot(dx_meas - np.diff(bx[frames]), dy_meas - np.diff(by[frames]))[consecutive]
        first_off = np.flatnonzero(miss > OFF_STEP_PX)
        steps += int(first_off[0]) + 1 if len(first_off) else len(miss)
        off += int(len(first_off) > 0)
    msd1 = sums[1][0] / max(sums[1][1], 1)
    msd2 = sums[2][0] / max(sums[2][1], 1)
    return {"slope": (msd2 - msd1) / (2.0 * d_px2_s * dt),
            "lag1": msd1 / (2.0 * d_px2_s * (dt - t_exp / 3.0)),
            "pairs1": sums[1][1], "pairs2": sums[2][1],
            "off_fraction": off / max(steps, 1), "matched": int(np.sum(slots >= 0))}


def ideal_tracks(tracks, video: IndependentVideo, slots: np.ndarray, *, noise_px: float,
                 seed: int = 0):
    """The matched tracks with their particles' true positions plus Gaussian noise.

    Positions are the exposure-averaged Brownian part only (no flow, so no
    drift to remove), from the track's first measured position; ``noise_px`` per axis stands in
    for localization error (keep it near the real one: the estimator takes
    the per-frame terms from the lag intercepts, and a much smaller noise
    than the detection selection's own per-frame term makes them negative).
    """
    rng = np.random.default_rng(seed)
    bounds = tracks.boundaries()
    keep = np.zeros(len(tracks), dtype=bool)
    x, y = tracks.x_px.copy(), tracks.y_px.copy()
    for i, (a, e) in enumerate(zip(bounds[:-1], bounds[1:], strict=True)):
        j = slots[i]
        if j < 0:
            continue
        frames = tracks.frame[a:e]
        keep[a:e] = True
        # start where the track starts, so every position stays in the field
        x[a:e] = (tracks.x_px[a] + video.bx_px[frames, j] - video.bx_px[frames[0], j]
                  + noise_px * rng.standard_normal(e - a))
        y[a:e] = (tracks.y_px[a] + video.by_px[frames, j] - video.by_px[frames[0], j]
                  + noise_px * rng.standard_normal(e - a))
    fields = {f.name: getattr(tracks, f.name) for f in dataclasses.fields(tracks)}
    for name in ("track_id", "frame", "intensity", "peak", "saturated"):
        if fields[name] is not None:
            fields[name] = fields[name][keep]
    fields["x_px"], fields["y_px"] = x[keep], y[keep]
    return type(tracks)(**fields)
