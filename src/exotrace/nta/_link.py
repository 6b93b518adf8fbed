"""Frame-to-frame linking of detections into trajectories.

The search radius follows the physics: the fastest particle of interest (the
smallest diameter) sets the largest step to expect,
``R = n_sigma * sqrt(2 D dt (gap + 1))`` in pixels; once a track has a few
steps its own step size narrows its radius (a slow 150 nm particle does not
grab a newcomer 30 px away). Positions are predicted by the measured drift
before matching, so several px/frame of flow cost nothing. Assignment is
greedy in order of a likelihood cost (the step under the track's own
diffusion, young tracks under the population's, plus the change of
brightness), which at NTA densities (a few hundred particles in a megapixel)
equals an optimal assignment in all but rare conflicts. Tracks may miss up to
``memory`` frames.

Linking consumes detections frame by frame (:class:`Linker`), so a video is
linked while it streams; frames are never needed.
"""

from __future__ import annotations

import math

import numpy as np

from ..errors import InvalidInput
from ..physics import diffusion_m2_per_s_from_diameter, effective_viscosity_pa_s
from . import _kernels
from ._detect import _median_inplace
from ._types import Acquisition, Detections, Tracks

__all__ = ["Linker", "link", "search_radius_px"]

# Steps are Gaussian per axis; a 2-D step exceeds n sigma with probability
# exp(-n^2 / 2): 3e-4 at n = 4.
DEFAULT_N_SIGMA = 4.0
# A track's own radius: this many of its measured step sigmas (after
# _MIN_OWN_STEPS steps), generous because a few steps estimate sigma poorly.
_OWN_SIGMA_FACTOR = 6.0
_MIN_OWN_STEPS = 4
# Weight, in links, of the starting guess (sd 0.5) for the link-to-link change
# of ln(intensity).
_DLI_PRIOR_LINKS = 20
# Online flow: links of established tracks needed in a frame, and the weight
# of that frame's median step in the running flow.
_MIN_FLOW_LINKS = 5
_FLOW_WEIGHT = 0.3
# Links of established tracks needed before their step scale replaces the
# fastest-particle scale for young tracks.
_MIN_POP_LINKS = 50
# A young track's step variance is the population's (its particle is
# unknown); 2x and 4x gave the same sizes on simulated videos, 1x the fewest
# spurious peaks in dense fields.
_YOUNG_VAR_FACTOR = 1.0


def _greedy_match_py(ti: np.ndarray, di: np.ndarray, order: np.ndarray, n_tracks: int,
                     n_dets: int) -> tuple[np.ndarray, np.ndarray]:
    """Pure-Python :func:`._kernels.greedy_match_nb` (numba missing)."""
    used_t = np.zeros(n_tracks, dtype=bool)
    used_d = np.zeros(n_dets, dtype=bool)
    match_t, match_d = [], []
    for k in order:
        t, d = ti[k], di[k]
        if used_t[t] or used_d[d]:
            continue
        used_t[t] = True
        used_d[d] = True
        match_t.append(t)
        match_d.append(d)
    return np.asarray(match_t, dtype=np.int64), np.asarray(match_d, dtype=np.int64)


def _link_frame_py(px, py, radius, x, y, strong, established, var_track, li_track, li_det,
                   var_li) -> tuple[np.ndarray, np.ndarray]:
    """numpy :func:`._kernels.link_frame_nb` (numba missing)."""
    ti, di = _candidate_pairs(px, py, radius, x, y)
    ok = strong[di] | established[ti]
    ti, di = ti[ok], di[ok]
    v = var_track[ti]
    cost = (((x[di] - px[ti]) ** 2 + (y[di] - py[ti]) ** 2) / (2.0 * v) + np.log(v)
            + (li_det[di] - li_track[ti]) ** 2 / (2.0 * var_li))
    order = np.argsort(cost, kind="stable")
    return _greedy_match_py(ti, di, order, len(px), len(x))


def _candidate_pairs(px, py, radius, x, y) -> tuple[np.ndarray, np.ndarray]:
    """(track, detection) index pairs within each track's radius, by track then detection.

    The grid search of :func:`._kernels.candidate_pairs_nb` (plain Python
    where numba is missing: slow, the same pairs).
    """
    return _kernels.candidate_pairs_nb(np.ascontiguousarray(px, dtype=np.float64),
                                       np.ascontiguousarray(py, dtype=np.float64),
                                       np.ascontiguousarray(radius, dtype=np.float64),
                                       np.ascontiguousarray(x, dtype=np.float64),
                                       np.ascontiguousarray(y, dtype=np.float64), 16.0)


def search_radius_px(
    acquisition: Acquisition,
    *,
    min_diameter_nm: float = 30.0,
    n_sigma: float = DEFAULT_N_SIGMA,
    localization_px: float = 0.5,
) -> float:
    """Largest one-frame jump (pixels) a particle of ``min_diameter_nm`` makes.

    Parameters
    ----------
    acquisition : Acquisition
        Frame rate, pixel size, temperature, viscosity.
    min_diameter_nm : float
        Smallest diameter of interest, nm (fastest particle).
    n_sigma : float
        Radius in units of the per-axis step standard deviation.
    localization_px : float
        Localization error (px rms per axis) added in quadrature.

    Returns
    -------
    float
        Search radius in pixels for a one-frame step.

    Notes
    -----
    Per axis the step variance is :math:`2 D \\Delta t` plus twice the
    localization variance; :math:`D` from Stokes-Einstein.
    """
    if not math.isfinite(min_diameter_nm) or min_diameter_nm <= 0:
        raise InvalidInput(f"min-diameter-nm must be > 0, got {min_diameter_nm}")
    if not math.isfinite(n_sigma) or n_sigma <= 0:
        raise InvalidInput(f"n_sigma must be > 0, got {n_sigma}")
    eta = effective_viscosity_pa_s(acquisition.temperature_c, acquisition.viscosity_cp)
    d = diffusion_m2_per_s_from_diameter(min_diameter_nm, temperature_c=acquisition.temperature_c,
                                         viscosity_pa_s=eta)
    var_px2 = 2.0 * d * acquisition.frame_interval_s / acquisition.pixel_size_m**2
    return float(n_sigma * math.sqrt(var_px2 + 2.0 * localization_px**2))


class Linker:
    """Streaming linker: feed detections frame by frame, then :meth:`result`.

    Parameters
    ----------
    search_radius_px : float
        Largest one-frame jump after drift prediction, px (see :func:`search_radius_px`).
    memory : int
        Frames a particle may go missing and still continue its track (0-5).
    drift_px_per_frame : ndarray, shape (n_frames, 2), optional
        Expected displacement (x, y) from frame ``f - 1`` to frame ``f``; positions
        are predicted by it before matching. ``None`` means no drift, or with
        ``online_drift`` the flow measured so far.
    online_drift : bool
        Without ``drift_px_per_frame``: predict positions by the flow measured
        on the links made so far (median step of established tracks per frame,
        smoothed over a few frames), so a streaming video is linked well in a
        single pass.
    initial_flow : (float, float), optional
        Online flow to start from (px/frame), e.g. learnt on the first frames.
    """

    def __init__(self, search_radius_px: float, *, memory: int = 1,
                 drift_px_per_frame: np.ndarray | None = None,
                 online_drift: bool = False, initial_flow=None) -> None:
        if not math.isfinite(search_radius_px) or search_radius_px <= 0:
            raise InvalidInput(f"search radius must be > 0 px, got {search_radius_px}")
        if int(memory) != memory or not 0 <= memory <= 5:
            raise InvalidInput(f"memory must be an integer 0-5 frames, got {memory}")
        self.radius = float(search_radius_px)
        self.memory = int(memory)
        self._cum = None
        if drift_px_per_frame is not None:
            d = np.asarray(drift_px_per_frame, dtype=np.float64)
            if d.ndim != 2 or d.shape[1] != 2:
                raise InvalidInput("drift_px_per_frame must have shape (n_frames, 2)")
            self._cum = np.cumsum(d, axis=0)
        # active tracks
        self._id = np.zeros(0, np.int64)
        self._x = np.zeros(0)
        self._y = np.zeros(0)
        self._last = np.zeros(0, np.int64)
        self._ss = np.zeros(0)  # sum of squared steps per unit gap (px^2)
        self._ns = np.zeros(0, np.int64)
        self._li = np.zeros(0)  # smoothed ln(intensity) of the track
        self._next_id = 0
        # Running mean of the squared change of ln(intensity) over accepted
        # links of established tracks (starts at 0.5^2).
        self._dli_sum = 0.25 * _DLI_PRIOR_LINKS
        self._dli_n = float(_DLI_PRIOR_LINKS)
        # running per-axis squared step over links of established tracks
        self._pop_ss = 0.0
        self._pop_n = 0.0
        self._rows: list[tuple[np.ndarray, ...]] = []
        self._last_frame = -1
        self._online = bool(online_drift) and drift_px_per_frame is None
        self._flow = (np.zeros(2) if initial_flow is None
                      else np.asarray(initial_flow, dtype=np.float64).reshape(2).copy())
        # the flow each frame was predicted with (online mode)
        self._flow_used: dict[int, tuple[float, float]] = {}

    def _update_flow(self, mt, md, x, y, gap) -> None:
        """Running flow from this frame's links of established tracks."""
        est = self._ns[mt] >= _MIN_OWN_STEPS
        if est.sum() < _MIN_FLOW_LINKS:
            return
        t, d = mt[est], md[est]
        step_x = (x[d] - self._x[t]) / gap[t]
        step_y = (y[d] - self._y[t]) / gap[t]
        # (the step arrays are fresh: the in-place median may reorder them;
        # np.median's overhead was 4x its work on these ~100 values)
        self._flow = ((1.0 - _FLOW_WEIGHT) * self._flow
                      + _FLOW_WEIGHT * np.array([_median_inplace(step_x),
                                                 _median_inplace(step_y)]))

    def _young_var(self) -> float:
        """Per-axis step variance assumed for tracks too young to have their own (px^2).

        The running mean over established links, until enough links exist:
        the population scale of the fastest particle of interest.
        """
        if self._pop_n < _MIN_POP_LINKS:
            return (self.radius / DEFAULT_N_SIGMA) ** 2
        return _YOUNG_VAR_FACTOR * self._pop_ss / self._pop_n

    def _drift_between(self, f0: np.ndarray, f1: int) -> tuple[np.ndarray, np.ndarray]:
        if self._cum is None:
            if self._online:
                gap = (f1 - f0).astype(np.float64)
                return self._flow[0] * gap, self._flow[1] * gap
            return np.zeros(len(f0)), np.zeros(len(f0))
        n = len(self._cum)
        c1 = self._cum[min(f1, n - 1)]
        c0 = self._cum[np.minimum(f0, n - 1)]
        return c1[0] - c0[:, 0], c1[1] - c0[:, 1]

    def add(self, frame: int, x_px: np.ndarray, y_px: np.ndarray,
            intensity: np.ndarray, strong: np.ndarray | None = None, *,
            peak: np.ndarray | None = None, saturated: np.ndarray | None = None) -> None:
        """Link the detections of ``frame`` (frames must come in increasing order).

        ``strong`` (bool per detection, default all true) marks detections
        above the full threshold; the others (hysteresis) may only continue
        an existing track and are dropped when nothing claims them. ``peak``
        and ``saturated`` (see :class:`Detections`) are carried into the tracks.
        """
        frame = int(frame)
        if frame <= self._last_frame:
            raise InvalidInput(f"frames must be added in increasing order ({frame} after "
                               f"{self._last_frame})")
        self._last_frame = frame
        x = np.asarray(x_px, dtype=np.float64)
        y = np.asarray(y_px, dtype=np.float64)
        inten = np.asarray(intensity, dtype=np.float64)
        pk = (np.full(len(x), np.nan) if peak is None
              else np.asarray(peak, dtype=np.float64))
        sat = (np.zeros(len(x), dtype=bool) if saturated is None
               else np.asarray(saturated, dtype=bool))
        if len(pk) != len(x) or len(sat) != len(x):
            raise InvalidInput("peak and saturated must have one value per detection")
        # retire tracks unseen for longer than the memory
        keep = frame - self._last <= self.memory + 1
        if not keep.all():
            self._id, self._x, self._y = self._id[keep], self._x[keep], self._y[keep]
            self._last, self._ss, self._ns = self._last[keep], self._ss[keep], self._ns[keep]
            self._li = self._li[keep]
        n_det = len(x)
        li = np.log(np.maximum(inten, 1.0))
        if self._online:
            self._flow_used[frame] = (float(self._flow[0]), float(self._flow[1]))
        ids = np.full(n_det, -1, dtype=np.int64)
        if n_det and len(self._id):
            gap = (frame - self._last).astype(np.float64)
            dx, dy = self._drift_between(self._last, frame)
            px, py = self._x + dx, self._y + dy
            established = self._ns >= _MIN_OWN_STEPS
            # per-axis step variance from the track's own steps (plus 0.25 px^2
            # for localization), used for its radius and its cost
            own_var = self._ss / np.maximum(self._ns, 1) / 2.0 + 0.25
            own = np.where(established, _OWN_SIGMA_FACTOR * np.sqrt(own_var), np.inf)
            radius = np.minimum(self.radius, own) * np.sqrt(gap)
            # Cost: -ln likelihood of the step under the track's own diffusion
            # (population scale for young tracks) plus the change of
            # brightness (a particle's brightness changes slowly as it
            # diffuses through the sheet; a neighbour at another depth is
            # several times brighter or dimmer). Pairs are taken in order of
            # cost, so established tracks claim first: a track born a few
            # frames ago (often on a noise spot or a second maximum on a
            # streak) has only the wide population radius and would otherwise
            # steal a real particle's long step from the track that followed
            # it. A weak spot (below the full threshold) may only continue an
            # established track: young tracks would chain noise.
            var_t = np.where(established, own_var, self._young_var()) * gap
            var_li = self._dli_sum / self._dli_n
            strong_d = (np.ones(n_det, dtype=bool) if strong is None
                        else np.asarray(strong, dtype=bool))
            if _kernels.HAVE_NUMBA:
                mt, md = _kernels.link_frame_nb(
                    np.ascontiguousarray(px), np.ascontiguousarray(py),
                    np.ascontiguousarray(radius, dtype=np.float64), np.ascontiguousarray(x),
                    np.ascontiguousarray(y), strong_d, established, var_t, self._li, li,
                    var_li, 16.0)
            else:  # pragma: no cover - numba is a hard dependency
                mt, md = _link_frame_py(px, py, radius, x, y, strong_d, established, var_t,
                                        self._li, li, var_li)
            if len(mt):
                if self._online:
                    self._update_flow(mt, md, x, y, gap)
                ids[md] = self._id[mt]
                step2 = ((x[md] - px[mt]) ** 2 + (y[md] - py[mt]) ** 2) / gap[mt]
                self._ss[mt] += step2
                self._ns[mt] += 1
                est = self._ns[mt] > _MIN_OWN_STEPS
                if est.any():
                    self._pop_ss += float(step2[est].sum()) / 2.0
                    self._pop_n += float(est.sum())
                    d2 = np.minimum((li[md[est]] - self._li[mt[est]]) ** 2, 4.0)
                    self._dli_sum += float(d2.sum())
                    self._dli_n += float(est.sum())
                self._li[mt] = 0.5 * (self._li[mt] + li[md])
                self._x[mt] = x[md]
                self._y[mt] = y[md]
                self._last[mt] = frame
        if strong is not None:
            strong = np.asarray(strong, dtype=bool)
            unclaimed_weak = (ids < 0) & ~strong
            if unclaimed_weak.any():
                keep_det = ~unclaimed_weak
                ids, x, y, inten = ids[keep_det], x[keep_det], y[keep_det], inten[keep_det]
                pk, sat, li = pk[keep_det], sat[keep_det], li[keep_det]
                n_det = len(x)
        new = ids < 0
        n_new = int(new.sum())
        if n_new:
            new_ids = np.arange(self._next_id, self._next_id + n_new, dtype=np.int64)
            self._next_id += n_new
            ids[new] = new_ids
            self._id = np.concatenate([self._id, new_ids])
            self._x = np.concatenate([self._x, x[new]])
            self._y = np.concatenate([self._y, y[new]])
            self._last = np.concatenate([self._last, np.full(n_new, frame, np.int64)])
            self._ss = np.concatenate([self._ss, np.zeros(n_new)])
            self._ns = np.concatenate([self._ns, np.zeros(n_new, np.int64)])
            self._li = np.concatenate([self._li, li[new]])
        if n_det:
            self._rows.append((ids, np.full(n_det, frame, np.int64), x, y, inten, pk, sat))

    @property
    def flow(self) -> np.ndarray:
        """The online flow now (x, y), px/frame."""
        return self._flow.copy()

    def online_flow(self, n_frames: int) -> np.ndarray:
        """The flow (x, y) each frame's positions were predicted with, px/frame,
        shape (n_frames, 2); nan for frames never added (or without online flow)."""
        out = np.full((n_frames, 2), np.nan)
        for f, v in self._flow_used.items():
            if 0 <= f < n_frames:
                out[f] = v
        return out

    def result(self, *, n_frames: int, frame_shape: tuple[int, int], threshold: float = float("nan"),
               source: str = "") -> Tracks:
        """All tracks linked so far, sorted by (track_id, frame)."""
        if self._rows:
            cols = [np.concatenate(c) for c in zip(*self._rows, strict=True)]
        else:
            cols = [np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0), np.zeros(0),
                    np.zeros(0), np.zeros(0), np.zeros(0, bool)]
        tid, fr, x, y, inten, pk, sat = cols
        order = np.lexsort((fr, tid))
        return Tracks(track_id=tid[order], frame=fr[order], x_px=x[order], y_px=y[order],
                      intensity=inten[order], n_frames=int(n_frames),
                      frame_shape=(int(frame_shape[0]), int(frame_shape[1])),
                      threshold=float(threshold), source=source, peak=pk[order],
                      saturated=sat[order])


def link(
    detections: Detections,
    *,
    search_radius_px: float,
    memory: int = 1,
    drift_px_per_frame: np.ndarray | None = None,
    strong: np.ndarray | None = None,
    source: str = "",
) -> Tracks:
    """Link detections into tracks (see :class:`Linker`).

    Parameters
    ----------
    detections : Detections
    search_radius_px : float
        Largest one-frame jump after drift prediction, px.
    memory : int
        Frames a particle may be missing inside a track.
    drift_px_per_frame : ndarray, shape (n_frames, 2), optional
        Per-frame drift steps used to predict positions.
    strong : ndarray of bool, optional
        Per detection: above the full threshold. Weak detections only continue
        tracks (hysteresis); default all strong.
    source : str
        Name carried into the tracks.

    Returns
    -------
    Tracks
        Not drift-corrected; coordinates as detected.
    """
    linker = Linker(search_radius_px, memory=memory, drift_px_per_frame=drift_px_per_frame)
    if strong is not None:
        strong = np.asarray(strong, dtype=bool)
        if strong.shape != detections.frame.shape:
            raise InvalidInput("strong must have one flag per detection")
    fr = detections.frame
    order = np.argsort(fr, kind="stable")
    fr_sorted = fr[order]
    if len(fr_sorted):
        uniq, starts = np.unique(fr_sorted, return_index=True)
        ends = np.append(starts[1:], len(fr_sorted))
        for f, a, b in zip(uniq, starts, ends, strict=True):
            idx = order[a:b]
            linker.add(int(f), detections.x_px[idx], detections.y_px[idx],
                       detections.intensity[idx], None if strong is None else strong[idx],
                       peak=detections.peak[idx], saturated=detections.saturated[idx])
    return linker.result(n_frames=detections.n_frames, frame_shape=detections.frame_shape,
                         threshold=detections.threshold, source=source)
