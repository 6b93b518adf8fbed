"""Simulated nano-flow cytometry sessions with known ground truth (the tests' oracle).

Each particle's side scatter is its Mie cross-section collected by a cone of
``half_angle_deg`` around 90 degrees (:mod:`._mie`), converted to
photo-electrons (Poisson), plus Gaussian electronic noise, times the detector
gain; an event is recorded when that signal reaches the trigger threshold.
Background (noise) triggers arrive at a fixed rate in every file, with signals
just above the threshold (an exponential tail), as a buffer-only run shows
them. Fluorescence: a positive fraction of vesicles carries a log-normal
number of fluorochromes (MESF), every event a Gaussian background.

:func:`simulate_session` writes a bead file, a MESF bead file, a sample, a
buffer-only blank and an isotype control as FCS 3.1 files (``$VOL`` in nL,
``$DURTIM``, ``$TR``, a flow-rate keyword) plus ``truth.json``.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from ..errors import InvalidInput
from ._mie import CollectionOptics, water_index
from ._model import ParticleModel, ScatterCurve

__all__ = [
    "FlowInstrument",
    "SimulatedFile",
    "VesicleSample",
    "simulate_beads",
    "simulate_blank",
    "simulate_mesf_beads",
    "simulate_sample",
    "simulate_session",
    "write_fcs",
]

SCATTER, FLUOR, TIME = "VSSC-H", "FITC-H", "Time"


@dataclass(frozen=True)
class FlowInstrument:
    """The simulated cytometer.

    Parameters
    ----------
    wavelength_nm : float
        Scatter laser, nm.
    medium_index : float, optional
        Default water at the wavelength.
    half_angle_deg, axis_deg, polarization
        Side-scatter collection (see :class:`~exotrace.flow.CollectionOptics`).
    photoelectrons_per_nm2 : float
        Mean photo-electrons per nm^2 of collected cross-section.
    gain_au_per_pe : float
        Channel units per photo-electron.
    electronic_noise_pe : float
        SD of the Gaussian electronic noise, photo-electrons.
    trigger_threshold_au : float
        Events are recorded when the scatter signal reaches this, channel units.
    noise_event_rate_per_s : float
        Background triggers per second (every file, blank included).
    noise_tail_fraction : float
        Background-trigger signals: threshold times (1 + Exponential(this)).
    flow_rate_ul_per_min : float
    scatter_range_au : float
        Detector full scale (``$PnR``); signals are clipped there.
    fluorescence_background_au, fluorescence_noise_au : float
        Mean and SD of every event's fluorescence background, channel units.
    au_per_mesf : float
        Fluorescence channel units per molecule of equivalent fluorochrome.
    """

    wavelength_nm: float = 405.0
    medium_index: float | None = None
    half_angle_deg: float = 30.0
    axis_deg: float = 90.0
    polarization: str = "unpolarized"
    photoelectrons_per_nm2: float = 250.0
    gain_au_per_pe: float = 10.0
    electronic_noise_pe: float = 4.0
    trigger_threshold_au: float = 500.0
    noise_event_rate_per_s: float = 20.0
    noise_tail_fraction: float = 0.3
    flow_rate_ul_per_min: float = 1.0
    scatter_range_au: float = 2.0**24
    fluorescence_background_au: float = 200.0
    fluorescence_noise_au: float = 40.0
    au_per_mesf: float = 0.5

    def __post_init__(self) -> None:
        for name in ("wavelength_nm", "photoelectrons_per_nm2", "gain_au_per_pe",
                     "trigger_threshold_au", "flow_rate_ul_per_min", "scatter_range_au",
                     "au_per_mesf"):
            v = getattr(self, name)
            if not (math.isfinite(v) and v > 0):
                raise InvalidInput(f"{name.replace('_', '-')} must be a positive number, got {v}")
        for name in ("electronic_noise_pe", "noise_event_rate_per_s", "noise_tail_fraction",
                     "fluorescence_background_au", "fluorescence_noise_au"):
            v = getattr(self, name)
            if not (math.isfinite(v) and v >= 0):
                raise InvalidInput(f"{name.replace('_', '-')} must be >= 0, got {v}")
        _ = self.optics  # builds (and so validates) the collection geometry

    @property
    def optics(self) -> CollectionOptics:
        return CollectionOptics(half_angle_deg=self.half_angle_deg, axis_deg=self.axis_deg,
                                polarization=self.polarization)

    @property
    def medium(self) -> float:
        return water_index(self.wavelength_nm) if self.medium_index is None else self.medium_index

    @property
    def scale_au_per_nm2(self) -> float:
        """True calibration scale: mean channel units per nm^2."""
        return self.photoelectrons_per_nm2 * self.gain_au_per_pe

    def curve(self, model: ParticleModel, diameter_range_nm=(10.0, 2000.0)) -> ScatterCurve:
        return ScatterCurve.compute(model, wavelength_nm=self.wavelength_nm,
                                    medium_index=self.medium, optics=self.optics,
                                    diameter_range_nm=diameter_range_nm, step_nm=1.0)

    def detection_limit_nm(self, model: ParticleModel) -> float | None:
        """Diameter whose mean scatter equals the trigger threshold, nm."""
        return self.curve(model).diameter_at(self.trigger_threshold_au / self.scale_au_per_nm2)


@dataclass(frozen=True)
class VesicleSample:
    """A simulated EV sample.

    Parameters
    ----------
    particles_per_ml : float
        Concentration in the original (undiluted) sample, particles/mL.
    dilution : float
        Dilution before acquisition.
    median_diameter_nm, geometric_sd : float
        Log-normal number distribution of diameters.
    diameter_range_nm : (float, float)
        Diameters are drawn within this range (truncated log-normal), nm.
    model : ParticleModel
        Optical model of the vesicles.
    positive_fraction : float
        Fraction of vesicles carrying the fluorescent marker.
    positive_median_mesf, positive_sd_log : float
        Log-normal marker brightness of positive vesicles (MESF; SD of ln).
    duration_s : float
        Acquisition time, s.
    """

    particles_per_ml: float = 1e10
    dilution: float = 100.0
    median_diameter_nm: float = 100.0
    geometric_sd: float = 1.5
    diameter_range_nm: tuple[float, float] = (30.0, 1000.0)
    model: ParticleModel = field(default_factory=ParticleModel)
    positive_fraction: float = 0.3
    positive_median_mesf: float = 5000.0
    positive_sd_log: float = 0.4
    duration_s: float = 60.0

    def __post_init__(self) -> None:
        if not (math.isfinite(self.particles_per_ml) and self.particles_per_ml >= 0):
            raise InvalidInput(f"particles-per-ml must be >= 0, got {self.particles_per_ml}")
        for name in ("dilution", "median_diameter_nm", "geometric_sd", "positive_median_mesf",
                     "duration_s"):
            v = getattr(self, name)
            if not (math.isfinite(v) and v > 0):
                raise InvalidInput(f"{name.replace('_', '-')} must be a positive number, got {v}")
        if self.geometric_sd < 1:
            raise InvalidInput(f"geometric-sd must be >= 1, got {self.geometric_sd}")
        if not 0 <= self.positive_fraction <= 1:
            raise InvalidInput(f"positive-fraction must lie in [0, 1], got {self.positive_fraction}")
        lo, hi = self.diameter_range_nm
        if not (10.0 <= lo < hi <= 2000.0):
            raise InvalidInput(f"diameter range must satisfy 10 <= min < max <= 2000 nm, got {lo}, {hi}")


@dataclass
class SimulatedFile:
    """Events of one simulated file and what is known about them.

    Attributes
    ----------
    events : ndarray, shape (n, 3)
        Columns ``VSSC-H``, ``FITC-H``, ``Time`` (s).
    volume_nl, duration_s : float
    truth : dict
        JSON-ready ground truth.
    diameter_nm : ndarray, shape (n,)
        True diameter of each event (nan for background triggers).
    positive : ndarray of bool, shape (n,)
        Whether the event carries the marker.
    """

    events: np.ndarray
    volume_nl: float
    duration_s: float
    truth: dict
    diameter_nm: np.ndarray = field(repr=False)
    positive: np.ndarray = field(repr=False)


def _scatter_au(rng, inst: FlowInstrument, cross_nm2: np.ndarray) -> np.ndarray:
    pe = rng.poisson(inst.photoelectrons_per_nm2 * cross_nm2).astype(float)
    pe += rng.normal(0.0, inst.electronic_noise_pe, cross_nm2.size) if inst.electronic_noise_pe else 0.0
    return np.minimum(pe * inst.gain_au_per_pe, inst.scatter_range_au)


def _fluorescence_au(rng, inst: FlowInstrument, mesf: np.ndarray) -> np.ndarray:
    bg = rng.normal(inst.fluorescence_background_au, inst.fluorescence_noise_au, mesf.size)
    return bg + mesf * inst.au_per_mesf


def _noise_events(rng, inst: FlowInstrument, duration_s: float) -> np.ndarray:
    n = int(rng.poisson(inst.noise_event_rate_per_s * duration_s))
    tail = rng.exponential(inst.noise_tail_fraction, n) if inst.noise_tail_fraction else np.zeros(n)
    return inst.trigger_threshold_au * (1.0 + tail)


def _assemble(rng, inst, duration_s, scatter, fluor, diameter, positive, truth) -> SimulatedFile:
    noise = _noise_events(rng, inst, duration_s)
    scatter = np.concatenate([scatter, noise])
    fluor = np.concatenate([fluor, _fluorescence_au(rng, inst, np.zeros(noise.size))])
    diameter = np.concatenate([diameter, np.full(noise.size, np.nan)])
    positive = np.concatenate([positive, np.zeros(noise.size, dtype=bool)])
    t = rng.uniform(0.0, duration_s, scatter.size)
    order = np.argsort(t)
    events = np.stack([scatter, fluor, t], axis=1)[order]
    volume_nl = inst.flow_rate_ul_per_min * 1000.0 * duration_s / 60.0
    truth = {**truth, "volume_nl": volume_nl, "duration_s": duration_s,
             "noise_events": int(noise.size), "events": int(scatter.size),
             "scale_au_per_nm2": inst.scale_au_per_nm2, "half_angle_deg": inst.half_angle_deg,
             "trigger_threshold_au": inst.trigger_threshold_au,
             "instrument": asdict(inst)}
    return SimulatedFile(events=events, volume_nl=volume_nl, duration_s=duration_s, truth=truth,
                         diameter_nm=diameter[order], positive=positive[order])


def simulate_sample(sample: VesicleSample, instrument: FlowInstrument | None = None, *,
                    seed: int | None = None, marker: bool = True) -> SimulatedFile:
    """Events of an EV sample (``marker=False``: the same sample with an isotype control).

    The truth holds ``particles_per_ml`` (original sample), ``triggered_vesicles``,
    ``triggered_particles_per_ml`` (vesicles that triggered, per mL of the original
    sample: what event counting measures), ``detection_limit_nm`` (mean scatter at
    the threshold) and ``median_diameter_above_limit_nm`` (true median of the
    vesicles above that limit), ``positive_fraction_of_events``.
    """
    inst = instrument or FlowInstrument()
    rng = np.random.default_rng(seed)
    volume_ml = inst.flow_rate_ul_per_min * 1e-3 * sample.duration_s / 60.0
    n = int(rng.poisson(sample.particles_per_ml / sample.dilution * volume_ml))
    lo, hi = sample.diameter_range_nm
    mu, sig = math.log(sample.median_diameter_nm), math.log(sample.geometric_sd)
    d = np.empty(0)
    while d.size < n:  # truncated log-normal by rejection
        draw = np.exp(rng.normal(mu, sig, 2 * (n - d.size) + 16))
        d = np.concatenate([d, draw[(draw >= lo) & (draw <= hi)]])
    d = d[:n]
    curve = inst.curve(sample.model)
    cross = np.exp(np.interp(d, curve.diameter_nm, np.log(curve.cross_section_nm2)))
    scatter = _scatter_au(rng, inst, cross)
    pos = rng.random(n) < (sample.positive_fraction if marker else 0.0)
    mesf = np.where(pos, sample.positive_median_mesf * np.exp(rng.normal(0, sample.positive_sd_log, n)), 0.0)
    fluor = _fluorescence_au(rng, inst, mesf)
    keep = scatter >= inst.trigger_threshold_au
    limit = inst.detection_limit_nm(sample.model)
    above = d[d >= limit] if limit is not None else d
    factor = sample.dilution / volume_ml
    truth = {
        "kind": "sample" if marker else "isotype",
        "sample": {**asdict(sample), "model": sample.model.to_dict()},
        "seed": seed,
        "particles_per_ml": sample.particles_per_ml,
        "vesicles_in_volume": n,
        "triggered_vesicles": int(keep.sum()),
        "triggered_particles_per_ml": float(keep.sum() * factor),
        "detection_limit_nm": limit,
        "particles_above_limit_per_ml": float(above.size * factor),
        "median_diameter_above_limit_nm": float(np.median(above)) if above.size else None,
        "median_diameter_triggered_nm": float(np.median(d[keep])) if keep.any() else None,
        "dilution": sample.dilution,
    }
    out = _assemble(rng, inst, sample.duration_s, scatter[keep], fluor[keep], d[keep], pos[keep], truth)
    out.truth["positive_fraction_of_events"] = float(out.positive.mean()) if out.positive.size else 0.0
    return out


def simulate_blank(instrument: FlowInstrument | None = None, *, duration_s: float = 60.0,
                   seed: int | None = None) -> SimulatedFile:
    """A buffer-only run: background triggers only."""
    inst = instrument or FlowInstrument()
    rng = np.random.default_rng(seed)
    empty = np.empty(0)
    return _assemble(rng, inst, duration_s, empty, empty, empty, empty.astype(bool),
                     {"kind": "blank", "seed": seed})


def simulate_beads(diameters_nm=(100.0, 200.0, 300.0, 500.0), *, bead_index: float = 1.59,
                   events_per_bead: int = 3000, diameter_cv: float = 0.03,
                   instrument: FlowInstrument | None = None, duration_s: float = 60.0,
                   seed: int | None = None) -> SimulatedFile:
    """A mixture of scatter beads of known diameter (nm) and refractive index."""
    inst = instrument or FlowInstrument()
    diam = np.asarray(diameters_nm, dtype=float)
    if diam.size == 0 or np.any(~np.isfinite(diam)) or np.any(diam <= 0):
        raise InvalidInput("bead diameters must be positive numbers of nm")
    if not 0 <= diameter_cv < 0.5 or events_per_bead < 1:
        raise InvalidInput("bead diameter CV must lie in [0, 0.5) and events per bead be >= 1")
    rng = np.random.default_rng(seed)
    model = ParticleModel(kind="homogeneous", index=bead_index)
    curve = inst.curve(model, diameter_range_nm=(10.0, max(2000.0, float(diam.max()) * 1.3)))
    d = np.repeat(diam, events_per_bead) * np.exp(rng.normal(0.0, diameter_cv, diam.size * events_per_bead))
    cross = np.exp(np.interp(d, curve.diameter_nm, np.log(curve.cross_section_nm2)))
    scatter = _scatter_au(rng, inst, cross)
    keep = scatter >= inst.trigger_threshold_au
    fluor = _fluorescence_au(rng, inst, np.zeros(d.size))
    truth = {"kind": "scatter-beads", "seed": seed, "bead_diameters_nm": diam.tolist(),
             "bead_index": bead_index, "diameter_cv": diameter_cv}
    return _assemble(rng, inst, duration_s, scatter[keep], fluor[keep], d[keep],
                     np.zeros(int(keep.sum()), dtype=bool), truth)


def simulate_mesf_beads(mesf=(0.0, 2000.0, 8000.0, 30000.0, 100000.0), *, events_per_bead: int = 3000,
                        cv: float = 0.08, instrument: FlowInstrument | None = None,
                        duration_s: float = 60.0, seed: int | None = None) -> SimulatedFile:
    """Fluorescence (MESF) calibration beads: bright scatter, known fluorochrome equivalents."""
    inst = instrument or FlowInstrument()
    values = np.asarray(mesf, dtype=float)
    if values.size == 0 or np.any(~np.isfinite(values)) or np.any(values < 0):
        raise InvalidInput("MESF values must be numbers >= 0")
    rng = np.random.default_rng(seed)
    m = np.repeat(values, events_per_bead) * np.exp(rng.normal(0.0, cv, values.size * events_per_bead))
    scatter = np.full(m.size, 50.0 * inst.trigger_threshold_au) * np.exp(rng.normal(0, 0.05, m.size))
    fluor = _fluorescence_au(rng, inst, m)
    truth = {"kind": "mesf-beads", "seed": seed, "mesf": values.tolist(), "au_per_mesf": inst.au_per_mesf,
             "fluorescence_background_au": inst.fluorescence_background_au}
    return _assemble(rng, inst, duration_s, scatter, fluor, np.full(m.size, np.nan),
                     np.zeros(m.size, dtype=bool), truth)


def write_fcs(sim: SimulatedFile, path, *, instrument: FlowInstrument | None = None,
              label: str = "CD63", name: str = "") -> Path:
    """Write a simulated file as FCS 3.1 (``$VOL`` nL, ``$DURTIM`` s, ``$TR``, ``FLOWRATE``)."""
    import flowio

    inst = instrument or FlowInstrument()
    path = Path(path)
    meta = {"$VOL": f"{sim.volume_nl:.6g}", "$DURTIM": f"{sim.duration_s:.6g}",
            "$TR": f"{SCATTER},{inst.trigger_threshold_au:.6g}", "$CYT": "exotrace simulated nano-flow",
            "FLOWRATE": f"{inst.flow_rate_ul_per_min:.6g}", "$P1R": f"{inst.scatter_range_au:.0f}",
            "$P2R": "1048576", "$P3R": f"{sim.duration_s:.0f}", "$SMNO": name or path.stem,
            "EXOTRACE_WAVELENGTH_NM": f"{inst.wavelength_nm:g}"}
    with path.open("wb") as fh:
        flowio.create_fcs(fh, sim.events.astype(np.float32).ravel().tolist(), [SCATTER, FLUOR, TIME],
                          opt_channel_names=["", label, ""], metadata_dict=meta)
    return path


def simulate_session(out_dir, *, sample: VesicleSample | None = None,
                     instrument: FlowInstrument | None = None,
                     bead_diameters_nm=(100.0, 200.0, 300.0, 500.0), bead_index: float = 1.59,
                     seed: int = 0) -> dict:
    """Write ``beads.fcs``, ``mesf_beads.fcs``, ``sample.fcs``, ``blank.fcs``, ``isotype.fcs``
    and ``truth.json`` into ``out_dir``; returns the truth (with the file paths)."""
    inst = instrument or FlowInstrument()
    smp = sample or VesicleSample()
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    # Distinct, non-overlapping seeds per file: sessions of seeds s and s+1 share no stream.
    seeds = [int(s.generate_state(1)[0]) for s in np.random.SeedSequence(seed).spawn(5)]
    files = {
        "beads": simulate_beads(bead_diameters_nm, bead_index=bead_index, instrument=inst,
                                seed=seeds[0]),
        "mesf_beads": simulate_mesf_beads(instrument=inst, seed=seeds[1]),
        "sample": simulate_sample(smp, inst, seed=seeds[2]),
        "blank": simulate_blank(inst, duration_s=smp.duration_s, seed=seeds[3]),
        "isotype": simulate_sample(smp, inst, seed=seeds[4], marker=False),
    }
    truth: dict = {"seed": seed}
    for key, sim in files.items():
        path = write_fcs(sim, out / f"{key}.fcs", instrument=inst, name=key)
        truth[key] = {**sim.truth, "file": str(path)}
    (out / "truth.json").write_text(json.dumps(truth, indent=2) + "\n", encoding="utf-8")
    return truth
