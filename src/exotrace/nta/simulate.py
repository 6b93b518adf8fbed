"""Simulated NTA videos with known ground truth (like ``trackpy.artificial``).

Particles diffuse in 3-D in a cell volume: x and y over the camera's field of
view (plus a margin, with periodic wrap outside the view so particles enter and
leave), z through a Gaussian light sheet (reflecting walls far outside the
sheet). Each particle scatters by Rayleigh's law, brightness proportional to
``d**6 * ((m**2 - 1) / (m**2 + 2))**2`` with ``m = n_particle / n_medium``,
times the sheet profile at its depth. Positions are integrated over the
exposure in sub-steps (motion blur), a common flow adds drift, spots are
rendered as pixel-integrated Gaussians, then shot noise (Poisson), read noise
(Gaussian), a camera offset and the 8- or 12-bit range are applied.

Use :func:`simulate_video` for frames in memory (tests) and :func:`simulate` to
write a lossless AVI (FFV1) plus a JSON ground truth next to it.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from fractions import Fraction
from pathlib import Path

import numpy as np

from ..errors import InvalidInput
from ..physics import diffusion_m2_per_s_from_diameter, effective_viscosity_pa_s
from . import _kernels

__all__ = [
    "SimulatedVideo",
    "SimulationSettings",
    "rayleigh_contrast",
    "simulate",
    "simulate_video",
]

WATER_INDEX = 1.333
POLYSTYRENE_INDEX = 1.59


def rayleigh_contrast(particle_index: float, medium_index: float = WATER_INDEX) -> float:
    """Refractive-index factor of Rayleigh scattering, ``((m^2-1)/(m^2+2))^2``.

    Parameters
    ----------
    particle_index, medium_index : float
        Refractive indices (EV ~1.39, polystyrene 1.59, water 1.333).
    """
    m = particle_index / medium_index
    return ((m * m - 1.0) / (m * m + 2.0)) ** 2


@dataclass(frozen=True)
class SimulationSettings:
    """Everything that defines a simulated video (stored in the ground truth).

    Parameters
    ----------
    diameters_nm : sequence of float
        Diameter of each population, nm.
    fractions : sequence of float
        Number fraction of each population (normalized; default equal).
    particles_per_ml : float
        Particle concentration in the cell, particles/mL.
    n_frames, width_px, height_px : int
        Video length and frame size.
    pixel_size_nm, fps, exposure_ms, temperature_c, viscosity_cp
        Capture and medium (``viscosity_cp`` None = water).
    drift_px_per_frame : (float, float)
        Flow drift (x, y), px/frame.
    refractive_index, medium_index : float
        Particle and medium refractive indices.
    diameter_cv : float
        Relative spread (coefficient of variation) within each population (0 = monodisperse).
    sheet_fwhm_um : float
        Full width at half maximum of the light sheet's Gaussian intensity profile, um.
    psf_sigma_px : float
        Sigma of the Gaussian point-spread function, px.
    counts_100nm_polystyrene : float
        Integrated counts per frame of a 100 nm polystyrene bead at the sheet centre.
    background_counts, read_noise_counts, offset_counts : float
        Diffuse background (photons/pixel/frame), Gaussian read noise (counts rms),
        camera offset (counts).
    bit_depth : {8, 12}
    substeps : int
        Positions per exposure used for motion blur.
    seed : int, optional
    """

    diameters_nm: tuple[float, ...] = (100.0,)
    fractions: tuple[float, ...] | None = None
    particles_per_ml: float = 1e9
    n_frames: int = 100
    width_px: int = 256
    height_px: int = 256
    pixel_size_nm: float = 140.0
    fps: float = 25.0
    exposure_ms: float = 30.0
    temperature_c: float = 22.0
    viscosity_cp: float | None = None
    drift_px_per_frame: tuple[float, float] = (0.0, 0.0)
    refractive_index: float = 1.39
    medium_index: float = WATER_INDEX
    diameter_cv: float = 0.0
    sheet_fwhm_um: float = 10.0
    psf_sigma_px: float = 1.6
    counts_100nm_polystyrene: float = 60000.0
    background_counts: float = 10.0
    read_noise_counts: float = 2.0
    offset_counts: float = 8.0
    bit_depth: int = 8
    substeps: int = 8
    seed: int | None = None

    def __post_init__(self) -> None:
        d = tuple(float(v) for v in self.diameters_nm)
        object.__setattr__(self, "diameters_nm", d)
        if not d or any(not math.isfinite(v) or v <= 0 for v in d):
            raise InvalidInput(f"diameters must be positive numbers of nm, got {list(d)}")
        if self.fractions is None:
            fr = tuple(1.0 / len(d) for _ in d)
        else:
            fr = tuple(float(v) for v in self.fractions)
            if len(fr) != len(d):
                raise InvalidInput(
                    f"{len(fr)} fractions given for {len(d)} diameters; give one per diameter")
            if any(not math.isfinite(v) or v < 0 for v in fr) or sum(fr) <= 0:
                raise InvalidInput(f"fractions must be >= 0 and not all zero, got {list(fr)}")
            total = sum(fr)
            fr = tuple(v / total for v in fr)
        object.__setattr__(self, "fractions", fr)
        object.__setattr__(self, "drift_px_per_frame",
                           tuple(float(v) for v in self.drift_px_per_frame))
        if not math.isfinite(self.particles_per_ml) or self.particles_per_ml < 0:
            raise InvalidInput(f"particles-per-ml must be >= 0, got {self.particles_per_ml}")
        for name in ("n_frames", "width_px", "height_px", "substeps"):
            v = getattr(self, name)
            if int(v) != v or v < 1:
                raise InvalidInput(f"{name.replace('_', '-')} must be a positive integer, got {v}")
        if self.width_px < 16 or self.height_px < 16:
            raise InvalidInput("frames must be at least 16x16 px")
        for name in ("pixel_size_nm", "fps", "sheet_fwhm_um", "psf_sigma_px",
                     "refractive_index", "medium_index"):
            v = getattr(self, name)
            if not math.isfinite(v) or v <= 0:
                raise InvalidInput(f"{name.replace('_', '-')} must be a positive number, got {v}")
        for name in ("counts_100nm_polystyrene", "background_counts", "read_noise_counts",
                     "offset_counts", "diameter_cv"):
            v = getattr(self, name)
            if not math.isfinite(v) or v < 0:
                raise InvalidInput(f"{name.replace('_', '-')} must be >= 0, got {v}")
        if not math.isfinite(self.exposure_ms) or self.exposure_ms < 0:
            raise InvalidInput(f"exposure-ms must be >= 0, got {self.exposure_ms}")
        if self.exposure_ms > 1000.0 / self.fps * (1 + 1e-9):
            raise InvalidInput(
                f"exposure-ms {self.exposure_ms} exceeds the frame interval "
                f"{1000.0 / self.fps:.4g} ms at {self.fps} fps")
        if self.bit_depth not in (8, 12):
            raise InvalidInput(f"bit-depth must be 8 or 12, got {self.bit_depth}")
        if not all(math.isfinite(v) for v in self.drift_px_per_frame):
            raise InvalidInput("drift must be finite")
        # validates the temperature and viscosity
        effective_viscosity_pa_s(self.temperature_c, self.viscosity_cp)

    @property
    def max_count(self) -> int:
        return (1 << self.bit_depth) - 1


@dataclass
class SimulatedVideo:
    """Frames and ground truth of one simulated video.

    Attributes
    ----------
    frames : ndarray of uint8 or uint16, shape (n_frames, height, width)
    truth : dict
        JSON-ready ground truth: ``settings``, ``particles_per_ml``,
        ``diameter_nm`` (per particle), ``n_particles``, ``volume_ml``,
        ``particles_in_view_per_frame`` (mean, |z| <= sheet FWHM / 2) and
        ``particles_in_view_per_frame_all_depths``.
    x_px, y_px, z_um : ndarray of float32, shape (n_frames, n_particles)
        Exposure-averaged true position of every particle in every frame.
    """

    frames: np.ndarray
    truth: dict
    x_px: np.ndarray = field(repr=False)
    y_px: np.ndarray = field(repr=False)
    z_um: np.ndarray = field(repr=False)


class _Simulation:
    """State of one run; :meth:`frames` yields frames one at a time."""

    def __init__(self, s: SimulationSettings) -> None:
        self.s = s
        self.rng = np.random.default_rng(s.seed)
        px_um = s.pixel_size_nm * 1e-3
        # Margin outside the view: wrap-around happens where no one looks.
        step_px = abs(s.drift_px_per_frame[0]) + abs(s.drift_px_per_frame[1])
        self.pad_px = int(math.ceil(6 * s.psf_sigma_px + 2 * step_px + 8))
        self.x_span = s.width_px + 2 * self.pad_px
        self.y_span = s.height_px + 2 * self.pad_px
        self.sheet_sigma_um = s.sheet_fwhm_um / (2.0 * math.sqrt(2.0 * math.log(2.0)))
        # Depth of the cell: beyond +-2 FWHM the sheet is < 2e-5 of its peak,
        # so even a 64x brighter particle there is far below the noise.
        self.z_half_um = 2.0 * s.sheet_fwhm_um
        volume_um3 = (self.x_span * px_um) * (self.y_span * px_um) * (2 * self.z_half_um)
        self.volume_ml = volume_um3 * 1e-12
        n = int(self.rng.poisson(s.particles_per_ml * self.volume_ml))
        self.n = n
        comp = self.rng.choice(len(s.diameters_nm), size=n, p=np.asarray(s.fractions))
        d = np.asarray(s.diameters_nm)[comp]
        if s.diameter_cv > 0:
            d = d * np.exp(self.rng.normal(0.0, s.diameter_cv, n) - 0.5 * s.diameter_cv**2)
        self.diameter_nm = d
        self.component = comp
        eta = effective_viscosity_pa_s(s.temperature_c, s.viscosity_cp)
        d_m2_s = diffusion_m2_per_s_from_diameter(d, temperature_c=s.temperature_c,
                                                  viscosity_pa_s=eta)
        self.diff_px2_s = np.atleast_1d(d_m2_s) / (s.pixel_size_nm * 1e-9) ** 2
        self.diff_um2_s = np.atleast_1d(d_m2_s) * 1e12
        self.amp0 = (s.counts_100nm_polystyrene * (d / 100.0) ** 6
                     * rayleigh_contrast(s.refractive_index, s.medium_index)
                     / rayleigh_contrast(POLYSTYRENE_INDEX, s.medium_index))
        self.x = self.rng.uniform(-self.pad_px, s.width_px + self.pad_px, n)
        self.y = self.rng.uniform(-self.pad_px, s.height_px + self.pad_px, n)
        self.z = self.rng.uniform(-self.z_half_um, self.z_half_um, n)
        self.in_slab: list[int] = []
        self.in_view: list[int] = []

    def _move(self, dt_s: float) -> None:
        s = self.s
        if dt_s <= 0 or self.n == 0:
            return
        vx = s.drift_px_per_frame[0] * s.fps
        vy = s.drift_px_per_frame[1] * s.fps
        sd_px = np.sqrt(2.0 * self.diff_px2_s * dt_s)
        sd_um = np.sqrt(2.0 * self.diff_um2_s * dt_s)
        self.x += vx * dt_s + sd_px * self.rng.standard_normal(self.n)
        self.y += vy * dt_s + sd_px * self.rng.standard_normal(self.n)
        self.z += sd_um * self.rng.standard_normal(self.n)
        lo, span_x, span_y = -self.pad_px, self.x_span, self.y_span
        self.x = lo + np.mod(self.x - lo, span_x)
        self.y = lo + np.mod(self.y - lo, span_y)
        # reflecting walls in z
        zh = self.z_half_um
        self.z = np.where(self.z > zh, 2 * zh - self.z, self.z)
        self.z = np.where(self.z < -zh, -2 * zh - self.z, self.z)

    def frames(self) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]]:
        s = self.s
        dt = 1.0 / s.fps
        texp = s.exposure_ms / 1000.0
        nsub = s.substeps if texp > 0 else 1
        sub_dt = texp / nsub
        half_width = int(math.ceil(4.0 * s.psf_sigma_px))
        dtype = np.uint8 if s.bit_depth == 8 else np.uint16
        # first sub-step sits half a sub-interval into the first exposure
        self._move(0.5 * sub_dt)
        for _ in range(s.n_frames):
            image = np.zeros((s.height_px, s.width_px), dtype=np.float64)
            xs = np.zeros(self.n)
            ys = np.zeros(self.n)
            zs = np.zeros(self.n)
            for k in range(nsub):
                if k > 0:
                    self._move(sub_dt)
                profile = np.exp(-(self.z**2) / (2.0 * self.sheet_sigma_um**2))
                amp = self.amp0 * profile / nsub
                # Skip particles that cannot add even a twentieth of a count.
                vis = amp > 0.05
                _kernels.render_spots_nb(image, self.x[vis], self.y[vis], amp[vis],
                                         float(s.psf_sigma_px), half_width)
                if k == 0:
                    x_ref, y_ref = self.x.copy(), self.y.copy()
                # minimal-image offsets, so a wrap during the exposure does not
                # average positions from both sides of the cell
                xs += _wrap_offset(self.x - x_ref, self.x_span)
                ys += _wrap_offset(self.y - y_ref, self.y_span)
                zs += self.z
            lo = -self.pad_px
            xs = lo + np.mod(x_ref + xs / nsub - lo, self.x_span)
            ys = lo + np.mod(y_ref + ys / nsub - lo, self.y_span)
            zs /= nsub
            in_view = (xs >= -0.5) & (xs < s.width_px - 0.5) & (ys >= -0.5) & (ys < s.height_px - 0.5)
            self.in_view.append(int(in_view.sum()))
            self.in_slab.append(int((in_view & (np.abs(zs) <= s.sheet_fwhm_um / 2)).sum()))
            photons = self.rng.poisson(image + s.background_counts).astype(np.float64)
            counts = photons + s.read_noise_counts * self.rng.standard_normal(image.shape)
            counts += s.offset_counts
            frame = np.clip(np.rint(counts), 0, s.max_count).astype(dtype)
            yield frame, xs.astype(np.float32), ys.astype(np.float32), zs.astype(np.float32)
            # from the middle of the last sub-step to the first of the next exposure
            self._move(dt - texp + sub_dt if texp > 0 else dt)

    def truth(self) -> dict:
        s = self.s
        return {
            "settings": _settings_dict(s),
            "particles_per_ml": s.particles_per_ml,
            "n_particles": self.n,
            "volume_ml": self.volume_ml,
            "diameter_nm": [round(float(v), 4) for v in self.diameter_nm],
            "component": [int(c) for c in self.component],
            "particles_in_view_per_frame": float(np.mean(self.in_slab)) if self.in_slab else 0.0,
            "particles_in_view_per_frame_all_depths":
                float(np.mean(self.in_view)) if self.in_view else 0.0,
            "slab_half_thickness_um": s.sheet_fwhm_um / 2,
            "field_of_view_um": [s.width_px * s.pixel_size_nm * 1e-3,
                                 s.height_px * s.pixel_size_nm * 1e-3],
            "margin_px": self.pad_px,
            "cell_depth_um": 2 * self.z_half_um,
        }


def _wrap_offset(delta: np.ndarray, span: float) -> np.ndarray:
    return np.mod(delta + 0.5 * span, span) - 0.5 * span


def _settings_dict(s: SimulationSettings) -> dict:
    d = asdict(s)
    d["diameters_nm"] = list(s.diameters_nm)
    d["fractions"] = list(s.fractions or ())
    d["drift_px_per_frame"] = list(s.drift_px_per_frame)
    return d


def simulate_video(settings: SimulationSettings | None = None, **kwargs) -> SimulatedVideo:
    """Simulate a video in memory.

    Parameters
    ----------
    settings : SimulationSettings, optional
        All parameters; keyword arguments build one instead (same names), e.g.
        ``simulate_video(diameters_nm=(70, 140), fractions=(0.6, 0.4), seed=1)``.

    Returns
    -------
    SimulatedVideo
    """
    s = _settings(settings, kwargs)
    sim = _Simulation(s)
    frames, xs, ys, zs = [], [], [], []
    for frame, x, y, z in sim.frames():
        frames.append(frame)
        xs.append(x)
        ys.append(y)
        zs.append(z)
    return SimulatedVideo(
        frames=np.stack(frames), truth=sim.truth(),
        x_px=np.stack(xs), y_px=np.stack(ys), z_um=np.stack(zs))


def _settings(settings: SimulationSettings | None, kwargs: dict) -> SimulationSettings:
    if settings is not None and kwargs:
        raise InvalidInput("give either settings or keyword arguments, not both")
    if settings is None:
        for key in ("diameters_nm", "fractions", "drift_px_per_frame"):
            if key in kwargs and kwargs[key] is not None and not isinstance(kwargs[key], tuple):
                kwargs[key] = tuple(kwargs[key])
        try:
            settings = SimulationSettings(**kwargs)
        except TypeError as exc:
            raise InvalidInput(f"unknown simulation setting: {exc}") from None
    return settings


def simulate(path: str | Path, settings: SimulationSettings | None = None, *,
             progress=None, **kwargs) -> dict:
    """Simulate a video and write it as a lossless AVI plus ``<path>.json`` ground truth.

    Frames are generated and encoded one at a time, so memory does not grow
    with the video length. 8-bit videos are stored as FFV1 ``gray``, 12-bit as
    FFV1 ``gray16le`` (values 0-4095); both read back bit-exactly.

    Parameters
    ----------
    path : str or Path
        Output video (``.avi``); the ground truth goes to the same name with ``.json``.
    settings : SimulationSettings, optional
        Or keyword arguments as in :func:`simulate_video`.
    progress : callable, optional
        Called with the number of frames written after each frame.

    Returns
    -------
    dict
        The ground truth (also written to the JSON file), with ``video`` and
        ``truth_file`` paths added.
    """
    import av

    s = _settings(settings, kwargs)
    path = Path(path)
    if path.parent and not path.parent.exists():
        raise InvalidInput(f"{path}: folder {path.parent} does not exist")
    sim = _Simulation(s)
    pix_fmt = "gray" if s.bit_depth == 8 else "gray16le"
    container = av.open(str(path), mode="w", format="avi")
    try:
        stream = container.add_stream("ffv1", rate=Fraction(s.fps).limit_denominator(10000))
        stream.width = s.width_px
        stream.height = s.height_px
        stream.pix_fmt = pix_fmt
        for frame, *_ in sim.frames():
            vf = av.VideoFrame.from_ndarray(frame, format=pix_fmt)
            for packet in stream.encode(vf):
                container.mux(packet)
            if progress is not None:
                progress(1)
        for packet in stream.encode():
            container.mux(packet)
    finally:
        container.close()
    truth = sim.truth()
    truth_path = path.with_suffix(".json")
    truth_path.write_text(json.dumps(truth, indent=1))
    return {**truth, "video": str(path), "truth_file": str(truth_path)}

