"""Spot detection: band-pass, noise-scaled threshold, local maxima, sub-pixel centroids.

Background removal is spatial, not temporal: the band-pass (a noise-suppressing
Gaussian minus a boxcar mean of the same frame, after Crocker & Grier) removes
any background that varies slowly over ``2 radius_px + 1`` pixels, frame by
frame. We chose it over a temporal median because it needs no look-ahead (a
single frame can be analysed, chunks stay independent), it does not erase slow or
stuck particles, and it follows illumination that flickers from frame to frame.
The boxcar leaves out the pixels of spots (those of a first band-pass above
``MASK_SIGMAS`` noise sigmas): a plain box mean spreads a bright particle's
light over its whole box, and a dim EV within ~10 px of a 140 nm one sank
below the threshold (crowded fields lost a quarter of their dim particles
that way, see :func:`_bandpass_numpy`).

The threshold is ``threshold_sigma`` times the noise of the band-passed frame,
measured on its lower half (median minus the 15.9th percentile, the sigma of
a Gaussian), which spots, all positive, barely touch: the analogue of
NanoSight's "detection threshold", a number in noise-sigma units, not camera
counts, and the same in a dilute and a crowded field.

References
----------
.. [1] J. C. Crocker and D. G. Grier, J. Colloid Interface Sci. 179, 298 (1996).
.. [2] R. E. Thompson, D. R. Larson and W. W. Webb, Biophys. J. 82, 2775 (2002)
   (Gaussian-mask centroid, an approximation to the least-squares Gaussian fit).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from ..errors import InvalidInput
from . import _kernels
from ._numeric import close_pairs
from ._types import Detections

__all__ = ["DetectionSettings", "FrameSpots", "locate", "resolve_engine", "saturation_count"]

_ENGINES = ("auto", "numba", "numpy")
# Pixel types the numba kernels read without a float32 copy.
_NATIVE_DTYPES = (np.dtype(np.uint8), np.dtype(np.uint16), np.dtype(np.float32))

# Spot radius and band-pass noise sigma, px. The centroid mask (radius / 3 =
# 3 px) must span a motion-blurred streak: with a 2 px mask (radius 6) the
# iterated centroid of a streak settles on a local brightness mode instead of
# the exposure average, 5.6 % of spots land > 2 px from it on simulated videos
# (30 ms exposure, 100 nm EVs) and exactly the frames where the particle moved
# most are lost to the tracks; radius 9 gives 1.6 % and rms 0.37 px. A
# 1.5 px noise Gaussian (about the PSF sigma: a matched filter) keeps more of
# the dim, blurred spots than trackpy's 1 px.
DEFAULT_RADIUS_PX = 9
DEFAULT_NOISE_SIGMA_PX = 1.5
# Spots are found on 2 x 2 binned frames (a quarter of the pixels for the
# band-pass, half the time of the whole pipeline) and centred on the raw
# frame; sizes of simulated 100 nm EVs came out the same (four seeds: D50
# 102.8 vs 103.1 nm, D90/D10 1.206 vs 1.202).
DEFAULT_BINNING = 2


def resolve_engine(engine: str) -> str:
    """Map ``"auto"`` to ``"numba"`` when numba is importable, else ``"numpy"``."""
    if engine not in _ENGINES:
        raise InvalidInput(f"engine must be one of {', '.join(_ENGINES)}, got {engine!r}")
    if engine == "auto":
        return "numba" if _kernels.HAVE_NUMBA else "numpy"
    if engine == "numba" and not _kernels.HAVE_NUMBA:
        raise InvalidInput("engine 'numba' requested but numba is not installed")
    return engine


@dataclass(frozen=True)
class DetectionSettings:
    """Parameters of :func:`locate`.

    Parameters
    ----------
    threshold_sigma : float
        Detection threshold in units of the band-passed frame's robust noise
        sigma (like NanoSight's detection threshold; 4-6 typical).
    radius_px : int
        Spot radius in pixels: boxcar half-width of the background, centroid
        window and integration disc. About 2.5 x the PSF sigma.
    noise_sigma_px : float
        Sigma of the noise-suppressing Gaussian, pixels (~1).
    separation_px : int, optional
        Minimum distance between two maxima, pixels (default two thirds of
        ``radius_px``, 6 px at the default radius: two particles closer than
        this are seen as one spot).
    binning : {1, 2}
        2: find spots (band-pass, noise, threshold, maxima) on 2 x 2 binned
        frames, a quarter of the pixels, then centre them on the raw
        full-resolution frame (ring background, Gaussian mask widened by the
        band-pass Gaussian so the estimator stays the same). ``peak`` and the
        threshold are then in binned band-passed counts.
    mask_sigma_px : float, optional
        Sigma of the Gaussian centroid mask, pixels (default ``radius_px / 3``, so
        the window of ``radius_px`` truncates the mask at 3 sigma: a coarser cut
        makes the window edge pull estimates towards pixel centres: fractional
        positions piled up 1.3x at pixel centres with ``radius_px / 2``, and
        stay within 1.1x of flat at ``radius_px / 3``).
    """

    threshold_sigma: float = 5.0
    radius_px: int = DEFAULT_RADIUS_PX
    noise_sigma_px: float = DEFAULT_NOISE_SIGMA_PX
    separation_px: int | None = None
    mask_sigma_px: float | None = None
    binning: int = DEFAULT_BINNING

    def __post_init__(self) -> None:
        if not math.isfinite(self.threshold_sigma) or self.threshold_sigma <= 0:
            raise InvalidInput(f"threshold-sigma must be > 0, got {self.threshold_sigma}")
        if int(self.radius_px) != self.radius_px or not 1 <= self.radius_px <= 50:
            raise InvalidInput(f"radius-px must be an integer 1-50, got {self.radius_px}")
        if not math.isfinite(self.noise_sigma_px) or not 0 < self.noise_sigma_px <= self.radius_px:
            raise InvalidInput(
                f"noise-sigma-px must be in (0, radius-px], got {self.noise_sigma_px}")
        if self.separation_px is not None and not 1 <= self.separation_px <= 100:
            raise InvalidInput(f"separation-px must be 1-100, got {self.separation_px}")
        if self.mask_sigma_px is not None and not 0 < self.mask_sigma_px <= 50:
            raise InvalidInput(f"mask-sigma-px must be in (0, 50], got {self.mask_sigma_px}")
        if self.binning not in (1, 2):
            raise InvalidInput(f"binning must be 1 or 2, got {self.binning}")

    @property
    def separation(self) -> int:
        if self.separation_px is not None:
            return int(self.separation_px)
        return max(1, (2 * int(self.radius_px)) // 3)

    @property
    def mask_sigma(self) -> float:
        return float(self.mask_sigma_px if self.mask_sigma_px is not None
                     else self.radius_px / 3.0)

    @property
    def margin(self) -> int:
        # the centroid window and the intensity ring must fit inside the frame
        return int(self.radius_px) + 2

    def binned(self) -> DetectionSettings:
        """Settings for the 2 x 2 binned frame (lengths halved)."""
        return DetectionSettings(threshold_sigma=self.threshold_sigma,
                                 radius_px=max(1, int(round(self.radius_px / 2))),
                                 noise_sigma_px=self.noise_sigma_px / 2,
                                 separation_px=max(1, self.separation // 2), binning=1)

    @property
    def raw_mask_sigma(self) -> float:
        """Centroid mask on raw pixels equivalent to ``mask_sigma`` on band-passed ones."""
        return float(math.hypot(self.mask_sigma, self.noise_sigma_px))

    def gauss_taps(self) -> np.ndarray:
        half = max(1, int(math.ceil(3.0 * self.noise_sigma_px)))
        x = np.arange(-half, half + 1, dtype=np.float64)
        taps = np.exp(-(x**2) / (2.0 * self.noise_sigma_px**2))
        return (taps / taps.sum()).astype(np.float32)

    def box_taps(self) -> np.ndarray:
        n = 2 * int(self.radius_px) + 1
        return np.full(n, 1.0 / n, dtype=np.float32)


# Centroid iteration: stop when the position moves less than this (px, |dy|+|dx|);
# 5e-3 px is far below any localization error NTA reaches (0.05-0.5 px).
_MAX_ITER = 20
_TOL_PX = 5e-3

# Two refined centroids closer than this (px) are one spot found twice: two
# maxima more than ``separation`` apart on one long (saturated, motion-blurred)
# streak both converge onto the streak's centre.
DUPLICATE_PX = 3.0


def unique_spots(x_px: np.ndarray, y_px: np.ndarray, intensity: np.ndarray,
                 min_px: float = DUPLICATE_PX) -> np.ndarray:
    """Mask keeping the brighter of any two centroids closer than ``min_px`` pixels.

    Returns
    -------
    ndarray of bool, shape (n,)
        True for the spots to keep.
    """
    keep = np.ones(len(x_px), dtype=bool)
    if len(x_px) > 1:
        # the linker's grid search: 4x faster than a k-d tree per frame
        pairs = close_pairs(x_px, y_px, min_px)
        a, b = pairs[:, 0], pairs[:, 1]
        if len(a):
            keep[np.where(intensity[a] >= intensity[b], b, a)] = False
    return keep


# Pixels sampled (at most, about) for the noise sigma of a band-passed frame
# (to ~1.5 %) and for the median of a frame (the background where spots
# cover it).
NOISE_SAMPLE = 16384.0
BACKGROUND_SAMPLE = 8192.0


def _sample_step(shape: tuple[int, ...], size: float) -> int:
    """Stride of a regular subsample of at most ~``size`` pixels."""
    return max(1, int(math.ceil(math.sqrt(shape[0] * shape[1] / size))))


def _sample_buffer(shape: tuple[int, int], size: float) -> tuple[int, np.ndarray]:
    """(step, float32 buffer) for the kernels that sample a frame as they write it;
    the buffer is followed by twice its size of work space for the selection."""
    step = _sample_step(shape, size)
    n = -(-shape[0] // step) * -(-shape[1] // step)
    return step, np.empty(3 * n, dtype=np.float32)


def _sampled(statistic, sample_buffer: tuple[int, np.ndarray], n: int, *args) -> float:
    """``statistic`` (:func:`._kernels.median_nb` or :func:`._kernels.lower_spread_nb`)
    of the ``n`` values a kernel wrote to a :func:`_sample_buffer`."""
    buf = sample_buffer[1]
    return float(statistic(buf[:n], *args, buf[buf.size // 3:]))


def _compiled_statistic(statistic, img: np.ndarray, size: float, *args) -> float:
    """``statistic`` (as :func:`_sampled`) of a regular subsample of ~``size`` finite
    pixels of a frame already written."""
    sample = _kernels._strided_finite(img, _sample_step(img.shape, size))
    return float(statistic(sample, *args, np.empty(2 * sample.size, sample.dtype)))


def _compiled_sample(img: np.ndarray, engine: str) -> bool:
    """Whether the numba sample kernels take ``img`` (a 2-D float frame)."""
    return (engine == "numba" and _kernels.HAVE_NUMBA and img.ndim == 2
            and img.dtype in (np.float32, np.float64))


def _noise_sample(filtered: np.ndarray, size: float = 32768.0) -> np.ndarray:
    """A regular subsample of at most ~``size`` finite pixels, float64."""
    step = _sample_step(filtered.shape, size)
    sample = np.array(filtered[::step, ::step], dtype=np.float64).ravel()
    total = sample.sum()
    return sample if np.isfinite(total) else sample[np.isfinite(sample)]


def robust_noise_sigma(filtered: np.ndarray, engine: str = "numba") -> float:
    """Noise sigma of a band-passed frame from its lower half: median - 15.9th percentile.

    For Gaussian noise this is its standard deviation. Spots only add
    positive values (the background box leaves them out, so they leave no
    negative moat either), so unlike 1.4826 x MAD, which they widen from
    above, it does not grow with the number of particles: on simulated
    640 x 480 frames with ~80 spots the MAD-based threshold was 16 % above
    that of a dilute field of the same camera, this one 6 %.
    """
    if _compiled_sample(filtered, engine):
        return _compiled_statistic(_kernels.lower_spread_nb, filtered, NOISE_SAMPLE,
                                   _LOWER_SIGMA_QUANTILE)
    sample = _noise_sample(filtered, NOISE_SAMPLE)
    n = sample.size
    if n < 2:
        return 0.0
    k_med, k_low = n // 2, int(round(_LOWER_SIGMA_QUANTILE * (n - 1)))
    # the median, then the lower rank within the lower half (two single
    # partitions are faster than one for both ranks)
    sample.partition(k_med)
    median = sample[k_med]
    lower = sample[:k_med]
    lower.partition(k_low)
    return float(max(median - lower[k_low], 0.0))


def mad_noise_sigma(filtered: np.ndarray) -> float:
    """1.4826 x median absolute deviation of a band-passed frame (symmetric tails).

    Used on the first band-pass, whose plain box mean digs a negative moat
    around every bright spot: the moats fill the lower half that
    :func:`robust_noise_sigma` reads, but move the median and the MAD little.
    """
    # ~8k pixels: only sets the level that marks spot blocks
    sample = _noise_sample(filtered, 8192.0)
    if sample.size == 0:
        return 0.0
    med = _median_inplace(sample)
    np.subtract(sample, med, out=sample)
    np.abs(sample, out=sample)
    return float(1.4826 * _median_inplace(sample))


# Quantile one sigma below the median of a Gaussian.
_LOWER_SIGMA_QUANTILE = 0.15865525393145707
# A first band-pass above this many noise sigmas (MAD) marks spot pixels;
# the background leaves out their blocks and the blocks around them
# (the wings of a bright spot, which the first band-pass, pulled down by the
# spot's own light in its box, puts near zero). A window with fewer than
# this fraction of background pixels (between and inside bright spots)
# takes the frame's median instead: the plain box mean there is the bright
# spots' light, which dug a moat of -400 noise sigmas beside a 60x brighter
# spot. At 2 sigmas the noise blocks left out lower the background by
# ~0.05 sigma.
MASK_SIGMAS = 2.0
_MIN_BACKGROUND_FRACTION = 0.1


def _frame_background(img: np.ndarray, engine: str = "numba") -> float:
    """Median of the frame (the background of a sparse NTA frame), from a subsample."""
    if _compiled_sample(img, engine):
        return _compiled_statistic(_kernels.median_nb, img, BACKGROUND_SAMPLE)
    sample = _noise_sample(img, BACKGROUND_SAMPLE)
    return _median_inplace(sample) if sample.size else 0.0


def _median_inplace(a: np.ndarray) -> float:
    """Median of a NaN-free 1-D float64 array, reordering it (as ``np.median``)."""
    n = a.size
    k = n // 2
    a.partition(k)
    if n % 2:
        return float(a[k])
    # the lower middle is the largest of the lower part: 5x faster than
    # partitioning for both middle ranks at once
    return float((a[:k].max() + a[k]) / 2.0)


# The background is measured on blocks of this many (binned) pixels a side,
# over a window of 2 r + 1 blocks: 4 and r = 1 make a 12 x 12 px window of
# a binned frame (24 raw px, like the 19 px box of the Crocker-Grier
# band-pass it replaces) at a sixteenth of the pixels' cost.
BLOCK_PX = 4


def _coarse_radius(settings: DetectionSettings) -> int:
    return max(1, int(round(settings.radius_px / BLOCK_PX)))


def _window_mean_numpy(sums, keep, r, block_px, min_fraction, fallback) -> np.ndarray:
    """numpy reference of :func:`._kernels.window_mean_nb`."""
    rc, cc = sums.shape

    def integral(a):
        out = np.zeros((rc + 1, cc + 1))
        out[1:, 1:] = a.astype(np.float64).cumsum(axis=0).cumsum(axis=1)
        return out

    total_i, count_i = integral(sums * keep), integral(keep)
    i0 = np.maximum(np.arange(rc) - r, 0)[:, None]
    i1 = np.minimum(np.arange(rc) + r + 1, rc)[:, None]
    j0 = np.maximum(np.arange(cc) - r, 0)[None, :]
    j1 = np.minimum(np.arange(cc) + r + 1, cc)[None, :]
    total = total_i[i1, j1] - total_i[i0, j1] - total_i[i1, j0] + total_i[i0, j0]
    n = count_i[i1, j1] - count_i[i0, j1] - count_i[i1, j0] + count_i[i0, j0]
    ok = (n > 0.5) & (n >= min_fraction * (i1 - i0) * (j1 - j0))
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(ok, total / (block_px * n), fallback).astype(np.float32)


def _spot_blocks_numpy(maxs, bg, level) -> np.ndarray:
    """numpy reference of :func:`._kernels.spot_blocks_nb` (1 = keep)."""
    from scipy import ndimage  # the numpy engine only: kept out of start-up

    spot = (maxs - bg) > level
    return (~ndimage.maximum_filter(spot, size=3, mode="nearest")).astype(np.uint8)


def _subtract_upsampled_numpy(smooth: np.ndarray, bg: np.ndarray, block: int) -> np.ndarray:
    """numpy reference of :func:`._kernels.subtract_upsampled_nb`."""
    rows, cols = smooth.shape
    rc, cc = bg.shape

    def axis(n, nc):
        u = np.clip((np.arange(n) - 0.5 * (block - 1)) / block, 0.0, nc - 1.0)
        lo = np.minimum(u.astype(np.int64), nc - 1)
        return lo, np.minimum(lo + 1, nc - 1), (u - lo).astype(np.float32)

    top, bottom, fy = axis(rows, rc)
    left, right, fx = axis(cols, cc)
    up = (bg[:, left] + fx[None, :] * (bg[:, right] - bg[:, left])).astype(np.float32)
    return (smooth - (up[top] + fy[:, None] * (up[bottom] - up[top]))).astype(np.float32)


def _maxima_numpy(f: np.ndarray, threshold: float, s: int, margin: int) -> np.ndarray:
    """numpy reference of :func:`._kernels.local_maxima_nb`."""
    rows, cols = f.shape
    # 8-neighbour maxima: strictly above earlier neighbours (raster order),
    # not below later ones, so a flat top yields one
    pad = np.pad(f, 1, mode="constant", constant_values=-np.inf)
    cand = f > threshold
    for dy, dx in ((-1, -1), (-1, 0), (-1, 1), (0, -1)):
        cand &= f > pad[1 + dy:1 + dy + rows, 1 + dx:1 + dx + cols]
    for dy, dx in ((0, 1), (1, -1), (1, 0), (1, 1)):
        cand &= f >= pad[1 + dy:1 + dy + rows, 1 + dx:1 + dx + cols]
    cand[:margin, :] = False
    cand[rows - margin:, :] = False
    cand[:, :margin] = False
    cand[:, cols - margin:] = False
    ij = np.argwhere(cand)
    if len(ij) == 0 or s < 1:
        return ij.astype(np.int64).reshape(-1, 2)
    values = f[ij[:, 0], ij[:, 1]]
    order = np.argsort(-values, kind="mergesort")
    reach = _kernels._SADDLE_REACH * s

    def dips(m, k):
        steps = max(abs(ij[k, 0] - ij[m, 0]), abs(ij[k, 1] - ij[m, 1]))
        t = np.arange(1, steps) / steps
        ii = np.round(ij[m, 0] + (ij[k, 0] - ij[m, 0]) * t).astype(np.int64)
        jj = np.round(ij[m, 1] + (ij[k, 1] - ij[m, 1]) * t).astype(np.int64)
        return bool(np.any(f[ii, jj] < _kernels._SADDLE_FRACTION * values[k]))

    kept: list[int] = []
    for k in order:
        same = False
        for m in kept:
            di, dj = abs(ij[m, 0] - ij[k, 0]), abs(ij[m, 1] - ij[k, 1])
            if (di <= s and dj <= s) or (di <= reach and dj <= reach and not dips(m, k)):
                same = True
                break
        if not same:
            kept.append(int(k))
    return ij[np.sort(kept)].astype(np.int64)


def _refine_numpy(f: np.ndarray, raw: np.ndarray, peaks: np.ndarray,
                  settings: DetectionSettings) -> tuple[np.ndarray, ...]:
    rows, cols = f.shape
    r = int(settings.radius_px)
    inv2s2 = 1.0 / (2.0 * settings.mask_sigma**2)
    n = len(peaks)
    cy = peaks[:, 0].astype(np.float64)
    cx = peaks[:, 1].astype(np.float64)
    peak = f[peaks[:, 0], peaks[:, 1]].astype(np.float64)
    k = np.arange(-r, r + 1)
    active = np.ones(n, dtype=bool)
    for _ in range(_MAX_ITER):
        if not active.any():
            break
        idx = np.flatnonzero(active)
        iy = np.clip(np.floor(cy[idx] + 0.5).astype(np.int64), r, rows - r - 1)
        ix = np.clip(np.floor(cx[idx] + 0.5).astype(np.int64), r, cols - r - 1)
        py = iy[:, None] + k[None, :]
        px = ix[:, None] + k[None, :]
        wy = np.exp(-((py - cy[idx, None]) ** 2) * inv2s2)
        wx = np.exp(-((px - cx[idx, None]) ** 2) * inv2s2)
        win = f[py[:, :, None], px[:, None, :]].astype(np.float64) * wy[:, :, None] * wx[:, None, :]
        s0 = win.sum(axis=(1, 2))
        good = s0 > 0
        ny = np.where(good, (win.sum(axis=2) * py).sum(axis=1) / np.where(good, s0, 1), cy[idx])
        nx = np.where(good, (win.sum(axis=1) * px).sum(axis=1) / np.where(good, s0, 1), cx[idx])
        shift = np.abs(ny - cy[idx]) + np.abs(nx - cx[idx])
        cy[idx] = ny
        cx[idx] = nx
        active[idx[(shift < _TOL_PX) | ~good]] = False
    # intensity: disc minus ring mean
    disc_sum, disc_n, bg = _disc_ring_numpy(raw, cy, cx, r)
    inten = disc_sum - bg * disc_n
    return cy, cx, inten, peak


def _disc_ring_numpy(raw: np.ndarray, cy: np.ndarray, cx: np.ndarray, r: int):
    """Per spot: disc sum, disc count and ring background (as the numba kernels:
    the clipped mean of the ring, robust to a neighbour crossing it)."""
    rows, cols = raw.shape
    outer = r + 2
    o = np.arange(-outer, outer + 1)
    iy = np.floor(cy + 0.5).astype(np.int64)
    ix = np.floor(cx + 0.5).astype(np.int64)
    py = iy[:, None, None] + o[None, :, None]
    px = ix[:, None, None] + o[None, None, :]
    valid = (py >= 0) & (py < rows) & (px >= 0) & (px < cols)
    d2 = (py - cy[:, None, None]) ** 2 + (px - cx[:, None, None]) ** 2
    vals = raw[np.clip(py, 0, rows - 1), np.clip(px, 0, cols - 1)].astype(np.float64)
    disc = valid & (d2 <= r * r)
    ring = valid & (d2 > r * r) & (d2 <= outer * outer)
    bg = np.array([_clipped_mean_numpy(vals[i][ring[i]]) for i in range(len(cy))])
    return (vals * disc).sum(axis=(1, 2)), disc.sum(axis=(1, 2)), bg


def _clipped_mean_numpy(values: np.ndarray) -> float:
    """numpy reference of ``_kernels._clipped_mean``."""
    v = np.asarray(values, dtype=np.float64)
    lo, hi = -np.inf, np.inf
    for k in (1.5, 2.5):
        kept = v[(v >= lo) & (v <= hi)]
        if kept.size == 0:
            return 0.0
        mu = kept.mean()
        sd = math.sqrt(max(float(np.mean(kept * kept)) - mu * mu, 0.0))
        lo, hi = mu - k * sd, mu + k * sd
    kept = v[(v >= lo) & (v <= hi)]
    return float(kept.mean()) if kept.size else 0.0


# A seed whose band-passed peak is at least this many times another's, within
# twice the spot radius, owns the pixels nearer to it: the dimmer spot's
# centroid and intensity leave them out. Two maxima on one streak have
# similar peaks and keep converging onto the streak's centre (then merged).
DOMINANT_PEAK_RATIO = math.e


def dominant_neighbours(seed_y: np.ndarray, seed_x: np.ndarray, peak: np.ndarray,
                        radius_px: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Much brighter seeds near each seed, as (ptr, y, x): seed p's are ``ptr[p]:ptr[p+1]``."""
    n = len(seed_y)
    reach = 2.0 * radius_px
    sy = np.ascontiguousarray(seed_y, dtype=np.float64)
    sx = np.ascontiguousarray(seed_x, dtype=np.float64)
    if n > 1:
        # both orders of every pair (and each seed with itself, dropped below)
        a, b = _kernels.candidate_pairs_nb(sx, sy, np.full(n, reach), sx, sy, max(reach, 16.0))
    else:
        a = b = np.zeros(0, np.int64)
    pk = np.asarray(peak, dtype=np.float64)
    keep = (a != b) & (pk[b] >= DOMINANT_PEAK_RATIO * pk[a])
    a, b = a[keep], b[keep]
    order = np.argsort(a, kind="stable")
    a, b = a[order], b[order]
    ptr = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(np.bincount(a, minlength=n), out=ptr[1:])
    return ptr, sy[b].copy(), sx[b].copy()


def _owned_mask(py, px, cy, cx, nb_y, nb_x):
    """Pixels (broadcast grids) nearer to (cy, cx) than to every neighbour."""
    own = np.ones(np.broadcast(py, px).shape, dtype=bool)
    d_own = (py - cy) ** 2 + (px - cx) ** 2
    for ky, kx in zip(nb_y, nb_x, strict=True):
        own &= ~((py - ky) ** 2 + (px - kx) ** 2 < d_own)
    return own


def _refine_owned_numpy(raw, cy, cx, r, inv2s2, nb_y, nb_x):
    """numpy reference of ``_kernels._refine_owned`` (one spot)."""
    rows, cols = raw.shape
    outer = r + 2

    def disc_ring(cy, cx):
        iy, ix = math.floor(cy + 0.5), math.floor(cx + 0.5)
        yy = np.arange(max(iy - outer, 0), min(iy + outer + 1, rows))[:, None]
        xx = np.arange(max(ix - outer, 0), min(ix + outer + 1, cols))[None, :]
        d2 = (yy - cy) ** 2 + (xx - cx) ** 2
        own = _owned_mask(yy, xx, cy, cx, nb_y, nb_x)
        vals = raw[yy, xx].astype(np.float64)
        disc = own & (d2 <= r * r)
        bg = _clipped_mean_numpy(vals[own & (d2 > r * r) & (d2 <= outer * outer)])
        return vals[disc].sum(), int(disc.sum()), bg

    _, _, bg = disc_ring(cy, cx)
    for _ in range(_MAX_ITER):
        iy = min(max(math.floor(cy + 0.5), r), rows - r - 1)
        ix = min(max(math.floor(cx + 0.5), r), cols - r - 1)
        yy = np.arange(iy - r, iy + r + 1)[:, None]
        xx = np.arange(ix - r, ix + r + 1)[None, :]
        w = np.exp(-((yy - cy) ** 2) * inv2s2) * np.exp(-((xx - cx) ** 2) * inv2s2)
        v = (raw[yy, xx].astype(np.float64) - bg) * w * _owned_mask(yy, xx, cy, cx, nb_y, nb_x)
        s0 = v.sum()
        if s0 <= 0:
            break
        ny, nx = float((v * yy).sum() / s0), float((v * xx).sum() / s0)
        shift = abs(ny - cy) + abs(nx - cx)
        cy, cx = ny, nx
        if shift < _TOL_PX:
            break
    disc_sum, disc_n, bg = disc_ring(cy, cx)
    return cy, cx, disc_sum - bg * disc_n


def _refine_raw_numpy(raw: np.ndarray, seed_y: np.ndarray, seed_x: np.ndarray,
                      settings: DetectionSettings, neighbours=None) -> tuple[np.ndarray, ...]:
    """numpy reference of :func:`._kernels.refine_raw_nb` (``neighbours`` from
    :func:`dominant_neighbours`)."""
    rows, cols = raw.shape
    r = int(settings.radius_px)
    inv2s2 = 1.0 / (2.0 * settings.raw_mask_sigma**2)
    cy = np.asarray(seed_y, dtype=np.float64).copy()
    cx = np.asarray(seed_x, dtype=np.float64).copy()
    _, _, bg = _disc_ring_numpy(raw, cy, cx, r)
    k = np.arange(-r, r + 1)
    active = np.ones(len(cy), dtype=bool)
    prev_y = np.zeros(len(cy))
    prev_x = np.zeros(len(cy))
    have_prev = np.zeros(len(cy), dtype=bool)
    for _ in range(_MAX_ITER):
        if not active.any():
            break
        idx = np.flatnonzero(active)
        iy = np.clip(np.floor(cy[idx] + 0.5).astype(np.int64), r, rows - r - 1)
        ix = np.clip(np.floor(cx[idx] + 0.5).astype(np.int64), r, cols - r - 1)
        py = iy[:, None] + k[None, :]
        px = ix[:, None] + k[None, :]
        wy = np.exp(-((py - cy[idx, None]) ** 2) * inv2s2)
        wx = np.exp(-((px - cx[idx, None]) ** 2) * inv2s2)
        vals = raw[py[:, :, None], px[:, None, :]].astype(np.float64) - bg[idx, None, None]
        win = vals * wy[:, :, None] * wx[:, None, :]
        s0 = win.sum(axis=(1, 2))
        good = s0 > 0
        my = (win.sum(axis=2) * py).sum(axis=1) / np.where(good, s0, 1)
        mx = (win.sum(axis=1) * px).sum(axis=1) / np.where(good, s0, 1)
        ny = np.where(good, my, cy[idx])
        nx = np.where(good, mx, cx[idx])
        sty = ny - cy[idx]
        stx = nx - cx[idx]
        shift = np.abs(sty) + np.abs(stx)
        # Aitken extrapolation, as the kernel
        last_y, last_x = prev_y[idx], prev_x[idx]
        with np.errstate(invalid="ignore", divide="ignore"):
            f = (sty * last_y + stx * last_x) / (last_y * last_y + last_x * last_x)
            g = f / (1.0 - f)
        jump = (good & have_prev[idx] & (shift >= _TOL_PX) & (f > 0.0)
                & (f < _kernels._ACCEL_MAX_RATIO) & (shift * g < _kernels._ACCEL_MAX_JUMP_PX))
        ny = np.where(jump, ny + sty * g, ny)
        nx = np.where(jump, nx + stx * g, nx)
        prev_y[idx] = sty
        prev_x[idx] = stx
        have_prev[idx] = ~jump
        cy[idx] = ny
        cx[idx] = nx
        active[idx[(shift < _TOL_PX) | ~good]] = False
    # the ring background of the seed, as the kernel
    disc_sum, disc_n, _ = _disc_ring_numpy(raw, cy, cx, r)
    inten = disc_sum - bg * disc_n
    if neighbours is not None:
        ptr, nb_y, nb_x = neighbours
        for p in np.flatnonzero(np.diff(ptr) > 0):
            a, b = ptr[p], ptr[p + 1]
            cy[p], cx[p], inten[p] = _refine_owned_numpy(
                raw, float(seed_y[p]), float(seed_x[p]), r, inv2s2, nb_y[a:b], nb_x[a:b])
    return cy, cx, inten


def saturation_count(dtype, observed_max: float) -> float | None:
    """Largest count a camera could have written, from the pixel type and data.

    8-bit frames saturate at 255. Cameras of 10-14 bits store counts in 16-bit
    words, so the level is the smallest ``2**k - 1`` (k = 8, 10, 12, 14, 16) not
    below the largest count seen. Float frames: ``None`` (unknown).
    """
    dt = np.dtype(dtype)
    if not np.issubdtype(dt, np.integer):
        return None
    top = float(np.iinfo(dt).max)
    for bits in (8, 10, 12, 14, 16):
        level = float(2**bits - 1)
        if level >= observed_max:
            return min(level, top)
    return top


def _window_max(raw: np.ndarray, x: np.ndarray, y: np.ndarray, r: int) -> np.ndarray:
    """Largest raw pixel in the (2r+1)^2 box around each rounded centre."""
    rows, cols = raw.shape
    if len(x) == 0:
        return np.zeros(0)
    if _kernels.HAVE_NUMBA and raw.dtype in _NATIVE_DTYPES:
        return _kernels.window_max_nb(raw, np.asarray(x, np.float64), np.asarray(y, np.float64),
                                      int(r))
    k = np.arange(-r, r + 1)
    iy = np.clip(np.floor(y + 0.5).astype(np.int64)[:, None] + k[None, :], 0, rows - 1)
    ix = np.clip(np.floor(x + 0.5).astype(np.int64)[:, None] + k[None, :], 0, cols - 1)
    win = raw[iy[:, :, None], ix[:, None, :]].astype(np.float64)
    return np.fmax.reduce(win.reshape(len(x), -1), axis=1)  # NaN pixels passed over


class FrameSpots(NamedTuple):
    """Spots of one frame (see :meth:`FrameLocator.spots`)."""

    x_px: np.ndarray
    y_px: np.ndarray
    intensity: np.ndarray
    strong: np.ndarray
    peak: np.ndarray
    saturated: np.ndarray
    threshold: float


class PreparedFrame(NamedTuple):
    """A frame band-passed and thresholded (see :meth:`FrameLocator.prepare`)."""

    raw: np.ndarray
    filtered: np.ndarray
    threshold: float
    low: float


class FrameLocator:
    """Detect spots frame by frame with reusable work buffers (one per frame shape).

    Parameters
    ----------
    settings : DetectionSettings
    engine : {"auto", "numba", "numpy"}
    """

    def __init__(self, settings: DetectionSettings | None = None, *, engine: str = "auto"):
        self.settings = settings or DetectionSettings()
        self.engine = resolve_engine(engine)
        # the band-pass runs on binned frames when binning is 2
        self._bp = self.settings.binned() if self.settings.binning == 2 else self.settings
        self._gauss = self._bp.gauss_taps()
        self._shape: tuple[int, int] | None = None
        self._raw: np.ndarray | None = None
        self._bin: np.ndarray | None = None
        # noise sigma and background (per block) of the last band-passed
        # frame: the next frame's spot blocks are found against them
        self._sigma: float | None = None
        self._bg_prev: np.ndarray | None = None

    def _buffers(self, shape: tuple[int, int]):
        if self._shape != shape:
            coarse = (max(shape[0] // BLOCK_PX, 1), max(shape[1] // BLOCK_PX, 1))
            self._tmp = np.empty(shape, dtype=np.float32)
            self._smooth = np.empty(shape, dtype=np.float32)
            self._out = np.empty(shape, dtype=np.float32)
            self._blocks = [np.empty(coarse, dtype=np.float32) for _ in range(6)]
            self._keep = [np.empty(coarse, dtype=np.uint8) for _ in range(3)]
            self._row_up = np.empty((coarse[0], shape[1]), dtype=np.float32)
            self._accs = [np.empty(coarse[1], dtype=np.float64) for _ in range(2)]
            self._noise_sample = _sample_buffer(shape, NOISE_SAMPLE)
            self._shape = shape
        return self._tmp, self._smooth, self._out

    def bandpass(self, frame: np.ndarray) -> np.ndarray:
        """Band-passed copy of one frame (float32; of the binned frame when binning is 2).

        The Gaussian-smoothed frame minus its background, measured on blocks
        of :data:`BLOCK_PX` px over a window of :func:`_coarse_radius` blocks with the spots
        left out: blocks whose smoothed peak stands more than
        :data:`MASK_SIGMAS` noise sigmas above the previous frame's background
        (the first frame: a plain window mean), and their neighbours (the
        wings of bright spots). With a plain box mean
        (Crocker & Grier) a particle 64x brighter than a dim EV 6-15 px away
        (a 140 nm EV near a 70 nm one) raised the dim one's background by
        more than its own peak: on simulated 640 x 480 frames at 1e9/mL only
        64 % of the 70 nm EVs at the sheet centre were detected, against 88 %
        in a dilute field; with the spots left out (and the ring background
        of the intensity) 77 % and 93 %. Working on blocks keeps the cost of
        the second background below that of the first band-pass alone.
        """
        median = None
        if (self.settings.binning == 2 and self.engine == "numba"
                and frame.dtype in _NATIVE_DTYPES and frame.flags.c_contiguous):
            img, median = self._binned(frame)
        else:
            img = np.ascontiguousarray(frame, dtype=np.float32)
            if self.settings.binning == 2:
                img, median = self._binned(img)
        rows, cols = img.shape
        if rows < 2 or cols < 2:
            raise InvalidInput(f"frames of {rows}x{cols} px are too small to detect spots in")
        r = _coarse_radius(self._bp)
        fallback = median if median is not None else _frame_background(img, self.engine)
        numba = self.engine == "numba"
        reference, sigma = self._bg_prev, self._sigma
        if numba and reference is not None and sigma is not None and reference.shape == (
                rows // BLOCK_PX, cols // BLOCK_PX):
            # every frame after the first: one compiled call (see below)
            tmp, smooth, out = self._buffers(img.shape)
            sums, maxs, bg_a, row_v, row_n, bg_b = self._blocks
            spot_tmp, keep, _ = self._keep
            bg = bg_b if reference is bg_a else bg_a
            n = _kernels.masked_bandpass_nb(img, self._gauss, BLOCK_PX, reference,
                                            np.float32(MASK_SIGMAS * sigma), r,
                                            _MIN_BACKGROUND_FRACTION, fallback, tmp, smooth, sums,
                                            maxs, spot_tmp, keep, row_v, row_n, *self._accs,
                                            self._row_up, bg, out, *self._noise_sample)
            self._bg_prev = bg
            # = robust_noise_sigma(out), from the values sampled as out was written
            self._sigma = _sampled(_kernels.lower_spread_nb, self._noise_sample, n,
                                   _LOWER_SIGMA_QUANTILE)
            return out
        if numba:
            tmp, smooth, out = self._buffers(img.shape)
            sums, maxs, bg_a, row_v, row_n, bg_b = self._blocks
            spot_tmp, keep, ones = self._keep
            _kernels.gauss_smooth_nb(img, self._gauss, tmp, smooth)
            _kernels.block_stats_nb(img, smooth, BLOCK_PX, sums, maxs)
        else:
            from scipy import ndimage  # the numpy engine only: kept out of start-up

            g = ndimage.correlate1d(img, self._gauss, axis=1, mode="nearest")
            smooth = ndimage.correlate1d(g, self._gauss, axis=0, mode="nearest")
            b = BLOCK_PX
            rc, cc = rows // b, cols // b
            quad = (slice(0, b * rc), slice(0, b * cc))
            sums = img[quad].reshape(rc, b, cc, b).sum(axis=(1, 3), dtype=np.float32)
            maxs = smooth[quad].reshape(rc, b, cc, b).max(axis=(1, 3))
        first = reference is None or reference.shape != maxs.shape or sigma is None
        if first:
            # first frame: a plain background and the noise of its band-pass
            if numba:
                ones.fill(1)
                _kernels.window_mean_nb(sums, ones, r, BLOCK_PX**2, 0.0, fallback, row_v, row_n,
                                        *self._accs, bg_a)
                reference = bg_a
                _kernels.subtract_upsampled_nb(smooth, reference, BLOCK_PX, self._row_up, out,
                                               *self._noise_sample)
                sigma = mad_noise_sigma(out)
            else:
                reference = _window_mean_numpy(sums, np.ones_like(sums), r, BLOCK_PX**2, 0.0,
                                               fallback)
                sigma = mad_noise_sigma(_subtract_upsampled_numpy(smooth, reference, BLOCK_PX))
        # spot blocks stand out from the last frame's background (spots move,
        # the background does not), so one window pass per frame does
        level = np.float32(MASK_SIGMAS * sigma)
        if numba:
            bg = bg_b if reference is bg_a else bg_a
            _kernels.spot_blocks_nb(maxs, reference, level, spot_tmp, keep)
            _kernels.window_mean_nb(sums, keep, r, BLOCK_PX**2, _MIN_BACKGROUND_FRACTION,
                                    fallback, row_v, row_n, *self._accs, bg)
            n = _kernels.subtract_upsampled_nb(smooth, bg, BLOCK_PX, self._row_up, out,
                                               *self._noise_sample)
            self._sigma = _sampled(_kernels.lower_spread_nb, self._noise_sample, n,
                                   _LOWER_SIGMA_QUANTILE)
        else:
            keep = _spot_blocks_numpy(maxs, reference, level)
            bg = _window_mean_numpy(sums, keep, r, BLOCK_PX**2, _MIN_BACKGROUND_FRACTION,
                                    fallback)
            out = _subtract_upsampled_numpy(smooth, bg, BLOCK_PX)
            self._sigma = robust_noise_sigma(out, self.engine)
        self._bg_prev = bg
        if first:
            # once more against its own spot-free background and noise, so the
            # first frame is treated as every later one
            return self.bandpass(frame)
        return out

    def _binned(self, img: np.ndarray) -> tuple[np.ndarray, float | None]:
        """The 2 x 2 binned frame and (numba engine; else ``None``) its median
        (:func:`_frame_background`), sampled as it is written."""
        shape = (img.shape[0] // 2, img.shape[1] // 2)
        if self.engine == "numpy":
            top = img[:2 * shape[0], :2 * shape[1]]
            return top.reshape(shape[0], 2, shape[1], 2).mean(axis=(1, 3), dtype=np.float32), None
        if self._bin is None or self._bin.shape != shape:
            self._bin = np.empty(shape, dtype=np.float32)
            self._bin_sample = _sample_buffer(shape, BACKGROUND_SAMPLE)
        n = _kernels.bin2_nb(img, self._bin, *self._bin_sample)
        return self._bin, _sampled(_kernels.median_nb, self._bin_sample, n)

    def frame(self, frame: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, float]:
        """Locate spots in one frame.

        Returns
        -------
        x_px, y_px, intensity : ndarray of float64
        threshold : float
            Threshold applied to the band-passed frame (counts).
        """
        x, y, inten, strong, threshold = self.frame_with_weak(frame, weak_fraction=1.0)
        return x, y, inten, threshold

    def frame_with_weak(self, frame: np.ndarray, *, weak_fraction: float
                        ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, float]:
        """Locate spots down to ``weak_fraction`` of the threshold (hysteresis).

        Returns ``(x_px, y_px, intensity, strong, threshold)`` of :meth:`spots`.
        """
        sp = self.spots(frame, weak_fraction=weak_fraction)
        return sp.x_px, sp.y_px, sp.intensity, sp.strong, sp.threshold

    def spots(self, frame: np.ndarray, *, weak_fraction: float = 1.0,
              saturation: float | None = None) -> FrameSpots:
        """Locate spots down to ``weak_fraction`` of the threshold (hysteresis).

        Spots between ``weak_fraction * threshold`` and the threshold are
        returned with ``strong = False``; the linker lets them continue a track
        but never start one. Spots whose integrated brightness above the local
        background is not positive are dropped as noise, and of two centroids
        closer than ``DUPLICATE_PX`` (one streak found twice) the dimmer.

        Parameters
        ----------
        frame : ndarray, shape (rows, cols)
            Camera counts.
        weak_fraction : float
            Hysteresis fraction in (0, 1].
        saturation : float, optional
            The camera's largest count; a spot with a raw pixel at or above it
            within ``radius_px`` is flagged ``saturated``. ``None``: never.

        Returns
        -------
        FrameSpots
            ``x_px``, ``y_px``, ``intensity`` (integrated counts above the local
            background), ``strong``, ``peak`` (band-passed counts at the maximum),
            ``saturated`` and ``threshold`` (band-passed counts).
        """
        return self.finish(self.prepare(frame, weak_fraction=weak_fraction), saturation)

    def prepare(self, frame: np.ndarray, *, weak_fraction: float = 1.0,
                copy: bool = False) -> PreparedFrame:
        """First stage of :meth:`spots`: the band-pass and the threshold.

        Frames must come in order (each is measured against the previous
        frame's background and noise). ``copy``: return arrays of its own
        (not the locator's reused buffers), so that :meth:`finish` may run
        in another thread while the next frame is prepared.
        """
        if not 0 < weak_fraction <= 1:
            raise InvalidInput(f"weak fraction must be in (0, 1], got {weak_fraction}")
        s = self.settings
        frame = np.asarray(frame)
        native = (s.binning == 2 and self.engine == "numba" and frame.ndim == 2
                  and frame.flags.c_contiguous and frame.dtype in _NATIVE_DTYPES)
        if native:
            # the numba kernels read 8/16-bit counts directly: no float copy
            raw = frame
        elif frame.ndim == 2 and (frame.dtype != np.float32 or not frame.flags.c_contiguous):
            # convert into a reused buffer: no fresh 5 MB allocation per frame
            if self._raw is None or self._raw.shape != frame.shape:
                self._raw = np.empty(frame.shape, dtype=np.float32)
            raw = self._raw
            np.copyto(raw, frame, casting="unsafe")
        else:
            raw = np.ascontiguousarray(frame, dtype=np.float32)
        rows, cols = raw.shape
        if rows <= 2 * s.margin or cols <= 2 * s.margin:
            raise InvalidInput(
                f"frames of {rows}x{cols} px are too small for radius-px {s.radius_px}")
        f = self.bandpass(raw)
        sigma = self._sigma
        if sigma <= 0:
            # a noiseless (synthetic) frame: any positive response is signal
            sigma = 1e-6 * max(float(np.max(np.abs(f))), 1e-30)
        threshold = float(s.threshold_sigma * sigma)
        if copy:
            f = f.copy()
            if raw is self._raw:
                raw = raw.copy()
        return PreparedFrame(raw, f, threshold, threshold * weak_fraction)

    def finish(self, prepared: PreparedFrame, saturation: float | None = None) -> FrameSpots:
        """Second stage of :meth:`spots`: maxima, centres, intensities, saturation.

        Depends on no other frame and changes no state of the locator.
        """
        s = self.settings
        raw, f, threshold, low = prepared
        if s.binning == 2:
            # maxima on the binned band-pass, centres on the raw frame
            b = self._bp
            margin_b = (s.margin + 1) // 2 + 1
            if self.engine == "numpy":
                peaks = _maxima_numpy(f, low, b.separation, margin_b)
            else:
                peaks = _kernels.local_maxima_nb(f, np.float32(low), b.separation, margin_b)
            peak = f[peaks[:, 0], peaks[:, 1]].astype(np.float64)
            seed_y = 2.0 * peaks[:, 0] + 0.5
            seed_x = 2.0 * peaks[:, 1] + 0.5
            nb = dominant_neighbours(seed_y, seed_x, peak, int(s.radius_px))
            if self.engine == "numpy":
                y, x, inten = _refine_raw_numpy(raw, seed_y, seed_x, s, nb)
            else:
                y, x, inten = _kernels.refine_raw_nb(raw, seed_y, seed_x, int(s.radius_px),
                                                     s.raw_mask_sigma, _MAX_ITER, _TOL_PX, *nb)
        elif self.engine == "numpy":
            peaks = _maxima_numpy(f, low, s.separation, s.margin)
            y, x, inten, peak = _refine_numpy(f, raw, peaks, s)
        else:
            peaks = _kernels.local_maxima_nb(f, np.float32(low), s.separation, s.margin)
            y, x, inten, peak = _kernels.refine_spots_nb(
                f, raw, peaks, int(s.radius_px), s.mask_sigma, _MAX_ITER, _TOL_PX)
        keep = inten > 0
        x, y, inten, peak = x[keep], y[keep], inten[keep], np.asarray(peak, np.float64)[keep]
        keep = unique_spots(x, y, inten)
        x, y, inten, peak = x[keep], y[keep], inten[keep], peak[keep]
        if saturation is None:
            sat = np.zeros(len(x), dtype=bool)
        else:
            sat = _window_max(raw, x, y, int(s.radius_px)) >= saturation
        return FrameSpots(x, y, inten, peak > threshold, peak, sat, threshold)


def locate(
    frames: np.ndarray,
    *,
    threshold_sigma: float = 5.0,
    radius_px: int = DEFAULT_RADIUS_PX,
    noise_sigma_px: float = DEFAULT_NOISE_SIGMA_PX,
    separation_px: int | None = None,
    binning: int = DEFAULT_BINNING,
    engine: str = "auto",
    first_frame: int = 0,
) -> Detections:
    """Find bright spots in frames and measure their sub-pixel centres.

    Parameters
    ----------
    frames : ndarray, shape (rows, cols) or (n, rows, cols)
        Grey frames, bright particles on a dark background (camera counts).
    threshold_sigma : float
        Threshold in units of the band-passed frame's robust noise sigma.
    radius_px : int
        Spot radius in pixels (about 2.5 x PSF sigma).
    noise_sigma_px : float
        Sigma of the noise-suppressing Gaussian, pixels.
    separation_px : int, optional
        Minimum separation of maxima, pixels (default two thirds of ``radius_px``).
    binning : {1, 2}
        Find spots on 2 x 2 binned frames (default) or the full frames;
        centres are measured on the full frames either way.
    engine : {"auto", "numba", "numpy"}
        Kernel implementation; both give the same answer.
    first_frame : int
        Frame index of ``frames[0]`` (for chunked videos).

    Returns
    -------
    Detections
        Spots with ``x_px``, ``y_px`` (pixels), ``intensity`` (integrated counts
        above the local background) and the mean ``threshold`` (band-passed counts).

    Notes
    -----
    Band-pass :math:`f = G_{\\sigma_n} * I - B_{2r+1} * I`; threshold
    :math:`k \\cdot 1.4826\\,\\mathrm{MAD}(f)`; maxima within a
    :math:`(2s+1)^2` window; centre by the iterated Gaussian-mask centroid
    :math:`\\mathbf{c} \\leftarrow \\sum_p w_p f_p \\mathbf{p} / \\sum_p w_p f_p`,
    :math:`w_p = \\exp(-|\\mathbf{p}-\\mathbf{c}|^2 / 2\\sigma_m^2)`, whose
    window follows the estimate so the fractional positions carry no
    pixel-locking bias.
    """
    arr = np.asarray(frames)
    if arr.ndim == 2:
        arr = arr[None]
    if arr.ndim != 3:
        raise InvalidInput(f"frames must be 2-D or 3-D, got shape {arr.shape}")
    settings = DetectionSettings(threshold_sigma=threshold_sigma, radius_px=radius_px,
                                 noise_sigma_px=noise_sigma_px, separation_px=separation_px,
                                 binning=binning)
    loc = FrameLocator(settings, engine=engine)
    return locate_with(loc, arr, first_frame=first_frame)


def locate_with(loc: FrameLocator, frames: np.ndarray, *, first_frame: int = 0) -> Detections:
    """Run a :class:`FrameLocator` over a stack of frames (see :func:`locate`).

    Integer frames are checked for saturation (:func:`saturation_count`).
    """
    level = (saturation_count(frames.dtype, float(frames.max()))
             if frames.size and np.issubdtype(frames.dtype, np.integer) else None)
    parts: list[tuple[np.ndarray, ...]] = []
    thresholds = []
    for k in range(frames.shape[0]):
        sp = loc.spots(frames[k], saturation=level)
        parts.append((np.full(len(sp.x_px), first_frame + k, dtype=np.int64), sp.x_px, sp.y_px,
                      sp.intensity, sp.peak, sp.saturated))
        thresholds.append(sp.threshold)
    f, x, y, i, pk, sat = (np.concatenate(c) for c in zip(*parts, strict=True))
    return Detections(frame=f, x_px=x, y_px=y, intensity=i, n_frames=int(frames.shape[0]),
                      frame_shape=(int(frames.shape[1]), int(frames.shape[2])),
                      threshold=float(np.mean(thresholds)) if thresholds else float("nan"),
                      peak=pk, saturated=sat)
