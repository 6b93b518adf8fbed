"""An NTA video generator written apart from ``exotrace.nta.simulate`` (an oracle).

It shares no code with the product's simulator and makes its physics in other
ways, so that the sizing is judged on videos it was not tuned on:

* **Exposure**: the shutter is open for ``exposure_ms`` of every frame; the
  exposure is cut into ``substeps`` equal slices and the particle is sampled
  once at a random time inside each slice (stratified Monte-Carlo of the
  time average). Between samples the Brownian increment is exact (Gaussian of
  variance 2 D dt_sub per axis) and the flow is integrated by the midpoint
  rule at the particle's position. The spot is the average of the
  pixel-integrated PSF over the samples, each weighted by the light sheet at
  that sample's depth.
* **Flow** varies across the field and in time: ``v(x, y, t) = m(t) *
  (v0 + G (r - c) + k ((y - c_y) / (H / 2))^2 e_x)``, with ``G`` a 2 x 2
  velocity gradient (shear), ``k`` the curvature of a Poiseuille-like profile
  and ``m(t) = 1 + a sin(2 pi t / P + phi)`` a slow modulation of the pump.
* **Light sheet**: Gaussian intensity profile of ``sheet_fwhm_um`` in z; the
  particles diffuse in z between reflecting walls at +-2.5 FWHM.
* **Brightness**: Rayleigh, photons proportional to ``d^6`` times the
  refractive-index contrast ``((m^2 - 1) / (m^2 + 2))^2`` (computed here),
  normalised to ``photons_100nm_ev`` for a 100 nm EV of index 1.39 at the
  sheet centre.
* **Camera**: Poisson photons on signal plus background, electrons to counts by
  ``gain`` (counts per photon), Gaussian read noise, an offset, rounding and
  clipping to 8 or 12 bits.
* **Entering and leaving**: a particle that leaves the cell (the view plus a
  margin) is replaced at the opposite side by a *new* particle (new depth,
  new size for mixtures); the wrap happens only between exposures.

The Brownian part of every particle's exposure-averaged position is kept
apart (``bx_px``, ``by_px``) with a birth counter, so :func:`blur_msd_check`
can compare its mean squared displacement with the blurred-diffusion law
(Savin & Doyle 2005, Biophys J 88:623, eq. for a uniform shutter; Michalet
2010, Phys Rev E 82:041914, eq. 7 in 2-D): per axis

    MSD(n) = 2 D (n dt - t_exp / 3),   n >= 1,

(2-D: 4 D (n dt - t_exp / 3)), D from Stokes-Einstein ``kB T / (3 pi eta d)``.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

import numpy as np
from scipy.special import erf

from exotrace.physics import water_viscosity_pa_s

__all__ = ["IndependentSettings", "IndependentVideo", "blur_msd_check", "generate",
           "stokes_einstein_m2_s"]

BOLTZMANN_J_K = 1.380649e-23
WATER_N = 1.333


def stokes_einstein_m2_s(diameter_nm, temperature_c: float) -> np.ndarray:
    """D = kB T / (3 pi eta d), m^2/s, water at ``temperature_c``."""
    eta = water_viscosity_pa_s(temperature_c)
    d_m = np.asarray(diameter_nm, dtype=float) * 1e-9
    return BOLTZMANN_J_K * (temperature_c + 273.15) / (3.0 * math.pi * eta * d_m)


def _contrast(n_particle: float) -> float:
    m2 = (n_particle / WATER_N) ** 2
    return ((m2 - 1.0) / (m2 + 2.0)) ** 2


@dataclass(frozen=True)
class IndependentSettings:
    """One capture. Lengths in px unless named otherwise; flow in px/frame."""

    diameters_nm: tuple[float, ...] = (100.0,)
    fractions: tuple[float, ...] = (1.0,)
    particles_per_ml: float = 1.5e9
    n_frames: int = 150
    width_px: int = 384
    height_px: int = 288
    pixel_size_nm: float = 140.0
    fps: float = 25.0
    exposure_ms: float = 30.0
    temperature_c: float = 22.0
    refractive_index: float = 1.39
    flow_px_per_frame: tuple[float, float] = (6.0, -1.5)
    # d v / d r, (px/frame) per px: rows (v_x, v_y), columns (x, y)
    flow_gradient_per_frame: tuple[tuple[float, float], tuple[float, float]] = (
        (0.0, 0.012), (-0.003, 0.0))
    flow_curvature_px_per_frame: float = 0.0
    flow_modulation: float = 0.25
    flow_period_frames: float = 90.0
    sheet_fwhm_um: float = 12.0
    psf_sigma_px: float = 1.45
    photons_100nm_ev: float = 3000.0
    background_photons: float = 12.0
    gain: float | None = None  # counts per photon; default 1 (8-bit) or 4 (12-bit)
    read_noise_counts: float = 1.5
    offset_counts: float = 6.0
    bit_depth: int = 8
    substeps: int = 48
    seed: int = 0

    @property
    def counts_per_photon(self) -> float:
        if self.gain is not None:
            return float(self.gain)
        return 1.0 if self.bit_depth == 8 else 4.0


@dataclass
class IndependentVideo:
    """Frames and truth; positions are exposure averages, shape (n_frames, n_slots)."""

    frames: np.ndarray
    settings: IndependentSettings
    diameter_nm: np.ndarray  # per slot and frame (a slot is re-born on wrap)
    x_px: np.ndarray
    y_px: np.ndarray
    z_um: np.ndarray
    bx_px: np.ndarray  # Brownian part of the exposure average, continuous per birth
    by_px: np.ndarray
    birth: np.ndarray  # birth counter of each slot at each frame
    in_view_per_frame: float = 0.0
    truth: dict = field(default_factory=dict)


class _Cell:
    def __init__(self, s: IndependentSettings) -> None:
        self.s = s
        self.rng = np.random.default_rng(s.seed)
        self.sheet_sd_um = s.sheet_fwhm_um / (2.0 * math.sqrt(2.0 * math.log(2.0)))
        self.z_wall_um = 2.5 * s.sheet_fwhm_um
        vmax = self._max_speed()
        self.pad = int(math.ceil(vmax + 8.0 * s.psf_sigma_px + 12.0))
        self.x0, self.x1 = -self.pad, s.width_px + self.pad
        self.y0, self.y1 = -self.pad, s.height_px + self.pad
        px_um = s.pixel_size_nm * 1e-3
        vol_ml = ((self.x1 - self.x0) * px_um * (self.y1 - self.y0) * px_um
                  * 2.0 * self.z_wall_um * 1e-12)
        self.n = int(self.rng.poisson(s.particles_per_ml * vol_ml))
        self.volume_ml = vol_ml
        self.x = self.rng.uniform(self.x0, self.x1, self.n)
        self.y = self.rng.uniform(self.y0, self.y1, self.n)
        self.z = self.rng.uniform(-self.z_wall_um, self.z_wall_um, self.n)
        self.birth = np.zeros(self.n, dtype=np.int64)
        self.bx = np.zeros(self.n)
        self.by = np.zeros(self.n)
        self._draw_sizes(np.ones(self.n, dtype=bool))

    def _max_speed(self) -> float:
        s = self.s
        g = np.asarray(s.flow_gradient_per_frame, dtype=float)
        half = np.array([s.width_px, s.height_px], dtype=float) / 2 + 60.0
        v = np.abs(np.asarray(s.flow_px_per_frame)) + np.abs(g) @ half
        return float((1.0 + abs(s.flow_modulation)) * (v.max() + abs(s.flow_curvature_px_per_frame)
                                                       * 1.5))

    def _draw_sizes(self, which: np.ndarray) -> None:
        s = self.s
        k = int(which.sum())
        if not hasattr(self, "d_nm"):
            self.d_nm = np.zeros(self.n)
        comp = self.rng.choice(len(s.diameters_nm), size=k, p=np.asarray(s.fractions)
                               / np.sum(s.fractions))
        self.d_nm[which] = np.asarray(s.diameters_nm, dtype=float)[comp]
        d_um2_s = stokes_einstein_m2_s(self.d_nm, s.temperature_c) * 1e12
        self.d_px2_s = d_um2_s / (s.pixel_size_nm * 1e-3) ** 2
        self.d_um2_s = d_um2_s
        self.photons0 = (s.photons_100nm_ev * (self.d_nm / 100.0) ** 6
                         * _contrast(s.refractive_index) / _contrast(1.39))

    def velocity(self, x, y, t_frames) -> tuple[np.ndarray, np.ndarray]:
        """Flow at (x, y) and time t (in frames), px/frame."""
        s = self.s
        g = s.flow_gradient_per_frame
        cx, cy = 0.5 * (s.width_px - 1), 0.5 * (s.height_px - 1)
        m = 1.0 + s.flow_modulation * np.sin(2.0 * math.pi * t_frames / s.flow_period_frames
                                               + 0.7)
        vx = s.flow_px_per_frame[0] + g[0][0] * (x - cx) + g[0][1] * (y - cy)
        vx = vx + s.flow_curvature_px_per_frame * ((y - cy) / (0.5 * s.height_px)) ** 2
        vy = s.flow_px_per_frame[1] + g[1][0] * (x - cx) + g[1][1] * (y - cy)
        return m * vx, m * vy

    def advance(self, t0_frames: float, dt_frames: float) -> None:
        """Move every particle from t0 over dt (frames): exact Brownian, midpoint flow."""
        if dt_frames <= 0:
            return
        s = self.s
        dt_s = dt_frames / s.fps
        sd_px = np.sqrt(2.0 * self.d_px2_s * dt_s)
        wx = sd_px * self.rng.standard_normal(self.n)
        wy = sd_px * self.rng.standard_normal(self.n)
        vx, vy = self.velocity(self.x, self.y, t0_frames)
        vx, vy = self.velocity(self.x + 0.5 * (vx * dt_frames + wx),
                               self.y + 0.5 * (vy * dt_frames + wy), t0_frames + 0.5 * dt_frames)
        self.x += vx * dt_frames + wx
        self.y += vy * dt_frames + wy
        self.bx += wx
        self.by += wy
        self.z += np.sqrt(2.0 * self.d_um2_s * dt_s) * self.rng.standard_normal(self.n)
        zw = self.z_wall_um
        self.z = np.where(self.z > zw, 2 * zw - self.z, self.z)
        self.z = np.where(self.z < -zw, -2 * zw - self.z, self.z)

    def rebirth(self) -> None:
        """Particles outside the cell come back at the other side as new ones."""
        out = (self.x < self.x0) | (self.x >= self.x1) | (self.y < self.y0) | (self.y >= self.y1)
        if not out.any():
            return
        self.x[out] = self.x0 + np.mod(self.x[out] - self.x0, self.x1 - self.x0)
        self.y[out] = self.y0 + np.mod(self.y[out] - self.y0, self.y1 - self.y0)
        self.z[out] = self.rng.uniform(-self.z_wall_um, self.z_wall_um, int(out.sum()))
        self.birth[out] += 1
        self.bx[out] = 0.0
        self.by[out] = 0.0
        if len(self.s.diameters_nm) > 1:
            self._draw_sizes(out)


def _render(image: np.ndarray, xs: np.ndarray, ys: np.ndarray, photons: np.ndarray,
            sigma: float) -> None:
    """Add spots: mean over samples of pixel-integrated Gaussians, (P, S) inputs."""
    if xs.shape[0] == 0:
        return
    h, w = image.shape
    cx = np.rint(xs.mean(axis=1)).astype(np.int64)
    cy = np.rint(ys.mean(axis=1)).astype(np.int64)
    reach = np.max(np.abs(np.concatenate([xs - cx[:, None], ys - cy[:, None]], axis=1)))
    half = int(math.ceil(4.5 * sigma + reach)) + 1
    off = np.arange(-half, half + 1)
    edges = np.arange(-half, half + 2) - 0.5
    scale = 1.0 / (math.sqrt(2.0) * sigma)
    ex = erf((edges[None, None, :] - (xs - cx[:, None])[:, :, None]) * scale)
    ey = erf((edges[None, None, :] - (ys - cy[:, None])[:, :, None]) * scale)
    gx = 0.5 * np.diff(ex, axis=2)
    gy = 0.5 * np.diff(ey, axis=2)
    # sum over samples of outer products: (P, Y, S) @ (P, S, X)
    spots = np.matmul(np.transpose(gy, (0, 2, 1)), photons[:, :, None] * gx)
    for p in range(len(cx)):
        r0, c0 = cy[p] - half, cx[p] - half
        ra, rb = max(r0, 0), min(r0 + len(off), h)
        ca, cb = max(c0, 0), min(c0 + len(off), w)
        if ra < rb and ca < cb:
            image[ra:rb, ca:cb] += spots[p, ra - r0:rb - r0, ca - c0:cb - c0]


def generate(settings: IndependentSettings | None = None, **kwargs) -> IndependentVideo:
    """Render a capture (frames in memory) with its truth. See the module notes."""
    s = settings if settings is not None else IndependentSettings(**kwargs)
    cell = _Cell(s)
    nsub = max(int(s.substeps), 1)
    t_exp_frames = s.exposure_ms * 1e-3 * s.fps
    max_count = (1 << s.bit_depth) - 1
    dtype = np.uint8 if s.bit_depth == 8 else np.uint16
    gain = s.counts_per_photon
    frames = np.empty((s.n_frames, s.height_px, s.width_px), dtype=dtype)
    shape = (s.n_frames, cell.n)
    xa, ya, za, bxa, bya, da = (np.empty(shape) for _ in range(6))
    births = np.empty(shape, dtype=np.int64)
    in_view = []
    for f in range(s.n_frames):
        # stratified random sample times inside the exposure [f, f + t_exp)
        slots = (np.arange(nsub) + cell.rng.uniform(0.0, 1.0, nsub)) / nsub * t_exp_frames
        xs = np.empty((cell.n, nsub))
        ys = np.empty((cell.n, nsub))
        zs = np.empty((cell.n, nsub))
        sbx = np.zeros(cell.n)
        sby = np.zeros(cell.n)
        t_prev = 0.0
        for k, t in enumerate(slots):
            cell.advance(f + t_prev, t - t_prev)
            t_prev = t
            xs[:, k], ys[:, k], zs[:, k] = cell.x, cell.y, cell.z
            sbx += cell.bx
            sby += cell.by
        photons = (cell.photons0[:, None]
                   * np.exp(-zs ** 2 / (2.0 * cell.sheet_sd_um ** 2)) / nsub)
        # below half a photon over the whole spot: far under the background noise
        vis = ((photons.sum(axis=1) > 0.5)
               & (xs.max(axis=1) > -10) & (xs.min(axis=1) < s.width_px + 10)
               & (ys.max(axis=1) > -10) & (ys.min(axis=1) < s.height_px + 10))
        image = np.zeros((s.height_px, s.width_px))
        _render(image, xs[vis], ys[vis], photons[vis], s.psf_sigma_px)
        xa[f], ya[f], za[f] = xs.mean(axis=1), ys.mean(axis=1), zs.mean(axis=1)
        bxa[f], bya[f] = sbx / nsub, sby / nsub
        births[f] = cell.birth
        da[f] = cell.d_nm
        inside = ((xa[f] >= -0.5) & (xa[f] < s.width_px - 0.5) & (ya[f] >= -0.5)
                  & (ya[f] < s.height_px - 0.5) & (np.abs(za[f]) <= 0.5 * s.sheet_fwhm_um))
        in_view.append(int(inside.sum()))
        electrons = cell.rng.poisson(image + s.background_photons).astype(np.float64)
        counts = (gain * electrons + s.read_noise_counts * cell.rng.standard_normal(image.shape)
                  + s.offset_counts)
        frames[f] = np.clip(np.rint(counts), 0, max_count).astype(dtype)
        # rest of the frame interval, then particles that left come back as new ones
        cell.advance(f + t_prev, 1.0 - t_prev)
        cell.rebirth()
    truth = {"settings": asdict(s), "n_slots": cell.n, "volume_ml": cell.volume_ml,
             "particles_in_view_per_frame": float(np.mean(in_view)),
             "diffusion_m2_s": [float(v) for v in stokes_einstein_m2_s(
                 np.asarray(s.diameters_nm), s.temperature_c)]}
    return IndependentVideo(frames=frames, settings=s, diameter_nm=da, x_px=xa, y_px=ya,
                            z_um=za, bx_px=bxa, by_px=bya, birth=births,
                            in_view_per_frame=float(np.mean(in_view)), truth=truth)


def blur_msd_check(video: IndependentVideo, lags=(1, 2, 3, 5)) -> list[dict]:
    """Measured vs expected per-axis MSD of the exposure-averaged Brownian motion.

    Uses every particle (not only visible ones) and every pair of frames of
    the same birth, so it checks the generator's physics, not the analysis.
    Expected: ``2 D (n dt - t_exp / 3)`` (Savin & Doyle 2005; Michalet 2010).
    Monodisperse videos only.
    """
    s = video.settings
    d_px2_s = stokes_einstein_m2_s(s.diameters_nm[0], s.temperature_c) / (
        s.pixel_size_nm * 1e-9) ** 2
    dt = 1.0 / s.fps
    t_exp = s.exposure_ms * 1e-3
    out = []
    for n in lags:
        same = video.birth[n:] == video.birth[:-n]
        dx = (video.bx_px[n:] - video.bx_px[:-n])[same]
        dy = (video.by_px[n:] - video.by_px[:-n])[same]
        measured = 0.5 * float(np.mean(dx ** 2) + np.mean(dy ** 2))
        expected = 2.0 * d_px2_s * (n * dt - t_exp / 3.0)
        out.append({"lag": n, "msd_px2": measured, "expected_px2": expected,
                    "pairs": int(same.sum())})
    return out
