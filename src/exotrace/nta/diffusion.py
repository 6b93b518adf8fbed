"""Per-track diffusion coefficients: the covariance estimator (CVE) and the naive MSD.

Each track gives one diffusion coefficient with its own error bar, the
localization variance seen in it, the mean squared step (what the
size-distribution likelihood is built on) and a robust brightness.

Steps are taken between a track's successive positions. A step across a
linking gap (the track skips frames, up to ``max_lag_frames`` - 1 of them)
is kept, with its lag in the moment equations: under motion blur a dim
particle is missed in exactly the frames where it moved most during the
exposure (its light spread over a streak), so dropping the steps across such
gaps biases D low (by ~5 % for 100 nm EVs on simulated videos with 30 ms
exposure at 25 fps; keeping them removes most of that). Longer gaps end the
track's steps (no step, no pair across them).
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace

import numpy as np

from ..errors import InsufficientData, InvalidInput
from ._shadowing import spot_survival
from ._types import Acquisition, Tracks

__all__ = [
    "ShortTracks",
    "TrackDiffusion",
    "blur_factor",
    "combine_diffusion",
    "cve_variance",
    "track_diffusion",
]

_METHODS = ("cve", "msd")
# TrackDiffusion arrays that are not one value per track
_NOT_PER_TRACK = ("hidden_area_px2", "step1_sq_m2", "step1_row")


@dataclass(frozen=True)
class ShortTracks:
    """Tracks with at least one step but fewer than ``min_steps`` (no per-track D).

    They still carry information for the population: the size likelihood of
    their few steps, the frames they were seen (small particles leave the
    sheet quickly and leave many short tracks) and their brightness (they
    are found near the edges of the visible slab). Dropping them would
    under-count small particles and over-estimate brightness.

    Attributes
    ----------
    track_id, n_steps, n_pairs, n_points : ndarray of int64
    mean_step_sq_m2, mean_log_intensity, mean_lag, mean_log_peak : ndarray of float64
        As in :class:`TrackDiffusion` (``mean_lag`` ``None`` means all steps
        span one frame; ``mean_log_peak`` ``None`` means unknown).
    mean_step_sq1_m2, n_steps1, n_pairs1, missed_frames, visible_points : ndarray or None
        As in :class:`TrackDiffusion` (``None`` when not computed).
    step1_sq_m2, step1_row : ndarray or None
        As in :class:`TrackDiffusion`, rows indexing these short tracks.
    """

    track_id: np.ndarray
    n_steps: np.ndarray
    n_pairs: np.ndarray
    n_points: np.ndarray
    mean_step_sq_m2: np.ndarray
    mean_log_intensity: np.ndarray
    mean_lag: np.ndarray | None = None
    mean_log_peak: np.ndarray | None = None
    mean_step_sq1_m2: np.ndarray | None = None
    n_steps1: np.ndarray | None = None
    n_pairs1: np.ndarray | None = None
    missed_frames: np.ndarray | None = None
    visible_points: np.ndarray | None = None
    step1_sq_m2: np.ndarray | None = None
    step1_row: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.track_id)


@dataclass(frozen=True)
class TrackDiffusion:
    """Diffusion estimates, one entry per kept track (arrays of equal length).

    Attributes
    ----------
    track_id : ndarray of int64
        Track identifier (as in :class:`~exotrace.nta.Tracks`).
    n_steps : ndarray of int64
        Number of steps used (per axis), each between two successive positions
        of the track at most ``max_lag_frames`` frames apart.
    n_pairs : ndarray of int64
        Number of adjacent step pairs (steps sharing a position) used for the
        covariance term.
    n_points : ndarray of int64
        Number of positions (frames) in the track, gaps excluded; the time the
        particle was seen, in frames.
    diffusion_m2_per_s : ndarray of float64
        Estimated diffusion coefficient, m^2/s (mean of the x and y axes). CVE
        estimates may be negative for short noisy tracks; they are valid
        estimates and are kept (sizes for them are ``nan``).
    diffusion_var : ndarray of float64
        Variance of that estimate, m^4/s^2.
    localization_var_m2 : ndarray of float64
        Localization variance per axis, m^2 (CVE; ``nan`` for ``method="msd"``).
        May be negative (an unbiased but noisy estimate).
    mean_step_sq_m2 : ndarray of float64
        Mean squared step per axis, m^2 (x and y pooled; steps across a gap
        included, see ``mean_lag``).
    lag1_cov_m2 : ndarray of float64
        Mean product of adjacent steps per axis, m^2 (x and y pooled).
    intensity : ndarray of float64
        Upper quartile of the track's spot intensities (camera units).
    mean_log_intensity : ndarray of float64
        Mean of ln(intensity) over the track's spots with positive intensity
        (``nan`` if none); used to model detection depth.
    frame_interval_s, exposure_s : float
        Time between frames and shutter time, s.
    blur_factor : float
        Motion-blur factor R = exposure / (6 frame interval).
    intensity_floor : float
        The detection threshold in intensity units: the peak threshold times
        the median intensity per unit of band-passed peak of unsaturated spots
        2-30 thresholds high; without peaks, the 0.5th percentile of all
        positive spot intensities (the dimmest spots); ``nan`` if none.
    intensity_floor_method : str
        ``"detection"`` (the peak threshold mapped) or ``"dimmest-spots"``.
    method : str
        ``"cve"`` or ``"msd"``.
    source : str
        Where the tracks came from.
    short : ShortTracks or None
        Tracks with 1 to ``min_steps - 1`` steps, used by the size distribution
        and the concentration but given no per-track estimate.
    mean_lag : ndarray of float64 or None
        Mean number of frame intervals spanned by the track's steps (1 when no
        step crosses a gap); ``None`` means 1 for every track.
    mean_log_peak : ndarray of float64 or None
        Mean ln(band-passed peak) over the track's spots, saturated ones at
        their clipped peak (a lower bound; ``nan`` if none): the brightness
        that detection thresholds. ``None`` when the
        tracks carry no peaks.
    peak_threshold : float
        The detection threshold in the units of the peaks (band-passed counts);
        ``nan`` when unknown.
    mean_step_sq1_m2, n_steps1, n_pairs1 : ndarray or None
        Mean squared step per axis (m^2), steps and adjacent step pairs over
        *consecutive* frames only (no step across a gap): the statistics the
        size likelihood uses (see :mod:`exotrace.nta.sizing`).
    mean_lag2_sq_m2, n_lag2, mean_lag3_sq_m2, n_lag3 : ndarray or None
        Mean squared displacement per axis (m^2) between the track's positions
        exactly 2 (3) frames apart, whether or not the frames between were
        detected, and the number of such pairs. (MSD(3) - MSD(1)) / (4 dt)
        estimates D free of any effect that acts on single frames (detection
        favouring frames in which the particle moved little during the
        exposure, localization error), which calibrates the size likelihood.
    missed_frames : ndarray or None
        Frames missed inside the track (linking gaps): with ``n_points`` the
        fraction of frames in which the particle was detected while in view.
    visible_points : ndarray or None
        ``n_points`` with each spot counted 1 / S times, S the probability
        that a spot of its brightness escapes being hidden by a brighter
        neighbour (:mod:`exotrace.nta._shadowing`): the frames the particle
        was in view and detectable, the hidden ones counted back. ``None``
        when the spots carry no peaks (then ``n_points`` serves).
    hidden_area_px2 : ndarray or None
        Area around a brighter spot in which a dimmer one is lost, per class
        of ln(brightness ratio) (0-1, 1-2, 2-3, above 3), px^2.
    step1_sq_m2, step1_row : ndarray or None
        Every consecutive-frame step of the kept tracks: its squared length
        (x and y together), m^2, and the track (row) it belongs to. The size
        likelihood uses them step by step, so that one wrong link does not
        make a whole track look fast.
    """

    track_id: np.ndarray
    n_steps: np.ndarray
    n_pairs: np.ndarray
    n_points: np.ndarray
    diffusion_m2_per_s: np.ndarray
    diffusion_var: np.ndarray
    localization_var_m2: np.ndarray
    mean_step_sq_m2: np.ndarray
    lag1_cov_m2: np.ndarray
    intensity: np.ndarray
    mean_log_intensity: np.ndarray
    frame_interval_s: float
    exposure_s: float
    blur_factor: float
    intensity_floor: float
    method: str
    source: str = ""
    short: ShortTracks | None = None
    intensity_floor_method: str = "dimmest-spots"
    mean_lag: np.ndarray | None = None
    mean_log_peak: np.ndarray | None = None
    peak_threshold: float = float("nan")
    mean_step_sq1_m2: np.ndarray | None = None
    n_steps1: np.ndarray | None = None
    n_pairs1: np.ndarray | None = None
    mean_lag2_sq_m2: np.ndarray | None = None
    n_lag2: np.ndarray | None = None
    mean_lag3_sq_m2: np.ndarray | None = None
    n_lag3: np.ndarray | None = None
    missed_frames: np.ndarray | None = None
    visible_points: np.ndarray | None = None
    hidden_area_px2: np.ndarray | None = None
    step1_sq_m2: np.ndarray | None = None
    step1_row: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.track_id)

    def points(self) -> np.ndarray:
        """``visible_points`` where known, else ``n_points`` (float64, one per track)."""
        if self.visible_points is None:
            return self.n_points.astype(float)
        return np.asarray(self.visible_points, dtype=float)

    def take(self, index, *, keep_short: bool = False) -> TrackDiffusion:
        """The tracks at ``index`` (boolean mask or integer indices) as a new object.

        ``short`` is dropped unless ``keep_short``.
        """
        n = len(self.track_id)
        changes = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if (isinstance(value, np.ndarray) and value.shape == (n,)
                    and f.name not in _NOT_PER_TRACK):
                changes[f.name] = value[index]
        if not keep_short:
            changes["short"] = None
        if self.step1_row is not None:
            new_row = np.full(n, -1, dtype=np.int64)
            chosen = np.arange(n)[index]
            new_row[chosen] = np.arange(len(chosen))
            mapped = new_row[self.step1_row]
            changes["step1_sq_m2"] = self.step1_sq_m2[mapped >= 0]
            changes["step1_row"] = mapped[mapped >= 0]
        return replace(self, **changes)

    def lags(self) -> np.ndarray:
        """``mean_lag`` with ``None`` read as all ones (float64, one per track)."""
        if self.mean_lag is None:
            return np.ones(len(self.track_id))
        return np.asarray(self.mean_lag, dtype=float)

    @property
    def n_tracks(self) -> int:
        return len(self.track_id)


def blur_factor(acquisition: Acquisition) -> float:
    """Motion-blur factor R = t_exposure / (6 dt) for a uniform shutter (dimensionless)."""
    return acquisition.exposure_s / (6.0 * acquisition.frame_interval_s)


def cve_variance(diffusion_m2_per_s, localization_var_m2, n_steps, *,
                 frame_interval_s: float, blur: float, n_axes: int = 2):
    """Variance of the CVE diffusion estimate (m^4/s^2).

    Parameters
    ----------
    diffusion_m2_per_s : float or ndarray
        Diffusion coefficient, m^2/s.
    localization_var_m2 : float or ndarray
        Localization variance per axis, m^2.
    n_steps : int or ndarray
        Steps per axis.
    frame_interval_s : float
        Time between frames, s.
    blur : float
        Motion-blur factor R.
    n_axes : int
        Independent axes averaged (2 for x and y).

    Notes
    -----
    The closed form of Vestergaard, Blainey & Flyvbjerg (2014) for one axis
    with N steps, with :math:`\\epsilon = \\sigma^2/(D\\Delta t) - 2R`::

        Var(D) = D^2 [ (6 + 4 eps + 2 eps^2) / N + 4 (1 + eps)^2 / N^2 ]

    divided by the number of independent axes averaged. Inputs are clipped
    (D to a tiny positive value, sigma^2 to >= 0) so the variance is finite.

    References
    ----------
    .. [1] C. L. Vestergaard, P. C. Blainey, H. Flyvbjerg, "Optimal estimation of
       diffusion coefficients from single-particle trajectories", Phys. Rev. E
       89, 022726 (2014).
    """
    d = np.maximum(np.asarray(diffusion_m2_per_s, dtype=float), 1e-18)
    s2 = np.maximum(np.asarray(localization_var_m2, dtype=float), 0.0)
    n = np.asarray(n_steps, dtype=float)
    eps = s2 / (d * frame_interval_s) - 2.0 * blur
    var = d**2 * ((6.0 + 4.0 * eps + 2.0 * eps**2) / n + 4.0 * (1.0 + eps) ** 2 / n**2)
    return var / n_axes


def _sorted(tracks: Tracks):
    tid = np.asarray(tracks.track_id, dtype=np.int64)
    fr = np.asarray(tracks.frame, dtype=np.int64)
    order = np.lexsort((fr, tid))
    if np.any(order != np.arange(len(order))):
        tid, fr = tid[order], fr[order]
    x = np.asarray(tracks.x_px, dtype=float)[order]
    y = np.asarray(tracks.y_px, dtype=float)[order]
    inten = np.asarray(tracks.intensity, dtype=float)[order]
    return tid, fr, x, y, inten, order


def _shadow_weights(tracks: Tracks, order: np.ndarray):
    """Per row (in ``order``) 1 / survival from hidden spots, and the hidden areas;
    ``(None, None)`` when the spots carry no peaks."""
    peak = tracks.peak
    if peak is None or not np.any(np.isfinite(peak) & (np.asarray(peak) > 0)):
        return None, None
    model = spot_survival(tracks.frame, tracks.x_px, tracks.y_px, peak,
                          frame_shape=tracks.frame_shape, n_frames=tracks.n_frames,
                          cumulative_drift_px=tracks.metadata.get("cumulative_drift_px"))
    return 1.0 / model.survival[order], model.hidden_area_px2


def _jump_breaks(tid, dframe, step_ok, dx, dy, alpha: float) -> np.ndarray:
    """Steps (bool, one per row pair) too long to belong to their own track.

    Each step's squared length per frame interval is compared with the mean
    of the track's *other* steps: for Brownian steps of one variance the
    ratio follows an F(2, 2 (k - 1)) law (k steps; x and y give two degrees of
    freedom per step). A step is flagged when the ratio exceeds the upper
    ``alpha / k`` quantile, so a genuine track of any length is split with
    probability about ``alpha``; tracks with fewer than 4 steps are not
    tested. A linking error (the track jumps to another particle tens of
    pixels away) gives ratios of 20-100 and is flagged once the track has a
    few steps. A fixed multiple of the track's median would cut genuine long
    steps of short tracks (whose median is poorly known) and bias D low.
    """
    n = len(step_ok)
    breaks = np.zeros(n, dtype=bool)
    idx = np.flatnonzero(step_ok)
    if idx.size == 0:
        return breaks
    r2 = (dx[idx] ** 2 + dy[idx] ** 2) / dframe[idx]
    owner = tid[:-1][idx]
    _, inv, counts = np.unique(owner, return_inverse=True, return_counts=True)
    sums = np.bincount(inv, weights=r2)
    k = counts[inv]
    testable = k >= 4
    with np.errstate(divide="ignore", invalid="ignore"):
        others = (sums[inv] - r2) / np.maximum(k - 1, 1)
        ratio = np.where(others > 0, r2 / others, np.inf)
    crit = np.full(len(k), np.inf)
    crit[testable] = f2_upper_quantile(alpha / k[testable], 2 * (k[testable] - 1))
    breaks[idx[testable & (ratio > crit)]] = True
    return breaks


def f2_upper_quantile(p, m):
    """Upper ``p`` quantile of the F(2, m) distribution (``scipy.stats.f.isf(p, 2, m)``).

    F(2, m) has the survival function (1 + 2 x / m)^(-m / 2), so the
    quantile is closed-form: x = (m / 2) (p^(-2 / m) - 1).
    """
    p = np.asarray(p, dtype=float)
    m = np.asarray(m, dtype=float)
    return 0.5 * m * np.expm1(-2.0 / m * np.log(p))


def track_diffusion(tracks: Tracks, acquisition: Acquisition, *, method: str = "cve",
                    min_steps: int = 5, max_lag_frames: int = 3,
                    jump_alpha: float | None = 1e-3,
                    shadow_correction: bool = True) -> TrackDiffusion:
    """Estimate each track's diffusion coefficient.

    Parameters
    ----------
    tracks : Tracks
        Linked, drift-corrected trajectories (pixels).
    acquisition : Acquisition
        Pixel size (nm), frame rate (fps) and exposure (ms).
    method : {"cve", "msd"}
        ``"cve"``: covariance estimator, unbiased under motion blur and
        localization noise. ``"msd"``: naive lag-1 mean squared displacement,
        D = <dr^2> / (4 dt), kept for comparison (biased by blur and noise).
    min_steps : int
        Tracks with fewer steps (>= 2) get no per-track estimate; those with
        at least one step are kept aside in ``short`` for the population-level
        size distribution and concentration.
    max_lag_frames : int
        Longest step used, in frame intervals (>= 1): 1 uses consecutive
        frames only; 3 (default) also bridges linking gaps of one or two
        missed frames (the linker's ``memory``).
    jump_alpha : float or None
        A step far longer than the track's other steps is taken as a linking
        error (the track jumped to another particle): the track is split there
        and the step dropped; both pieces keep the track's id. The test (see
        :func:`_jump_breaks`) splits a genuine Brownian track with probability
        about ``jump_alpha``. A single such jump in a short track of a
        monodisperse sample otherwise makes it look several times smaller
        (spurious small-size peaks). ``None`` keeps all steps.
    shadow_correction : bool
        Count each spot back by the chance that a spot of its brightness is
        hidden by a brighter neighbour (``visible_points``; needs peaks).

    Returns
    -------
    TrackDiffusion

    Raises
    ------
    InvalidInput
        Unknown method, ``min_steps`` < 2, non-finite coordinates or a frame
        repeated inside a track.
    InsufficientData
        No tracks, or none with ``min_steps`` steps.

    Notes
    -----
    Per axis, with steps :math:`\\Delta x_n` spanning :math:`L_n` frame
    intervals :math:`\\Delta t` and blur factor :math:`R = t_E / (6 \\Delta t)`,
    the moments are <dx_n^2> = 2 D dt (L_n - 2R) + 2 sigma^2 and, for any two
    steps sharing a position, <dx_n dx_{n+1}> = 2 R D dt - sigma^2 [1]_. With
    the mean lag L = <L_n> this gives::

        D     = (<dx_n^2> + 2 <dx_n dx_{n+1}>) / (2 L dt)
        sigma^2 = 2 R D dt - <dx_n dx_{n+1}>

    which for L = 1 is the covariance estimator of [1]_
    (D = <dx^2>/(2 dt) + <dx dx'>/dt, sigma^2 = R <dx^2> + (2R - 1) <dx dx'>).
    The x and y estimates are averaged; the variance is from
    :func:`cve_variance` with the track's own D and sigma^2 plugged in.

    References
    ----------
    .. [1] Vestergaard, Blainey & Flyvbjerg, Phys. Rev. E 89, 022726 (2014).
    """
    if method not in _METHODS:
        raise InvalidInput(f"diffusion method must be one of {', '.join(_METHODS)}, got {method!r}")
    if not isinstance(min_steps, (int, np.integer)) or min_steps < 2:
        raise InvalidInput(f"min-steps must be an integer >= 2, got {min_steps!r}")
    if not isinstance(max_lag_frames, (int, np.integer)) or max_lag_frames < 1:
        raise InvalidInput(f"max-lag-frames must be an integer >= 1, got {max_lag_frames!r}")
    if jump_alpha is not None and not (np.isfinite(jump_alpha) and 0 < jump_alpha < 1):
        raise InvalidInput(f"jump-alpha must be between 0 and 1 or None, got {jump_alpha!r}")
    source = tracks.source or "tracks"
    if len(tracks) == 0:
        raise InsufficientData(f"{source}: no tracks to estimate diffusion from")
    tid, fr, x, y, inten, order = _sorted(tracks)
    if not (np.all(np.isfinite(x)) and np.all(np.isfinite(y))):
        bad = int(tid[~(np.isfinite(x) & np.isfinite(y))][0])
        raise InvalidInput(f"{source}: track {bad} has non-finite coordinates")

    same = tid[1:] == tid[:-1]
    dframe = fr[1:] - fr[:-1]
    if np.any(same & (dframe == 0)):
        bad = int(tid[1:][same & (dframe == 0)][0])
        raise InvalidInput(f"{source}: track {bad} has two positions in the same frame")

    px = acquisition.pixel_size_m
    dt = acquisition.frame_interval_s
    blur = blur_factor(acquisition)

    # Steps between successive positions of the same track at most
    # max_lag_frames apart; step n "owns" row n.
    step_ok = same & (dframe >= 1) & (dframe <= max_lag_frames)
    dx = (x[1:] - x[:-1]) * px
    dy = (y[1:] - y[:-1]) * px
    # Linking errors split the track: pieces are numbered as separate
    # segments and report their track's id.
    seg = tid
    if jump_alpha is not None:
        breaks = _jump_breaks(tid, dframe, step_ok, dx, dy, float(jump_alpha))
        if np.any(breaks):
            step_ok = step_ok & ~breaks
            seg = np.cumsum(np.r_[0, (~same) | breaks])
    # Adjacent step pairs: step n and n+1 both valid (so no gap in between).
    pair_ok = step_ok[:-1] & step_ok[1:]

    # Per-track accumulation with bincount over a compact track index.
    seg_ids, first_row, tix = np.unique(seg, return_index=True, return_inverse=True)
    uniq = tid[first_row]
    n_tr = len(uniq)
    sidx = tix[:-1]
    n_steps = np.bincount(sidx[step_ok], minlength=n_tr)
    lag_sum = np.bincount(sidx[step_ok], weights=dframe[step_ok].astype(float), minlength=n_tr)
    sq = np.bincount(sidx[step_ok], weights=(dx**2 + dy**2)[step_ok], minlength=n_tr)
    pidx = tix[:-2]
    prod = (dx[:-1] * dx[1:] + dy[:-1] * dy[1:])
    n_pairs = np.bincount(pidx[pair_ok], minlength=n_tr)
    cov = np.bincount(pidx[pair_ok], weights=prod[pair_ok], minlength=n_tr)
    n_points = np.bincount(tix, minlength=n_tr)
    # Consecutive-frame moments, frames missed inside the track, and pairs
    # exactly 3 frames apart (see the TrackDiffusion attributes).
    step1 = step_ok & (dframe == 1)
    n_steps1 = np.bincount(sidx[step1], minlength=n_tr)
    sq1 = np.bincount(sidx[step1], weights=(dx**2 + dy**2)[step1], minlength=n_tr)
    pair1 = step1[:-1] & step1[1:]
    n_pairs1 = np.bincount(pidx[pair1], minlength=n_tr)
    missed = np.bincount(sidx[step_ok], weights=(dframe[step_ok] - 1).astype(float),
                         minlength=n_tr)
    sq2, n2 = _lag_pairs(tix, fr, x * px, y * px, lag=2, n_segments=n_tr)
    sq3, n3 = _lag_pairs(tix, fr, x * px, y * px, lag=3, n_segments=n_tr)

    inv_survival, hidden_area = (_shadow_weights(tracks, order) if shadow_correction
                                 else (None, None))
    visible = (None if inv_survival is None
               else np.bincount(tix, weights=inv_survival, minlength=n_tr))

    keep = (n_steps >= min_steps) & (n_pairs >= 1)
    if not np.any(keep):
        raise InsufficientData(
            f"{source}: none of {n_tr} tracks has {min_steps} consecutive-frame steps; "
            "record longer videos or lower min-steps"
        )

    with np.errstate(invalid="ignore", divide="ignore"):
        mean_sq_all = sq / (2.0 * n_steps)  # per axis
        mean_sq1_all = sq1 / (2.0 * n_steps1)
        mean_sq2_all = sq2 / (2.0 * n2)
        mean_sq3_all = sq3 / (2.0 * n3)
        mean_cov = cov / (2.0 * n_pairs)
        mean_lag_all = lag_sum / n_steps
    mean_sq, mean_cov, lag = mean_sq_all[keep], mean_cov[keep], mean_lag_all[keep]
    k = n_steps[keep].astype(float)
    if method == "cve":
        d_est = (mean_sq + 2.0 * mean_cov) / (2.0 * lag * dt)
        s2 = 2.0 * blur * d_est * dt - mean_cov
        d_var = cve_variance(d_est, s2, k, frame_interval_s=dt, blur=blur)
    else:
        d_est = mean_sq / (2.0 * lag * dt)
        s2 = np.full_like(d_est, np.nan)
        # Chi-square law of 2k squared steps (ignores the step correlation).
        d_var = d_est**2 / k

    # Robust brightness per track; mean log intensity for the depth model.
    order = np.lexsort((inten, tix))
    inten_sorted = inten[order]
    bounds = np.concatenate(([0], np.cumsum(n_points)))
    q_idx = bounds[:-1] + np.floor(0.75 * (n_points - 1)).astype(np.int64)
    upper_q = inten_sorted[q_idx]
    pos = inten > 0
    with np.errstate(divide="ignore", invalid="ignore"):
        logsum = np.bincount(tix[pos], weights=np.log(inten[pos]), minlength=n_tr)
        npos = np.bincount(tix[pos], minlength=n_tr)
        mean_log = np.where(npos > 0, logsum / np.maximum(npos, 1), np.nan)
    floor, floor_method = _intensity_floor(tracks, inten[pos] if np.any(pos) else inten[:0])
    mean_log_peak, peak_thr = _mean_log_peak(tracks, tix, n_tr)
    is_short = (n_steps >= 1) & ~keep
    # every consecutive-frame step, by the kept / short row of its segment
    step_seg = sidx[step1]
    step_sq = (dx**2 + dy**2)[step1]
    kept_row = np.full(n_tr, -1, dtype=np.int64)
    kept_row[keep] = np.arange(int(keep.sum()))
    short_row = np.full(n_tr, -1, dtype=np.int64)
    short_row[is_short] = np.arange(int(is_short.sum()))
    in_kept = kept_row[step_seg] >= 0
    in_short = short_row[step_seg] >= 0
    short = ShortTracks(
        track_id=uniq[is_short].astype(np.int64),
        n_steps=n_steps[is_short].astype(np.int64),
        n_pairs=n_pairs[is_short].astype(np.int64),
        n_points=n_points[is_short].astype(np.int64),
        mean_step_sq_m2=mean_sq_all[is_short],
        mean_log_intensity=mean_log[is_short],
        mean_lag=mean_lag_all[is_short],
        mean_log_peak=None if mean_log_peak is None else mean_log_peak[is_short],
        mean_step_sq1_m2=mean_sq1_all[is_short],
        n_steps1=n_steps1[is_short].astype(np.int64),
        n_pairs1=n_pairs1[is_short].astype(np.int64),
        missed_frames=missed[is_short],
        visible_points=None if visible is None else visible[is_short],
        step1_sq_m2=step_sq[in_short],
        step1_row=short_row[step_seg[in_short]],
    )

    return TrackDiffusion(
        track_id=uniq[keep].astype(np.int64),
        n_steps=n_steps[keep].astype(np.int64),
        n_pairs=n_pairs[keep].astype(np.int64),
        n_points=n_points[keep].astype(np.int64),
        diffusion_m2_per_s=d_est,
        diffusion_var=d_var,
        localization_var_m2=s2,
        mean_step_sq_m2=mean_sq,
        lag1_cov_m2=mean_cov,
        intensity=upper_q[keep],
        mean_log_intensity=mean_log[keep],
        frame_interval_s=dt,
        exposure_s=acquisition.exposure_s,
        blur_factor=blur,
        intensity_floor=floor,
        intensity_floor_method=floor_method,
        method=method,
        source=tracks.source,
        short=short,
        mean_lag=lag,
        mean_log_peak=None if mean_log_peak is None else mean_log_peak[keep],
        peak_threshold=peak_thr,
        mean_step_sq1_m2=mean_sq1_all[keep],
        n_steps1=n_steps1[keep].astype(np.int64),
        n_pairs1=n_pairs1[keep].astype(np.int64),
        mean_lag2_sq_m2=mean_sq2_all[keep],
        n_lag2=n2[keep].astype(np.int64),
        mean_lag3_sq_m2=mean_sq3_all[keep],
        n_lag3=n3[keep].astype(np.int64),
        missed_frames=missed[keep],
        visible_points=None if visible is None else visible[keep],
        hidden_area_px2=hidden_area,
        step1_sq_m2=step_sq[in_kept],
        step1_row=kept_row[step_seg[in_kept]],
    )


def _lag_pairs(seg: np.ndarray, fr: np.ndarray, x_m: np.ndarray, y_m: np.ndarray, *, lag: int,
               n_segments: int) -> tuple[np.ndarray, np.ndarray]:
    """Per segment: sum of squared displacements (x and y) between rows exactly
    ``lag`` frames apart, and the number of such pairs (rows sorted by segment
    and frame, one row per frame)."""
    total = np.zeros(n_segments)
    count = np.zeros(n_segments, dtype=np.int64)
    for s in range(1, lag + 1):
        if s >= len(seg):
            break
        m = (seg[s:] == seg[:-s]) & (fr[s:] - fr[:-s] == lag)
        if not m.any():
            continue
        owner = seg[:-s][m]
        d2 = (x_m[s:] - x_m[:-s])[m] ** 2 + (y_m[s:] - y_m[:-s])[m] ** 2
        total += np.bincount(owner, weights=d2, minlength=n_segments)
        count += np.bincount(owner, minlength=n_segments)
    return total, count


# Spots whose band-passed peak lies this many thresholds above it, unsaturated,
# measure the intensity per unit of peak (near the threshold the peak's noise
# selects spots whose integrated intensity came out low).
_FLOOR_PEAK_RANGE = (2.0, 30.0)
_MIN_FLOOR_SPOTS = 50


def _intensity_floor(tracks: Tracks, positive_intensity: np.ndarray) -> tuple[float, str]:
    """The detection threshold in integrated-intensity units, and how it was found
    (``"detection"`` or ``"dimmest-spots"``).

    Detection compares a spot's band-passed peak with ``tracks.threshold``; for
    spots of one shape the integrated intensity is a fixed multiple of the
    peak, so the threshold maps to ``threshold x median(intensity / peak)``.
    The dimmest intensities (0.5th percentile, the fallback when the tracks
    carry no peaks) are noise-selected and fall with the number of spots
    near the threshold: on simulated 12-bit videos the floor of 100 nm
    polystyrene beads came out 0.45 ln units above that of 100 nm EVs seen by
    the same camera, and the concentration after a bead calibration 13 %
    low (6 seed pairs, SD 3 %).
    """
    thr = float(tracks.threshold)
    peak = getattr(tracks, "peak", None)
    if peak is not None and np.isfinite(thr) and thr > 0:
        pk = np.asarray(peak, dtype=float)
        inten = np.asarray(tracks.intensity, dtype=float)
        sat = getattr(tracks, "saturated", None)
        use = (inten > 0) & (pk >= _FLOOR_PEAK_RANGE[0] * thr) & (pk <= _FLOOR_PEAK_RANGE[1] * thr)
        if sat is not None:
            use &= ~np.asarray(sat, dtype=bool)
        if int(use.sum()) >= _MIN_FLOOR_SPOTS:
            return float(thr * np.median(inten[use] / pk[use])), "detection"
    # background-subtracted intensities can be <= 0 for the faintest spots
    if positive_intensity.size == 0:
        return float("nan"), "dimmest-spots"
    return float(np.percentile(positive_intensity, 0.5)), "dimmest-spots"


def _mean_log_peak(tracks: Tracks, tix: np.ndarray, n_tr: int):
    """Per segment mean ln(peak), and the peak threshold.

    A saturated spot's peak is measured on the clipped image, a lower bound
    of its true peak. It is kept at that bound: leaving saturated spots out
    (as before) drops exactly the brightest spots of a bright class, and the
    mean of ln(min(I, c)) always lies between that of the unsaturated spots
    and the true mean. On a simulated 8-bit 70/140 nm mixture (29 % of the
    140 nm spots saturated) the fitted brightness exponent moved from 3.1 to
    4.0 (truth 6) and the 70 nm number fraction from 0.47 to 0.51.

    Returns ``(None, nan)`` when the tracks carry no usable peaks or threshold.
    """
    thr = float(tracks.threshold)
    peak = getattr(tracks, "peak", None)
    if peak is None or not (np.isfinite(thr) and thr > 0):
        return None, float("nan")
    order = np.lexsort((np.asarray(tracks.frame), np.asarray(tracks.track_id)))
    pk = np.asarray(peak, dtype=float)[order]
    ok = np.isfinite(pk) & (pk > 0)
    if not np.any(ok):
        return None, float("nan")
    lsum = np.bincount(tix[ok], weights=np.log(pk[ok]), minlength=n_tr)
    cnt = np.bincount(tix[ok], minlength=n_tr)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(cnt > 0, lsum / np.maximum(cnt, 1), np.nan), thr


_TRACK_FIELDS = ("track_id", "n_steps", "n_pairs", "n_points", "diffusion_m2_per_s",
                 "diffusion_var", "localization_var_m2", "mean_step_sq_m2", "lag1_cov_m2",
                 "intensity", "mean_log_intensity")
_SHORT_FIELDS = ("track_id", "n_steps", "n_pairs", "n_points", "mean_step_sq_m2",
                 "mean_log_intensity")
# Optional per-track moments: pooled only when every part has them.
_TRACK_LAG_FIELDS = ("mean_step_sq1_m2", "n_steps1", "n_pairs1", "mean_lag2_sq_m2", "n_lag2",
                     "mean_lag3_sq_m2", "n_lag3", "missed_frames", "visible_points")
_SHORT_LAG_FIELDS = ("mean_step_sq1_m2", "n_steps1", "n_pairs1", "missed_frames",
                     "visible_points")


def _pool_optional(objects, names) -> dict:
    out = {}
    for name in names:
        values = [getattr(o, name) for o in objects]
        if values and all(v is not None for v in values):
            out[name] = np.concatenate(values)
    return out


def _pool_steps(objects) -> dict:
    """Steps of several parts, rows offset by the rows before (only when all have them)."""
    if not objects or any(o.step1_row is None for o in objects):
        return {}
    rows, offset = [], 0
    for o in objects:
        rows.append(o.step1_row + offset)
        offset += len(o)
    return {"step1_sq_m2": np.concatenate([o.step1_sq_m2 for o in objects]),
            "step1_row": np.concatenate(rows)}


def combine_diffusion(parts) -> TrackDiffusion:
    """Pool the tracks of several videos of one sample (as NanoSight's 3-5 captures).

    Parameters
    ----------
    parts : sequence of TrackDiffusion
        Same frame interval, exposure and method. Track ids are renumbered so
        they stay unique (video v's ids are offset by the ids used before it).

    Returns
    -------
    TrackDiffusion
        All tracks; ``intensity_floor`` is the median of the videos' floors
        (the same camera settings are assumed), ``source`` joins the sources.

    Raises
    ------
    InvalidInput
        No parts, or parts recorded with a different frame rate, exposure or
        estimated with a different method.
    """
    parts = list(parts)
    if not parts:
        raise InvalidInput("no diffusion results to combine")
    first = parts[0]
    for p in parts[1:]:
        if (not np.isclose(p.frame_interval_s, first.frame_interval_s, rtol=1e-9)
                or not np.isclose(p.exposure_s, first.exposure_s, rtol=1e-9, atol=1e-12)
                or p.method != first.method):
            raise InvalidInput(
                f"cannot pool {p.source or 'a video'} with {first.source or 'the first video'}: "
                "frame rate, exposure and method must be the same"
            )
    offset = 0
    cols = {name: [] for name in _TRACK_FIELDS}
    short_cols = {name: [] for name in _SHORT_FIELDS}
    for p in parts:
        cols.setdefault("mean_lag", []).append(p.lags())
        if p.short is not None:
            short_lag = (np.ones(len(p.short)) if p.short.mean_lag is None
                         else np.asarray(p.short.mean_lag, dtype=float))
            short_cols.setdefault("mean_lag", []).append(short_lag)
        ids = [p.track_id] + ([p.short.track_id] if p.short is not None else [])
        top = max((int(a.max()) for a in ids if len(a)), default=-1)
        for name in _TRACK_FIELDS:
            value = getattr(p, name)
            cols[name].append(value + offset if name == "track_id" else value)
        if p.short is not None:
            for name in _SHORT_FIELDS:
                value = getattr(p.short, name)
                short_cols[name].append(value + offset if name == "track_id" else value)
        offset += top + 1
    merged = {name: np.concatenate(v) for name, v in cols.items()}
    merged.update(_pool_optional(parts, _TRACK_LAG_FIELDS))
    merged.update(_pool_steps(parts))
    short = None
    if any(p.short is not None for p in parts):
        shorts = [p.short for p in parts if p.short is not None]
        short = ShortTracks(**{name: np.concatenate(v) for name, v in short_cols.items()},
                            **_pool_optional(shorts, _SHORT_LAG_FIELDS), **_pool_steps(shorts))
    floors = [p.intensity_floor for p in parts if np.isfinite(p.intensity_floor)]
    peaks_known = all(p.mean_log_peak is not None for p in parts)
    if peaks_known:
        merged["mean_log_peak"] = np.concatenate([p.mean_log_peak for p in parts])
        if short is not None:
            short = ShortTracks(**{f.name: getattr(short, f.name) for f in fields(short)
                                   if f.name != "mean_log_peak"},
                                mean_log_peak=np.concatenate(
                                    [p.short.mean_log_peak if p.short.mean_log_peak is not None
                                     else np.full(len(p.short), np.nan)
                                     for p in parts if p.short is not None]))
    thrs = [p.peak_threshold for p in parts if np.isfinite(p.peak_threshold)]
    return TrackDiffusion(
        **merged,
        frame_interval_s=first.frame_interval_s,
        exposure_s=first.exposure_s,
        blur_factor=first.blur_factor,
        intensity_floor=float(np.median(floors)) if floors else float("nan"),
        intensity_floor_method=("detection" if all(p.intensity_floor_method == "detection"
                                                   for p in parts) else "dimmest-spots"),
        method=first.method,
        source="; ".join(p.source for p in parts if p.source),
        short=short,
        peak_threshold=float(np.median(thrs)) if (thrs and peaks_known) else float("nan"),
    )
