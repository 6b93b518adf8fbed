"""Size-dependent detection depth under a Gaussian light sheet.

With a sheet profile exp(-2 z^2 / w^2) and a particle of peak brightness
I0(d), a spot is detected while I0 exp(-2 z^2 / w^2) > T, i.e. within
|z| < z_max = (w / 2) sqrt(2 u), u = ln(I0 / T). The number of particles of
size d present per frame is proportional to their concentration times
2 z_max(d); dividing by sqrt(u(d)) turns "present per frame" into "per
volume" up to one constant.

u(d) is measured from the tracks themselves. Particles present per frame are
spread uniformly in z over the visible slab, so their spots' log-brightness
is ln I0 - u (z / z_max)^2 with z / z_max uniform on [0, 1]; its time-weighted
mean is ln I0 - u / 3. Hence, per size class::

    ln I0 = (3 <ln I> - ln T) / 2

When the tracks carry band-passed peaks (the quantity detection compares
with the threshold), I is the peak of each spot (a saturated one's clipped
peak, a lower bound) and T is the detection threshold itself. Otherwise I is
the integrated intensity and T is
taken from the dimmest detected spots (0.5th percentile of all spot
intensities), which keeps the intensity units of T and I0 the same.
:func:`brightness_log_likelihood` turns the same model into a per-track
likelihood over the size grid, which the size distribution adds to the
diffusion likelihood. A line
ln I0 = a + b ln d is fitted across the grid, each grid point's mean being
the posterior-weighted (deconvolved) mean over the tracks.

The depth used for each grid point blends that point's own estimate with the
line, by the number of tracks behind it (:func:`grid_log_brightness_ratio`).
The line alone would be wrong inside a peak that EM has widened beyond the
true width: for dim particles near the threshold, u(d) falls steeply with d,
so the widened flank would get a tiny depth and be hugely over-weighted,
although all its tracks are in fact as bright as the peak's.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from . import _kernels
from ._detect import resolve_engine

__all__ = [
    "BrightnessModel",
    "brightness_log_likelihood",
    "fit_brightness_model",
    "grid_log_brightness_ratio",
    "quantile_log_brightness_ratio",
]

RAYLEIGH_SLOPE = 6.0  # scattering ~ d^6 for d << wavelength
MIN_LOG_RATIO = 0.05  # u floor: particles barely above threshold still have a finite depth


@dataclass(frozen=True)
class BrightnessModel:
    """ln I0(d) = intercept + slope ln(d / 100 nm); ln T = log_threshold.

    Attributes
    ----------
    intercept : float
        ln of the peak brightness of a 100 nm particle (intensity units).
    slope : float
        d-exponent of the brightness (6 for Rayleigh scatterers).
    log_threshold : float
        ln of the detection threshold (same units).
    slope_fitted : bool
        False when the sizes spanned too little range to fit the slope and the
        Rayleigh value 6 was used.
    """

    intercept: float
    slope: float
    log_threshold: float
    slope_fitted: bool

    def log_ratio(self, diameter_nm) -> np.ndarray:
        """u(d) = ln(I0(d) / T), floored at a small positive value."""
        d = np.asarray(diameter_nm, dtype=float)
        u = self.intercept + self.slope * np.log(d / 100.0) - self.log_threshold
        return np.maximum(u, MIN_LOG_RATIO)


# The brightness quantile the beads' u is read at (see quantile_log_brightness_ratio)
BEAD_BRIGHTNESS_QUANTILE = 0.3


def quantile_log_brightness_ratio(log_intensity, log_threshold: float,
                                  quantile: float = BEAD_BRIGHTNESS_QUANTILE) -> float:
    """u = ln(I0 / T) of a monodisperse set of spots (beads), from a low brightness quantile.

    With s = (z / z_max)^2 and z / z_max uniform, ln I - ln T = u (1 - s) has
    the distribution function P(s >= 1 - y / u) = 1 - sqrt(1 - y / u), so its
    p-quantile is u (1 - (1 - p)^2). The mean (u = 1.5 (<ln I> - ln T)) needs
    every spot's brightness; 100 nm polystyrene beads saturate 60 % of their
    spots on an 8-bit camera and their clipped intensities put u 10 % low
    (simulated: 5.26 against 5.81 for the same videos in 12 bits), while the
    30 % quantile lies below the saturated spots (5.84 and 5.85). Lower
    quantiles read the spots near the threshold, widened by noise (10 %:
    6.2). ``nan`` without finite values.
    """
    y = np.asarray(log_intensity, dtype=float)
    y = y[np.isfinite(y)]
    if y.size == 0:
        return float("nan")
    return float((np.quantile(y, quantile) - log_threshold) / (1.0 - (1.0 - quantile) ** 2))


def fit_brightness_model(grid_nm, posterior, mean_log_intensity, n_points,
                         intensity_floor: float, *, min_log_spread: float = 0.1,
                         slope: float | None = None):
    """Fit ln I0(d) from tracks' brightness and their size posteriors.

    Parameters
    ----------
    grid_nm : ndarray, shape (g,)
        Diameter grid, nm.
    posterior : ndarray, shape (n, g)
        Each track's probability over the grid (rows sum to 1).
    mean_log_intensity : ndarray, shape (n,)
        Mean ln(spot intensity) per track (nan where unknown).
    n_points : ndarray, shape (n,)
        Spots per track (time weights).
    intensity_floor : float
        Dimmest detected spot intensity (threshold estimate).
    min_log_spread : float
        Minimum weighted SD of ln d needed to fit the slope.
    slope : float, optional
        Use this d-exponent instead of fitting one (only the intercept is
        fitted). Fitted slopes come out low in mixtures: tracks that the size
        posterior puts partly in the wrong peak pull both peaks' brightness
        towards the mean (4.0 instead of the simulated 6 on a 70/140 nm
        mixture, which under-corrected the small particles' number fraction).

    Returns
    -------
    BrightnessModel or None
        ``None`` when brightness is unusable (no positive intensities).
    """
    if not np.isfinite(intensity_floor) or intensity_floor <= 0:
        return None
    mli = np.asarray(mean_log_intensity, dtype=float)
    ok = np.isfinite(mli)
    if ok.sum() < 3:
        return None
    log_t = float(np.log(intensity_floor))
    wt = posterior[ok] * np.asarray(n_points, dtype=float)[ok, None]
    mass = wt.sum(axis=0)
    has = mass > 1e-9 * mass.sum()
    mean_l = (wt[:, has] * mli[ok, None]).sum(axis=0) / mass[has]
    log_i0 = (3.0 * mean_l - log_t) / 2.0
    x = np.log(np.asarray(grid_nm, dtype=float)[has] / 100.0)
    m = mass[has] / mass[has].sum()
    x_mean = float(np.sum(m * x))
    spread = float(np.sqrt(np.sum(m * (x - x_mean) ** 2)))
    y_mean = float(np.sum(m * log_i0))
    if slope is not None:
        fitted = False
    elif spread >= min_log_spread:
        slope = float(np.sum(m * (x - x_mean) * (log_i0 - y_mean)) / spread**2)
        fitted = True
    else:
        slope = RAYLEIGH_SLOPE
        fitted = False
    intercept = y_mean - slope * x_mean
    return BrightnessModel(intercept=intercept, slope=slope, log_threshold=log_t,
                           slope_fitted=fitted)


# Weight of the brightness line at a grid point, in tracks. A peak spreads
# its tracks over 10-20 grid points, so with 20 a point of a well-populated
# peak still took a third to half of its u from the line; in a 70/140 nm
# mixture the fitted line (slope ~4.3, pulled flat by the mixing) then put
# u(70 nm) at 0.76-0.86 where the 70 nm spots give 0.55-0.58, and the
# visible-depth ratio at 2.5 instead of ~3.3. With 2, u(70 nm) is 0.63-0.67,
# the ratio 3.0-3.2, and flanks and stray points keep their own tracks'
# brightness (which is what the line would get wrong there, see the module notes).
PRIOR_TRACKS = 2.0


def grid_log_brightness_ratio(model: BrightnessModel, grid_nm, posterior, mean_log_intensity,
                              n_points, *, prior_tracks: float = PRIOR_TRACKS) -> np.ndarray:
    """u = ln(I0 / T) per grid point, shrinking each point's own estimate to the line.

    Parameters
    ----------
    model : BrightnessModel
        The fitted line (and threshold).
    grid_nm : ndarray, shape (g,)
        Diameter grid, nm.
    posterior : ndarray, shape (n, g)
        Track posteriors over the grid.
    mean_log_intensity, n_points : ndarray, shape (n,)
        Per-track mean ln(intensity) and points.
    prior_tracks : float
        Weight of the line, in tracks: a grid point backed by this many tracks
        (posterior mass) takes half its value from its own tracks (default
        :data:`PRIOR_TRACKS`).

    Returns
    -------
    ndarray, shape (g,)
        u per grid point, floored at a small positive value.
    """
    u_line = model.log_ratio(grid_nm)
    mli = np.asarray(mean_log_intensity, dtype=float)
    ok = np.isfinite(mli)
    post = posterior[ok]
    tracks = post.sum(axis=0)
    wt = post * np.asarray(n_points, dtype=float)[ok, None]
    mass = wt.sum(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_l = (wt * mli[ok, None]).sum(axis=0) / mass
    u_own = 1.5 * (mean_l - model.log_threshold)
    lam = tracks / (tracks + prior_tracks)
    u = np.where(mass > 0, lam * np.nan_to_num(u_own) + (1.0 - lam) * u_line, u_line)
    return np.maximum(u, MIN_LOG_RATIO)


# Spread (SD, ln units) added to a track's mean ln(brightness / threshold) for
# noise and motion-blur variation of the peak; 1/threshold_sigma (0.2) is the
# relative noise of a spot at the threshold, and blur adds ~0.1-0.2.
BRIGHTNESS_SPREAD = 1.0
_DEPTH_NODES = 64


def brightness_log_likelihood(model: BrightnessModel, grid_nm, mean_log_intensity,
                              *, spread: float = BRIGHTNESS_SPREAD,
                              log_ratio=None, nodes: int = _DEPTH_NODES,
                              engine: str = "auto") -> np.ndarray:
    """ln p(track's mean log brightness | diameter) under the light-sheet model.

    A particle of size d seen at relative depth s = z / z_max (uniform on
    [0, 1]) has y = ln(I / T) = u(d) (1 - s^2), between 0 and u(d); the track's
    mean is taken as one such y plus Gaussian noise of SD ``spread``.

    Parameters
    ----------
    model : BrightnessModel
    grid_nm : ndarray, shape (g,)
    mean_log_intensity : ndarray, shape (n,)
        Per-track mean ln brightness, same units as the model; ``nan`` rows
        get 0 (no information).
    spread : float
        Noise SD in ln units.
    log_ratio : ndarray, shape (g,), optional
        u per grid point (default: the model's line).
    nodes : int
        Midpoint nodes of the integral over depth (fewer are enough when
        ``spread`` is wide compared with u / nodes).
    engine : {"auto", "numba", "numpy"}
        The numba kernel (:func:`~exotrace.nta._kernels.light_sheet_density_nb`,
        default when numba is installed) or the numpy reference; same values.

    Returns
    -------
    ndarray, shape (n, g)
    """
    u = model.log_ratio(grid_nm) if log_ratio is None else np.asarray(log_ratio, dtype=float)
    engine = resolve_engine(engine)
    y = np.asarray(mean_log_intensity, dtype=float) - model.log_threshold
    ok = np.isfinite(y)
    out = np.zeros((len(y), len(u)))
    if not np.any(ok):
        return out
    if engine == "numba":
        dens = _kernels.light_sheet_density_nb(np.ascontiguousarray(y[ok]),
                                               np.ascontiguousarray(u, dtype=np.float64),
                                               float(spread), int(nodes))
    else:
        s = (np.arange(nodes) + 0.5) / nodes
        mu = u[:, None] * (1.0 - s[None, :] ** 2)  # (g, nodes)
        z = (y[ok, None, None] - mu[None, :, :]) / spread
        dens = np.exp(-0.5 * z**2).mean(axis=2) / (spread * np.sqrt(2.0 * np.pi))
    out[ok] = np.log(np.maximum(dens, 1e-300))
    return out
