"""Size distribution from per-track diffusion: Walker's EM deconvolution or a histogram.

Three distributions are computed on one log-spaced diameter grid:

* ``raw_number_fraction``: fraction of *tracks* by size (what a histogram of
  per-track sizes estimates, without its noise for ``method="em"``);
* ``present_fraction``: particles *present per frame* by size: tracks weighted
  by the frames they were seen (a particle that stays in view longer counts
  for more frames; small particles leave the slab sooner);
* ``number_fraction`` (the main result): ``present_fraction`` divided by the
  relative visible depth of the sheet for each size (bright, large particles
  are seen over a deeper slab), i.e. the number per volume of sample.
  Without a usable brightness model (or ``detection_correction=False``) it
  equals ``present_fraction``.

Tracks shorter than ``min_steps`` (kept aside by
:func:`~exotrace.nta.diffusion.track_diffusion` in ``short``) enter the EM
likelihood, the time weights and the brightness model: they are more often
from small particles and from the edges of the visible slab. The histogram
method cannot place them and ignores them.

The per-frame noise in the likelihood is, by default, a law in the tracks'
brightness measured from their own displacements at lags 1 and 2
(:mod:`exotrace.nta._sizing_noise`): dim particles are localized worse, and a
single average would shift both small and large sizes when noise is large.
Tracks are weighted by the frames they were seen, each spot counted back by
the chance that a spot of its brightness is hidden by a brighter neighbour
(``TrackDiffusion.visible_points``, :mod:`exotrace.nta._shadowing`).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np

from ..errors import InsufficientData, InvalidInput
from ..physics import (
    diameter_nm_from_diffusion,
    diffusion_m2_per_s_from_diameter,
    effective_viscosity_pa_s,
)
from ._link import search_radius_px
from ._sizing_depth import (
    BrightnessModel,
    brightness_log_likelihood,
    fit_brightness_model,
    grid_log_brightness_ratio,
)
from ._sizing_em import em_mixture, gamma_log_likelihood
from ._sizing_noise import (
    LagNoise,
    blur_from_bright_tracks,
    fit_localization_model,
    lag_noise_by_brightness,
)
from ._sizing_outliers import step_mixture_log_likelihood, wrong_link_rate
from ._sizing_selection import (
    SELECTION_SCALE,
    SelectionCalibration,
    effective_blur_factor,
    selection_weight,
)
from ._sizing_stats import distribution_stats, grid_edges_nm
from ._types import Acquisition
from .diffusion import TrackDiffusion, f2_upper_quantile

__all__ = ["BrightnessModel", "SizeDistribution", "default_grid_nm", "size_distribution"]

# EMS smoothing, grid steps (~2 % in diameter each): the least that leaves a
# broad log-normal EV population (median 110 nm, sigma_ln 0.3) with one peak
# on 6 of 6 simulated seeds (0.4 rippled into 2 peaks on one, 0.35 on four).
# On simulated videos 0.5 / 0.45 gave 100 nm D90/D10 1.204 / 1.191 (4 seeds)
# with the same D50, peaks and mixture fractions.
DEFAULT_EM_SMOOTHING = 0.45

_METHODS = ("em", "histogram")
_WEIGHTINGS = ("time", "track")
_LOCALIZATION_MODELS = ("lag", "intensity", "global")


def default_grid_nm(n: int = 200, low_nm: float = 20.0, high_nm: float = 1000.0) -> np.ndarray:
    """Log-spaced diameter grid, nm (default 200 points, 20-1000 nm, ~2 % apart)."""
    return np.geomspace(low_nm, high_nm, n)


@dataclass(frozen=True)
class SizeDistribution:
    """A number-weighted size distribution and its summary.

    Attributes
    ----------
    diameter_nm : ndarray, shape (g,)
        Grid of diameters (log-spaced), nm.
    number_fraction : ndarray, shape (g,)
        Main result: number fraction per grid bin, corrected for time in view
        and size-dependent detection depth; sums to 1.
    mean_nm, sd_nm, mode_nm, d10_nm, d50_nm, d90_nm : float
        Statistics of ``number_fraction``, nm.
    peaks_nm : list of float
        Local maxima that stand out by the peak prominence, nm, increasing.
    n_tracks : int
        Tracks with a per-track estimate (``n_short_tracks`` more were used by EM).
    n_short_tracks : int
        Short tracks used by the EM (1 to ``min_steps - 1`` steps).
    track_diameter_nm : ndarray, shape (n_tracks,)
        Per-track sizes from the per-track diffusion estimates, nm (``nan``
        for non-positive estimates).
    warnings : list of str
        Conditions that make the result less trustworthy.
    raw_number_fraction : ndarray, shape (g,)
        Fraction of tracks by size (no weighting, no correction).
    present_fraction : ndarray, shape (g,)
        Particles present per frame by size (time-weighted, no depth correction).
    relative_depth : ndarray or None, shape (g,)
        Visible depth of the sheet per size relative to its mean over
        ``present_fraction``; ``None`` without detection correction.
    brightness : BrightnessModel or None
        Fitted brightness and threshold model.
    log_brightness_ratio : ndarray or None, shape (g,)
        u = ln(I0 / T) per grid point used for the depth (visible depth is
        proportional to sqrt(u)); ``None`` without detection correction.
    intensity_log_brightness_ratio : ndarray or None, shape (g,)
        The same u from integrated intensities and their dimmest-spot floor,
        the units of a bead calibration (:func:`~exotrace.nta.concentration.calibrate`);
        set only when ``log_brightness_ratio`` came from band-passed peaks.
    method : str
        ``"em"`` or ``"histogram"``.
    weighting : str
        ``"time"`` or ``"track"``.
    localization_var_m2 : float
        Mean localization variance of the tracks, m^2 per axis.
    localization_model : tuple or None
        (a, c) of sigma^2 = a + c / I (m^2, m^2 x intensity) when the
        brightness-dependent model was used, else ``None``.
    iterations : int
        EM iterations (0 for the histogram).
    converged : bool
        Whether EM met its tolerance.
    selection : SelectionCalibration or None
        The effective blur factor used by the likelihood (``None`` when the
        nominal one was used without calibration).
    detection_efficiency : ndarray or None, shape (g,)
        Fraction of in-view frames in which a particle of each size was
        detected (from gaps inside tracks), part of the depth correction.
    lag_noise : LagNoise or None
        The per-frame noise by brightness class that the likelihood used
        (``localization_model="lag"``); ``None`` with another model.
    wrong_link_rate : float or None
        Fraction of consecutive steps taken as jumps to another particle by
        the likelihood (``wrong_links``); ``None`` when not used.
    """

    diameter_nm: np.ndarray
    number_fraction: np.ndarray
    mean_nm: float
    sd_nm: float
    mode_nm: float
    d10_nm: float
    d50_nm: float
    d90_nm: float
    peaks_nm: list
    n_tracks: int
    track_diameter_nm: np.ndarray
    warnings: list = field(default_factory=list)
    n_short_tracks: int = 0
    raw_number_fraction: np.ndarray | None = None
    present_fraction: np.ndarray | None = None
    relative_depth: np.ndarray | None = None
    brightness: BrightnessModel | None = None
    log_brightness_ratio: np.ndarray | None = None
    intensity_log_brightness_ratio: np.ndarray | None = None
    method: str = "em"
    weighting: str = "time"
    localization_var_m2: float = 0.0
    localization_model: tuple | None = None
    iterations: int = 0
    converged: bool = True
    selection: SelectionCalibration | None = None
    detection_efficiency: np.ndarray | None = None
    lag_noise: LagNoise | None = None
    wrong_link_rate: float | None = None

    @property
    def span(self) -> float:
        """(D90 - D10) / D50, dimensionless."""
        return (self.d90_nm - self.d10_nm) / self.d50_nm

    def summary(self) -> dict:
        """The scalar results as a plain dict (nm)."""
        return {
            "n_tracks": self.n_tracks,
            "mean_nm": self.mean_nm,
            "mode_nm": self.mode_nm,
            "sd_nm": self.sd_nm,
            "d10_nm": self.d10_nm,
            "d50_nm": self.d50_nm,
            "d90_nm": self.d90_nm,
            "peaks_nm": list(self.peaks_nm),
            "warnings": list(self.warnings),
        }


def _check_grid(grid_nm) -> np.ndarray:
    if grid_nm is None:
        return default_grid_nm()
    g = np.asarray(grid_nm, dtype=float)
    if g.ndim != 1 or g.size < 10:
        raise InvalidInput(f"grid-nm must be a 1-D array of at least 10 diameters, got shape {g.shape}")
    if not np.all(np.isfinite(g)) or np.any(g <= 0) or np.any(np.diff(g) <= 0):
        raise InvalidInput("grid-nm must hold positive, finite, strictly increasing diameters in nm")
    return g


def _histogram_posterior(track_d_nm: np.ndarray, grid: np.ndarray) -> np.ndarray:
    edges = grid_edges_nm(grid)
    idx = np.searchsorted(edges, track_d_nm, side="right") - 1
    ok = np.isfinite(track_d_nm) & (idx >= 0) & (idx < len(grid))
    post = np.zeros((len(track_d_nm), len(grid)))
    post[np.flatnonzero(ok), idx[ok]] = 1.0
    return post


# Fewest tracks with a peak for the peak-based depth model; with
# fewer, the integrated intensities and their 0.5th-percentile floor are used.
_MIN_PEAK_TRACKS = 10
_JOINT_ROUNDS = 3
_JOINT_OWN = True
_JOINT_WEIGHT = 1.0


def _depth_brightness(diffusion: TrackDiffusion, short) -> tuple[np.ndarray, float]:
    """Per-track log brightness and threshold for the detection-depth model.

    Detection compares a spot's band-passed peak with the threshold, so when
    the tracks carry peaks (``mean_log_peak``, saturated spots at their clipped peak) and
    the threshold in the same units, those are used: the threshold is then
    exact instead of estimated from the dimmest integrated intensities, which
    scale differently with motion blur. Otherwise the integrated intensities
    and ``intensity_floor``.
    """
    logi = diffusion.mean_log_intensity
    if short is not None:
        logi = np.concatenate((logi, short.mean_log_intensity))
    peak = diffusion.mean_log_peak
    thr = diffusion.peak_threshold
    if peak is None or not (np.isfinite(thr) and thr > 0):
        return logi, diffusion.intensity_floor
    if short is not None:
        short_peak = (short.mean_log_peak if short.mean_log_peak is not None
                      else np.full(len(short), np.nan))
        peak = np.concatenate((peak, short_peak))
    if np.sum(np.isfinite(peak)) < _MIN_PEAK_TRACKS:
        return logi, diffusion.intensity_floor
    return peak, float(thr)


# Width of a brightness class of tracks, ln units (a factor 1.65 in peak):
# a 2x larger particle is 64x brighter at the same depth, so the classes of a
# 70/140 nm mixture share only the dimmest ones. 0.25 gave the same mixture
# fractions on simulated videos.
BRIGHTNESS_STRATUM_WIDTH = 0.5
# Fewest tracks with a known brightness for brightness classes.
_MIN_STRATA_TRACKS = 20


def _brightness_strata(log_brightness, floor) -> np.ndarray | None:
    """Brightness class of every row (unknown brightness: a class of its own), or None."""
    y = np.asarray(log_brightness, dtype=float)
    if not (np.isfinite(floor) and floor > 0) or np.sum(np.isfinite(y)) < _MIN_STRATA_TRACKS:
        return None
    y = y - np.log(floor)
    known = np.isfinite(y)
    strata = np.full(len(y), -1, dtype=np.int64)
    strata[known] = np.floor(np.maximum(y[known], 0.0) / BRIGHTNESS_STRATUM_WIDTH)
    return strata


def _consecutive_rows(diffusion: TrackDiffusion, short, m_all, k_all, p_all, lag_all):
    """Per-row likelihood inputs from consecutive-frame steps only.

    Rows (kept tracks, then short ones) with at least one consecutive-frame
    step use those steps only (lag 1); the rare rows whose steps all cross a
    gap keep their bridged steps.
    """
    m1, k1, p1 = (diffusion.mean_step_sq1_m2, diffusion.n_steps1, diffusion.n_pairs1)
    if short is not None:
        if short.mean_step_sq1_m2 is None:
            m1 = np.concatenate((m1, np.full(len(short), np.nan)))
            k1 = np.concatenate((k1, np.zeros(len(short), np.int64)))
            p1 = np.concatenate((p1, np.zeros(len(short), np.int64)))
        else:
            m1 = np.concatenate((m1, short.mean_step_sq1_m2))
            k1 = np.concatenate((k1, short.n_steps1))
            p1 = np.concatenate((p1, short.n_pairs1))
    use = np.asarray(k1) > 0
    return (np.where(use, m1, m_all), np.where(use, k1, k_all), np.where(use, p1, p_all),
            np.where(use, 1.0, lag_all))


def _consecutive_moments(diffusion: TrackDiffusion, short, m_all, k_all, p_all, lag_all,
                         track_s2):
    """Per-row likelihood inputs from consecutive-frame steps, and R_eff.

    Without a usable calibration every row keeps all its steps and the
    nominal blur factor applies.
    """
    n = len(diffusion)
    s2 = np.broadcast_to(np.asarray(track_s2, dtype=float), (len(m_all),))[:n]
    y_all = _log_peak_ratio(diffusion, short)
    selection = effective_blur_factor(
        diffusion.mean_step_sq1_m2, diffusion.n_steps1, diffusion.mean_lag2_sq_m2,
        diffusion.n_lag2, diffusion.mean_lag3_sq_m2, diffusion.n_lag3, s2,
        frame_interval_s=diffusion.frame_interval_s, blur=diffusion.blur_factor,
        log_peak_ratio=None if y_all is None else y_all[:n])
    if selection.reference_diffusion_m2_per_s is None:
        # no calibration: all steps (gaps bridged) with the nominal factor
        return m_all, k_all, p_all, lag_all, selection, diffusion.blur_factor
    if y_all is None:
        blur_rows = np.full(len(m_all), selection.blur_factor)
    else:
        blur_rows = diffusion.blur_factor + selection.delta * selection_weight(
            y_all, SELECTION_SCALE)
    m_new, k_new, p_new, lag_new = _consecutive_rows(diffusion, short, m_all, k_all, p_all,
                                                     lag_all)
    return m_new, k_new, p_new, lag_new, selection, blur_rows[:, None]


def _row_steps(diffusion: TrackDiffusion, short):
    """Consecutive steps of all rows (kept tracks, then short ones): (r^2, row) or None."""
    if diffusion.step1_row is None:
        return None
    r2, rows = [diffusion.step1_sq_m2], [diffusion.step1_row]
    if short is not None:
        if short.step1_row is None:
            return None
        r2.append(short.step1_sq_m2)
        rows.append(short.step1_row + len(diffusion))
    return np.concatenate(r2), np.concatenate(rows)


# A track gets the step law when its longest step is longer than a Brownian
# track of its length shows with probability 20 % (the F(2, 2(k - 1)) law of
# a step against the mean of the others), or when it has one or two steps
# (too few to tell). The others keep the gamma law, which equals the step
# law wherever they are likely at all. 5 % left a 4 % rate of jumps up to
# 25 px (several per track) putting 1.5 % of 70 nm EVs below 45 nm; 20 %
# none, with the step law on ~15 % of the steps.
_SUSPECT_ALPHA = 0.2


def _wrong_link_rows(log_lik: np.ndarray, diffusion: TrackDiffusion, short,
                     acquisition: Acquisition, grid_d: np.ndarray, k_all, p_all,
                     track_s2) -> float | None:
    """Replace, in place, the likelihood of every row with consecutive steps by the
    Brownian-or-wrong-link law (:mod:`exotrace.nta._sizing_outliers`); the rate."""
    steps = _row_steps(diffusion, short)
    if steps is None or len(steps[0]) == 0:
        return None
    r2, row = steps
    n_rows = log_lik.shape[0]
    disc_r2 = (search_radius_px(acquisition) * acquisition.pixel_size_m) ** 2
    rate = wrong_link_rate(r2, row, n_rows, disc_r2_m2=disc_r2)
    # Only tracks with a step far longer than their others' mean (or too few
    # steps to tell) can change: for the rest the step law equals the gamma
    # law wherever the track is likely at all.
    count = np.bincount(row, minlength=n_rows)
    total = np.bincount(row, weights=r2, minlength=n_rows)
    longest = np.zeros(n_rows)
    np.maximum.at(longest, row, r2)
    with np.errstate(invalid="ignore", divide="ignore"):
        others = (total - longest) / np.maximum(count - 1, 1)
    crit = f2_upper_quantile(_SUSPECT_ALPHA / np.maximum(count, 1),
                             2.0 * np.maximum(count - 1, 1))
    suspect = (count > 0) & ((count <= 2) | (longest > crit * others))
    use = suspect[row]
    r2, row = r2[use], row[use]
    if len(r2) == 0:
        return rate
    has = np.unique(row)
    local = np.full(n_rows, -1, dtype=np.int64)
    local[has] = np.arange(len(has))
    dd = grid_d[None, :] * diffusion.frame_interval_s
    s2 = np.broadcast_to(np.asarray(track_s2, dtype=float), (n_rows,))[has][:, None]
    blur = diffusion.blur_factor
    v = np.maximum(2.0 * dd * (1.0 - 2.0 * blur) + 2.0 * s2, 1e-30)
    c = 2.0 * blur * dd - s2
    k = np.asarray(k_all, dtype=float)[has][:, None]
    p = np.asarray(p_all, dtype=float)[has][:, None]
    temper = 1.0 / (1.0 + 2.0 * p * (c / v) ** 2 / k)
    log_lik[has] = step_mixture_log_likelihood(r2, local[row], v, temper, rate=rate,
                                               disc_r2_m2=disc_r2)
    return rate


def _log_peak_ratio(diffusion: TrackDiffusion, short) -> np.ndarray | None:
    """Per row (kept tracks, then short ones) mean ln(peak / threshold), or None."""
    thr = diffusion.peak_threshold
    if diffusion.mean_log_peak is None or not (np.isfinite(thr) and thr > 0):
        return None
    y = diffusion.mean_log_peak - np.log(thr)
    if short is not None:
        ys = (short.mean_log_peak - np.log(thr) if short.mean_log_peak is not None
              else np.full(len(short), np.nan))
        y = np.concatenate((y, ys))
    return y


def _brightness_sharpened(posterior: np.ndarray, model, grid: np.ndarray, log_brightness,
                          points) -> np.ndarray:
    """Track posteriors over the grid given diffusion *and* brightness.

    Used only to measure brightness (and detection efficiency) per size for
    the depth model, never for the size distribution itself. With the
    diffusion posteriors alone, tracks that the EM puts partly in the wrong
    peak pull the peaks' brightness together (on a simulated 70/140 nm
    mixture the visible-depth ratio came out 2.3 where the detected
    particles' true depths give 2.6-3.1); their brightness under the
    light-sheet model (:func:`brightness_log_likelihood`) tells the classes
    apart much better (their spots' ln(peak / threshold) overlap only in the
    tails), and the ratio comes out 2.57. Rows without a brightness keep their
    diffusion posterior.
    """
    u_grid = grid_log_brightness_ratio(model, grid, posterior, log_brightness, points)
    # Only sizes some track could be (the likelihood is a tracks x sizes x
    # depth-nodes array: over the whole grid it cost more than the EM).
    active = np.flatnonzero(posterior.max(axis=0) > _SHARPEN_MIN_POSTERIOR)
    if active.size == 0:
        return posterior
    bl = brightness_log_likelihood(model, grid[active], log_brightness,
                                   log_ratio=u_grid[active], nodes=_SHARPEN_NODES)
    bl = bl - bl.max(axis=1, keepdims=True)
    sharp = np.zeros_like(posterior)
    sharp[:, active] = posterior[:, active] * np.exp(bl)
    total = sharp.sum(axis=1, keepdims=True)
    return np.where(total > 0, sharp / np.where(total > 0, total, 1.0), posterior)


# Grid points whose posterior is below this for every track are left out of
# the brightness sharpening (their share of any track is negligible).
_SHARPEN_MIN_POSTERIOR = 1e-9
# Depth nodes of that likelihood: with its 1.0 ln-unit spread, 16 nodes give
# the same number fractions as 64 to 0.001 on the simulated mixtures.
_SHARPEN_NODES = 16


def _detection_efficiency(posterior: np.ndarray, points: np.ndarray,
                          missed: np.ndarray | None) -> np.ndarray | None:
    """Fraction of frames a particle of each grid size is detected while in view.

    From the frames missed inside tracks (linking gaps): dim, small particles
    drop below the threshold in some frames even at the sheet centre, so
    they are seen over fewer frames than the depth model alone implies.
    """
    if missed is None:
        return None
    seen = (posterior * points[:, None]).sum(axis=0)
    spanned = (posterior * (points + missed)[:, None]).sum(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        eff = np.where(spanned > 0, seen / spanned, 1.0)
    return np.clip(eff, 0.05, 1.0)


def size_distribution(
    diffusion: TrackDiffusion,
    acquisition: Acquisition,
    *,
    method: str = "em",
    detection_correction: bool = True,
    joint_brightness: bool = False,
    grid_nm=None,
    weighting: str = "time",
    smoothing: float = DEFAULT_EM_SMOOTHING,
    max_iter: int = 5000,
    tol: float = 1e-9,
    min_tracks: int = 100,
    include_short: bool = True,
    localization_model: str = "lag",
    localization_var_m2: float | None = None,
    peak_prominence: float = 0.1,
    selection_calibration: bool = True,
    brightness_slope: float | None = None,
    depth_sharpening: bool = True,
    brightness_strata: bool = True,
    wrong_links: bool = True,
) -> SizeDistribution:
    """Number-weighted size distribution from per-track diffusion.

    Parameters
    ----------
    diffusion : TrackDiffusion
        From :func:`~exotrace.nta.diffusion.track_diffusion` (CVE recommended).
    acquisition : Acquisition
        Temperature (C), viscosity (cP), frame rate and exposure; must match the
        one ``diffusion`` was computed with.
    method : {"em", "histogram"}
        ``"em"``: Walker's maximum-likelihood deconvolution (see Notes).
        ``"histogram"``: histogram of per-track sizes (positive D only).
    detection_correction : bool
        Divide by the size-dependent visible depth of the sheet (see
        :mod:`exotrace.nta._sizing_depth`); only with ``weighting="time"``.
        When the tracks carry band-passed peaks and the detection threshold
        (``diffusion.mean_log_peak``), the depth model uses them instead of
        integrated intensities.
    joint_brightness : bool
        Off by default (see below). With ``method="em"``, detection correction
        and peaks: add each track's
        brightness likelihood under the light-sheet model
        (:func:`~exotrace.nta._sizing_depth.brightness_log_likelihood`) to its
        diffusion likelihood and re-run EM (3 rounds, refitting the brightness
        line each time). Brightness separates sizes that short tracks' diffusion
        blurs together. On simulated 1024 x 768 x 300 videos it raised the 70 nm
        number fraction of a 12-bit 70/140 nm 60:40 mixture from 0.37 to 0.54
        but moved the 140 nm peak to +9 % and widened 100 nm D90/D10 from 1.29
        to 1.38 (the brightness likelihood tilts sizes inside a peak), so it is
        not the default.
    grid_nm : array-like, optional
        Diameter grid, nm (default: 200 log-spaced points, 20-1000 nm).
    weighting : {"time", "track"}
        ``"time"`` weights each track by its points (particles present per
        frame); ``"track"`` counts tracks.
    smoothing : float
        SD, in grid steps, of the smoothing applied after each EM step
        (default :data:`DEFAULT_EM_SMOOTHING`).
    max_iter, tol : int, float
        EM stopping rule (iteration cap; rise in mean log-likelihood).
    min_tracks : int
        Fewer tracks give a warning (the distribution is uncertain).
    include_short : bool
        With ``method="em"``, also use the tracks too short for a per-track
        estimate (``diffusion.short``): their likelihood, frames and brightness.
        Leaving them out under-counts small particles.
    localization_model : {"lag", "intensity", "global"}
        ``"lag"`` (default, ``method="em"`` with lag moments): each track
        gets the per-frame term that the tracks' MSD(1) and MSD(2) imply at
        its brightness (:func:`~exotrace.nta._sizing_noise.lag_noise_by_brightness`),
        which holds localization error and the detection's preference for
        compact exposures together; the likelihood then uses consecutive
        steps with the nominal blur factor. On simulated 70/140 nm videos the
        per-track CVE model gave the 70 nm tracks 0.9-2.5 px^2 where their
        steps needed 0.1-0.6, and the 70 nm number fraction came out 0.03-0.07
        lower than with the lag model. Falls back to ``"intensity"`` without
        enough lag-2 pairs.
        ``"intensity"``: each track's localization variance from a fit of
        sigma^2 = a + c / I to the per-track CVE estimates (dim particles are
        localized worse), with the selection calibration below; falls back to
        ``"global"`` when brightness does not explain the noise.
        ``"global"``: one value, the step-weighted mean of the CVE estimates.
    localization_var_m2 : float, optional
        Fixed localization variance per axis (m^2), overriding the model.
    peak_prominence : float
        Peaks must stand out by this fraction of the highest bin.
    selection_calibration : bool
        Only with ``localization_model="intensity"`` (the lag model holds the
        selection already). With ``method="em"`` and tracks that carry consecutive-frame and lag-3
        moments: build each track's likelihood on its consecutive-frame steps
        with the effective blur factor measured from the tracks
        (:mod:`exotrace.nta._sizing_selection`), which corrects the
        detection's preference for compact (little-blurred) exposures. Off:
        all steps (gaps bridged) with the nominal blur factor. On simulated
        100 nm EV videos (30 ms exposure at 25 fps, four seeds) it moved D50
        from +3.5 % to +2.3 % and D90/D10 from 1.25 to 1.19.

    brightness_slope : float or None
        d-exponent of the peak brightness between sizes, used by the
        detection-depth model (6: Rayleigh scattering, d << wavelength); each
        size still uses its own tracks' brightness where it has enough of
        them. ``None`` fits the exponent to the tracks, which comes out low
        in mixtures (see :func:`~exotrace.nta._sizing_depth.fit_brightness_model`).
    depth_sharpening : bool
        Measure each size's brightness for the depth model on posteriors that
        also weigh each track's brightness (EM with band-passed peaks only);
        the size distribution itself stays diffusion-only. On a simulated
        70/140 nm 60:40 mixture the visible-depth ratio moves from 2.3 to
        2.57 (truth 2.6-3.1) and the 70 nm number fraction from 0.49 to 0.52.
    brightness_strata : bool
        With ``method="em"`` and spot brightness: give each brightness class
        of tracks (mean ln(peak / threshold) in steps of
        :data:`BRIGHTNESS_STRATUM_WIDTH`) its own prior over sizes, smooth in
        size (:func:`~exotrace.nta._sizing_em.em_mixture` with ``strata``).
        Dim tracks are mostly small particles; one prior for all tracks
        follows the long, bright tracks of the large ones and hands it to
        the short, dim tracks whose few steps cannot tell sizes apart. On
        simulated 70/140 nm 60:40 videos (4 seeds) the 70 nm number fraction
        error went from -0.14 to -0.06 (12-bit) and -0.15 to -0.075 (8-bit),
        with the 70 nm peak at 71 nm; 100 nm D50 and D90/D10 stayed the same
        (8 seeds). Not combined with ``joint_brightness`` (which already
        uses brightness).
    wrong_links : bool
        With the lag noise model and per-step data: each consecutive step is
        Brownian or, with a rate measured from the tracks, a jump to another
        particle (:mod:`exotrace.nta._sizing_outliers`), so that one wrong
        link does not make a whole track look fast.

    Returns
    -------
    SizeDistribution

    Raises
    ------
    InsufficientData
        No tracks.
    InvalidInput
        Unknown method/weighting, a bad grid, or an acquisition that does not
        match ``diffusion``.

    Notes
    -----
    The likelihood of a track's mean squared one-frame step given diameter d
    is a gamma law with mean 2 D dt (1 - 2R) + 2 sigma^2 and shape set by its
    steps and the correlation of adjacent steps; the mixture over the grid is
    found by smoothed EM (:mod:`exotrace.nta._sizing_em`) [1]_.

    References
    ----------
    .. [1] J. G. Walker, Meas. Sci. Technol. 23, 065605 (2012).
    """
    if method not in _METHODS:
        raise InvalidInput(f"size method must be one of {', '.join(_METHODS)}, got {method!r}")
    if weighting not in _WEIGHTINGS:
        raise InvalidInput(f"weighting must be one of {', '.join(_WEIGHTINGS)}, got {weighting!r}")
    if not np.isfinite(smoothing) or smoothing < 0:
        raise InvalidInput(f"smoothing must be >= 0 grid steps, got {smoothing}")
    n = len(diffusion)
    source = diffusion.source or "tracks"
    if n == 0:
        raise InsufficientData(f"{source}: no tracks to build a size distribution from")
    if abs(diffusion.frame_interval_s - acquisition.frame_interval_s) > 1e-9 * acquisition.frame_interval_s:
        raise InvalidInput(
            f"{source}: diffusion was estimated at {1 / diffusion.frame_interval_s:.6g} fps but the "
            f"acquisition says {acquisition.fps:.6g} fps"
        )
    grid = _check_grid(grid_nm)
    eta = effective_viscosity_pa_s(acquisition.temperature_c, acquisition.viscosity_cp)
    grid_d = diffusion_m2_per_s_from_diameter(grid, temperature_c=acquisition.temperature_c,
                                              viscosity_pa_s=eta)
    track_d_nm = np.asarray(diameter_nm_from_diffusion(
        diffusion.diffusion_m2_per_s, temperature_c=acquisition.temperature_c,
        viscosity_pa_s=eta), dtype=float).reshape(-1)
    warnings: list[str] = []
    if n < min_tracks:
        warnings.append(f"only {n} tracks: distribution is uncertain (at least {min_tracks} advised)")
    n_nonpos = int(np.sum(~(diffusion.diffusion_m2_per_s > 0)))
    if n_nonpos > 0.05 * n:
        warnings.append(f"{n_nonpos} of {n} tracks have a non-positive diffusion estimate "
                        "(short or noisy tracks): their per-track size is undefined")

    if localization_model not in _LOCALIZATION_MODELS:
        raise InvalidInput(f"localization model must be one of {', '.join(_LOCALIZATION_MODELS)}, "
                           f"got {localization_model!r}")
    short = diffusion.short if (include_short and method == "em") else None
    n_short = 0 if short is None else len(short)
    has_lags = all(v is not None for v in (diffusion.mean_step_sq1_m2, diffusion.mean_lag2_sq_m2,
                                           diffusion.mean_lag3_sq_m2))
    noise_model = None
    lag_noise = None
    if localization_var_m2 is None:
        s2v = diffusion.localization_var_m2
        ok = np.isfinite(s2v)
        s2 = float(np.average(s2v[ok], weights=diffusion.n_steps[ok])) if np.any(ok) else 0.0
        s2 = max(s2, 0.0)
        if localization_model == "lag" and method == "em" and has_lags:
            # brightness classes as for the strata: band-passed peaks over the
            # threshold, else integrated intensities over their floor
            logb, floor = _depth_brightness(diffusion, short if n_short else None)
            y_rows = (np.asarray(logb, dtype=float) - np.log(floor)
                      if np.isfinite(floor) and floor > 0
                      else np.full(len(diffusion) + n_short, np.nan))
            if acquisition.exposure_ms is None:
                # shutter time unknown: the blur from the brightest tracks
                blur_est = blur_from_bright_tracks(
                    diffusion.mean_step_sq1_m2, diffusion.n_steps1,
                    diffusion.mean_lag3_sq_m2, diffusion.n_lag3, y_rows)
                if blur_est is None:
                    warnings.append("exposure time unknown and too few bright tracks to "
                                    "measure the motion blur: sizes are not corrected for "
                                    "it (up to a third large); give the exposure")
                else:
                    diffusion = replace(diffusion, blur_factor=blur_est)
                    warnings.append(
                        f"exposure time unknown: motion blur measured from the brightest "
                        f"tracks, as from a {1000 * 6 * blur_est * diffusion.frame_interval_s:.0f}"
                        " ms shutter; give the exposure if it is known")
            lag_noise = lag_noise_by_brightness(
                diffusion.mean_step_sq1_m2, diffusion.n_steps1, diffusion.mean_lag2_sq_m2,
                diffusion.n_lag2, y_rows, frame_interval_s=diffusion.frame_interval_s,
                blur=diffusion.blur_factor, class_width=BRIGHTNESS_STRATUM_WIDTH)
        if localization_model == "intensity" or (localization_model == "lag"
                                                 and lag_noise is None):
            noise_model = fit_localization_model(s2v, diffusion.mean_log_intensity,
                                                 diffusion.n_steps, diffusion.mean_step_sq_m2)
    else:
        if not np.isfinite(localization_var_m2) or localization_var_m2 < 0:
            raise InvalidInput(f"localization-var-m2 must be >= 0, got {localization_var_m2}")
        s2 = float(localization_var_m2)

    m_all = diffusion.mean_step_sq_m2
    k_all, p_all = diffusion.n_steps, diffusion.n_pairs
    # frames seen (gaps inside tracks: detection efficiency) and frames in
    # view with the spots hidden by brighter neighbours counted back (the
    # weight of a track in the particles present per frame)
    seen_all, logi_all = diffusion.n_points.astype(float), diffusion.mean_log_intensity
    pts_all = diffusion.points()
    lag_all = diffusion.lags()
    if n_short:
        short_lag = (np.ones(n_short) if short.mean_lag is None
                     else np.asarray(short.mean_lag, dtype=float))
        lag_all = np.concatenate((lag_all, short_lag))
        m_all = np.concatenate((m_all, short.mean_step_sq_m2))
        k_all = np.concatenate((k_all, short.n_steps))
        p_all = np.concatenate((p_all, short.n_pairs))
        seen_all = np.concatenate((seen_all, short.n_points.astype(float)))
        short_pts = (short.n_points.astype(float) if (short.visible_points is None
                                                       or diffusion.visible_points is None)
                     else np.asarray(short.visible_points, dtype=float))
        pts_all = np.concatenate((pts_all, short_pts))
        logi_all = np.concatenate((logi_all, short.mean_log_intensity))
    logb_all, floor_b = _depth_brightness(diffusion, short if n_short else None)
    strata = (_brightness_strata(logb_all, floor_b)
              if method == "em" and brightness_strata and not joint_brightness else None)
    missed_all = diffusion.missed_frames
    if missed_all is not None and n_short:
        missed_all = (None if short.missed_frames is None
                      else np.concatenate((missed_all, short.missed_frames)))
    time_w = pts_all.astype(float)
    weights = time_w if weighting == "time" else np.ones(len(time_w))
    iterations, converged = 0, True
    track_s2 = s2
    if noise_model is not None:
        a, c = noise_model
        known = np.isfinite(logi_all)
        # Tracks without a usable brightness keep the global value.
        track_s2 = np.full(len(logi_all), s2)
        track_s2[known] = a + c * np.exp(-logi_all[known])
        # Keep the step-weighted mean equal to the pooled (unbiased) estimate.
        kept_known = known[:n]
        if np.any(kept_known):
            track_s2 += s2 - float(np.average(track_s2[:n], weights=k_all[:n]))
        track_s2 = np.maximum(track_s2, 0.0)
    selection = None
    link_rate = None
    blur = diffusion.blur_factor
    if lag_noise is not None:
        # the lag intercepts already hold every per-frame effect, detection
        # selection included: consecutive steps with the nominal blur factor
        track_s2 = np.maximum(lag_noise.row_var_m2, 0.0)
        s2 = max(lag_noise.global_var_m2, 0.0)
        m_all, k_all, p_all, lag_all = _consecutive_rows(
            diffusion, short if n_short else None, m_all, k_all, p_all, lag_all)
    elif method == "em" and selection_calibration and has_lags:
        m_all, k_all, p_all, lag_all, selection, blur = _consecutive_moments(
            diffusion, short if n_short else None, m_all, k_all, p_all, lag_all, track_s2)
        if not selection.linear:
            warnings.append("displacements do not grow linearly with time beyond one frame "
                            "(wrong links between crowded particles?): sizes use the "
                            "nominal motion-blur factor")
        if selection.clipped:
            warnings.append(f"effective blur factor hit its bound ({selection.blur_factor:.3f}, nominal "
                            f"{selection.nominal_blur_factor:.3f}): check the exposure time")
    if method == "em":
        log_lik = gamma_log_likelihood(
            m_all, k_all, p_all, grid_d,
            frame_interval_s=diffusion.frame_interval_s, blur=blur,
            localization_var_m2=track_s2, mean_lag=lag_all)
        if lag_noise is not None and wrong_links:
            link_rate = _wrong_link_rows(log_lik, diffusion, short if n_short else None,
                                         acquisition, grid_d, k_all, p_all, track_s2)
        # EM on tracks (unweighted) is the consistent estimate of the track
        # mixture. Weighting the likelihood by points instead would mix up
        # classes whose track lengths differ (short tracks are mostly small
        # particles but would get the time-weighted prior). Particles present
        # per frame then follow from each track's posterior times its frames.
        em = em_mixture(log_lik, smoothing=smoothing, max_iter=max_iter, tol=tol,
                        strata=strata)
        posterior = em.posterior
        if (detection_correction and joint_brightness and weighting == "time"
                and floor_b == diffusion.peak_threshold):
            # Brightness separates sizes that diffusion alone blurs together:
            # refit the brightness line on the sharper posteriors and add each
            # track's brightness likelihood, a few times. Only with band-passed
            # peaks and the true threshold: the light-sheet model of ln(I / T)
            # does not hold for integrated intensities and an estimated floor.
            for _ in range(_JOINT_ROUNDS):
                model = fit_brightness_model(grid, posterior, logb_all, pts_all, floor_b)
                if model is None:
                    break
                u_grid = (grid_log_brightness_ratio(model, grid, posterior, logb_all, pts_all)
                          if _JOINT_OWN else None)
                bl = brightness_log_likelihood(model, grid, logb_all, log_ratio=u_grid)
                em = em_mixture(log_lik + _JOINT_WEIGHT * bl, smoothing=smoothing, max_iter=max_iter, tol=tol)
                posterior = em.posterior
        present = (posterior * weights[:, None]).sum(axis=0)
        present = present / present.sum()
        iterations, converged = em.iterations, em.converged
        if not converged:
            warnings.append(f"EM stopped after {iterations} iterations without converging")
    else:
        posterior = _histogram_posterior(track_d_nm, grid)
        counted = posterior.sum(axis=1) > 0
        if not np.any(counted):
            raise InsufficientData(f"{source}: no track has a positive diffusion estimate "
                                   "inside the size grid")
        present = (posterior * weights[:, None]).sum(axis=0)
        present = present / present.sum()
    # Track-based fractions: the kept tracks only (what per-track sizing sees).
    raw = posterior[:n].sum(axis=0)
    raw = raw / raw.sum()

    brightness = None
    efficiency = None
    relative_depth = None
    log_ratio = None
    log_ratio_int = None
    number = present
    if detection_correction and weighting != "time":
        warnings.append("detection correction needs time weighting: not applied with "
                        "weighting='track'")
    elif detection_correction:
        brightness = fit_brightness_model(grid, posterior, logb_all, pts_all, floor_b,
                                          slope=brightness_slope)
        if brightness is None:
            warnings.append("no usable spot intensities: sizes not corrected for detection depth")
        else:
            depth_post = posterior
            if (method == "em" and depth_sharpening
                    and floor_b == diffusion.peak_threshold):
                depth_post = _brightness_sharpened(posterior, brightness, grid, logb_all,
                                                   pts_all)
                refit = fit_brightness_model(grid, depth_post, logb_all, pts_all, floor_b,
                                             slope=brightness_slope)
                brightness = refit if refit is not None else brightness
            log_ratio = grid_log_brightness_ratio(brightness, grid, depth_post, logb_all,
                                                  pts_all)
            if floor_b != diffusion.intensity_floor:
                by_intensity = fit_brightness_model(grid, depth_post, logi_all, pts_all,
                                                    diffusion.intensity_floor,
                                                    slope=brightness_slope)
                if by_intensity is not None:
                    log_ratio_int = grid_log_brightness_ratio(by_intensity, grid, depth_post,
                                                              logi_all, pts_all)
            depth = np.sqrt(log_ratio)
            efficiency = _detection_efficiency(depth_post, seen_all, missed_all)
            if efficiency is not None:
                depth = depth * efficiency
            # Present per frame / depth = per volume; normalise the depth to its
            # present-weighted mean so it reads as a relative factor.
            relative_depth = depth / np.sum(present * depth)
            number = present / relative_depth
            number = number / number.sum()
            # A narrow distribution uses the Rayleigh slope (brightness.slope_fitted
            # is False); over a narrow range the correction barely matters.
            if brightness.slope_fitted and not 2.0 <= brightness.slope <= 8.0:
                warnings.append(f"fitted brightness ~ d^{brightness.slope:.1f} is far from "
                                "Rayleigh d^6: detection correction may be off")

    edge_mass = float(number[:2].sum() + number[-2:].sum())
    if edge_mass > 0.01:
        warnings.append(f"{100 * edge_mass:.1f} % of particles lie at the edge of the "
                        f"{grid[0]:.0f}-{grid[-1]:.0f} nm grid: sizes outside it are clipped")

    stats = distribution_stats(grid, number, peak_prominence=peak_prominence)
    return SizeDistribution(
        diameter_nm=grid,
        number_fraction=number,
        mean_nm=stats.mean_nm,
        sd_nm=stats.sd_nm,
        mode_nm=stats.mode_nm,
        d10_nm=stats.d10_nm,
        d50_nm=stats.d50_nm,
        d90_nm=stats.d90_nm,
        peaks_nm=stats.peaks_nm,
        n_tracks=n,
        track_diameter_nm=track_d_nm,
        warnings=warnings,
        n_short_tracks=n_short,
        raw_number_fraction=raw,
        present_fraction=present,
        relative_depth=relative_depth,
        brightness=brightness,
        log_brightness_ratio=log_ratio,
        intensity_log_brightness_ratio=log_ratio_int,
        method=method,
        weighting=weighting,
        localization_var_m2=s2,
        localization_model=noise_model,
        iterations=iterations,
        converged=converged,
        selection=selection,
        detection_efficiency=efficiency,
        lag_noise=lag_noise,
        wrong_link_rate=link_rate,
    )
