"""A fast track-level NTA simulator (no pixels) for testing sizing and concentration.

Particles of known diameters diffuse in 3-D in a periodic box around a
Gaussian light sheet; each frame integrates the motion over the exposure
(motion blur, sampled in sub-steps); a particle is detected when its blurred
scattering brightness, with multiplicative noise, exceeds the threshold; its
position gets Gaussian localization noise; runs of consecutive detections
(without crossing the box boundary) become tracks. Track lengths, the
detection depth's dependence on brightness (~ d^6, Rayleigh) and the bias
towards large particles are therefore physical, not imposed.

Used by the tests and ``benchmarks/nta_sizing_accuracy.py``; the public video
simulator of the imaging pipeline lives in ``exotrace.nta.simulate``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..physics import diffusion_m2_per_s_from_diameter, effective_viscosity_pa_s
from ._types import Acquisition, Tracks

__all__ = ["SimulatedSample", "simulate_sample"]


@dataclass(frozen=True)
class SimulatedSample:
    """Tracks plus the ground truth that produced them."""

    tracks: Tracks
    track_diameter_nm: np.ndarray  # true diameter per track (in track_id order)
    particle_diameter_nm: np.ndarray  # every particle in the box
    particles_per_ml: float  # nominal bulk concentration asked for
    realized_particles_per_ml: float  # particles actually placed / box volume
    box_volume_ml: float
    sheet_waist_um: float
    threshold: float
    half_depth_um: dict  # visible half-depth per simulated diameter (from the model)


def simulate_sample(
    acquisition: Acquisition,
    *,
    diameters_nm=(100.0,),
    fractions=(1.0,),
    particles_per_ml: float = 2e9,
    n_frames: int = 300,
    frame_shape: tuple[int, int] = (400, 500),
    sheet_waist_um: float = 6.0,
    brightness_at_100nm: float = 40.0,
    threshold: float = 1.0,
    intensity_noise: float = 0.1,
    localization_px: float = 0.3,
    substeps: int = 8,
    fixed_localization: bool = False,
    split_at_edges: bool = False,
    seed: int = 0,
) -> SimulatedSample:
    """Simulate tracks of a sample of spheres under a Gaussian light sheet.

    Parameters
    ----------
    acquisition : Acquisition
        Pixel size (nm), fps, temperature (C), exposure (ms), viscosity.
    diameters_nm, fractions : sequence of float
        Population diameters (nm) and their number fractions in the bulk.
    particles_per_ml : float
        Bulk concentration, particles/mL.
    n_frames : int
        Frames simulated.
    frame_shape : (rows, cols)
        Field of view in pixels.
    sheet_waist_um : float
        w of the sheet profile exp(-2 z^2 / w^2), um.
    brightness_at_100nm : float
        Peak brightness of a 100 nm particle at z = 0 (units of ``threshold``);
        brightness scales as d^6.
    threshold : float
        Detection threshold on the noisy blurred brightness.
    intensity_noise : float
        Relative (log-normal) noise on each spot's brightness.
    localization_px : float
        Localization SD at the threshold brightness, px; it scales as
        1/sqrt(brightness / threshold) unless ``fixed_localization``.
    substeps : int
        Sub-intervals of the exposure; the position average over each is exact
        (end-point mean plus Brownian-bridge term), the brightness average is
        a midpoint rule.
    split_at_edges : bool
        End a track where the particle leaves the field of view (as a real
        camera does). This conditions the steps of edge tracks (a particle
        that stays in view moved less) and biases short tracks' D low by a few
        percent; ``False`` (default) keeps the field periodic and reports
        unwrapped coordinates, so the only selection is the sheet's depth.
    seed : int
        Random seed.
    """
    rng = np.random.default_rng(seed)
    eta = effective_viscosity_pa_s(acquisition.temperature_c, acquisition.viscosity_cp)
    dt = acquisition.frame_interval_s
    t_exp = acquisition.exposure_s
    px_um = acquisition.pixel_size_nm / 1000.0
    width_um = frame_shape[1] * px_um
    height_um = frame_shape[0] * px_um

    diam = np.asarray(diameters_nm, dtype=float)
    frac = np.asarray(fractions, dtype=float)
    frac = frac / frac.sum()
    peak = brightness_at_100nm * (diam / 100.0) ** 6
    # Visible half-depth in the noiseless model: I0 exp(-2 z^2/w^2) = T.
    with np.errstate(invalid="ignore"):
        zmax = sheet_waist_um / 2.0 * np.sqrt(2.0 * np.log(np.maximum(peak / threshold, 1.0)))
    d_um2 = diffusion_m2_per_s_from_diameter(diam, temperature_c=acquisition.temperature_c,
                                             viscosity_pa_s=eta) * 1e12
    # Box half-depth: beyond the deepest visible layer plus noise head-room.
    z_half = float(np.max(zmax)) * 1.3 + 4.0 * np.sqrt(2 * np.max(d_um2) * dt) + 1.0
    box_um3 = width_um * height_um * 2 * z_half
    box_ml = box_um3 * 1e-12
    n_part = rng.poisson(particles_per_ml * box_ml)
    kind = rng.choice(len(diam), size=n_part, p=frac)
    p_d = diam[kind]
    p_diff = d_um2[kind]
    p_peak = peak[kind]
    sd_step = np.sqrt(2.0 * p_diff)  # um per sqrt(s), per axis

    box = np.array([width_um, height_um, 2 * z_half])
    pos = rng.random((n_part, 3)) * box - np.array([0.0, 0.0, z_half])  # unwrapped
    origin = np.array([0.0, 0.0, -z_half])

    h = t_exp / substeps if t_exp > 0 else 0.0
    frames_x = np.empty((n_frames, n_part))
    frames_y = np.empty((n_frames, n_part))
    frames_i = np.empty((n_frames, n_part))
    frames_cell = np.empty((n_frames, n_part), dtype=np.int64)
    for f in range(n_frames):
        if t_exp > 0:
            acc = np.zeros((n_part, 3))
            acc_b = np.zeros(n_part)
            # Exact time-average of Brownian motion over the exposure: per
            # sub-interval, the mean of its end points plus the Brownian-bridge
            # deviation of the integral (variance 2 D h / 12 per axis). Plain
            # point sampling would leave a spurious "localization" of ~D h.
            for _ in range(substeps):
                nxt = pos + rng.standard_normal((n_part, 3)) * (sd_step * np.sqrt(h))[:, None]
                mid = 0.5 * (pos + nxt)
                acc += mid
                wrapped_z = np.mod(mid[:, 2] - origin[2], box[2]) + origin[2]
                acc_b += np.exp(-2.0 * wrapped_z**2 / sheet_waist_um**2)
                pos = nxt
            bridge = sd_step * np.sqrt(h / 12.0 / substeps)
            mean_pos = acc / substeps + rng.standard_normal((n_part, 3)) * bridge[:, None]
            bright = p_peak * acc_b / substeps
            rest = dt - t_exp
        else:
            mean_pos = pos.copy()
            wrapped_z = np.mod(pos[:, 2] - origin[2], box[2]) + origin[2]
            bright = p_peak * np.exp(-2.0 * wrapped_z**2 / sheet_waist_um**2)
            rest = dt
        cell = np.floor((mean_pos - origin) / box).astype(np.int64)
        if split_at_edges:
            frames_cell[f] = cell[:, 0] * 1_000_003 + cell[:, 1] * 1009 + cell[:, 2]
            wrapped = np.mod(mean_pos - origin, box) + origin
        else:
            # z wraps far outside the visible slab; x, y stay unwrapped.
            frames_cell[f] = cell[:, 2]
            wrapped = mean_pos.copy()
            wrapped[:, 2] = np.mod(mean_pos[:, 2] - origin[2], box[2]) + origin[2]
        frames_x[f] = wrapped[:, 0]
        frames_y[f] = wrapped[:, 1]
        frames_i[f] = bright * np.exp(intensity_noise * rng.standard_normal(n_part))
        pos = pos + rng.standard_normal((n_part, 3)) * (sd_step * np.sqrt(rest))[:, None]

    seen = frames_i > threshold
    # A new track starts where a particle becomes visible or crosses the box edge.
    prev_seen = np.vstack([np.zeros((1, n_part), bool), seen[:-1]])
    prev_cell = np.vstack([frames_cell[:1] - 1, frames_cell[:-1]])
    start = seen & (~prev_seen | (frames_cell != prev_cell))
    # Column-major walk (particle, then frame) keeps each track's points together.
    seen_t, start_t = seen.T, start.T
    run_id = np.cumsum(start_t.ravel()) - 1
    mask = seen_t.ravel()
    track_id = run_id[mask].astype(np.int64)
    frame = np.tile(np.arange(n_frames), n_part)[mask].astype(np.int64)
    part = np.repeat(np.arange(n_part), n_frames)[mask]
    inten = frames_i.T.ravel()[mask]
    sigma_um = localization_px * px_um
    if fixed_localization:
        sig = np.full(len(inten), sigma_um)
    else:
        sig = sigma_um * np.sqrt(threshold / inten)
    x = frames_x.T.ravel()[mask] + sig * rng.standard_normal(len(inten))
    y = frames_y.T.ravel()[mask] + sig * rng.standard_normal(len(inten))
    tracks = Tracks(
        track_id=track_id,
        frame=frame,
        x_px=x / px_um,
        y_px=y / px_um,
        intensity=inten,
        n_frames=n_frames,
        frame_shape=frame_shape,
        threshold=threshold,
        source="simulated",
    )
    first = np.flatnonzero(np.r_[True, np.diff(track_id) != 0])
    return SimulatedSample(
        tracks=tracks,
        track_diameter_nm=p_d[part[first]],
        particle_diameter_nm=p_d,
        particles_per_ml=float(particles_per_ml),
        realized_particles_per_ml=float(n_part / box_ml),
        box_volume_ml=box_ml,
        sheet_waist_um=sheet_waist_um,
        threshold=threshold,
        half_depth_um={float(a): float(b) for a, b in zip(diam, zmax, strict=True)},
    )
