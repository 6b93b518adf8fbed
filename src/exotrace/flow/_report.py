"""A MIFlowCyt-EV style summary of one sample: controls, calibrations, limits, gaps.

Welsh, J. A. et al. (2020). MIFlowCyt-EV: a framework for standardized
reporting of extracellular vesicle flow cytometry experiments. J Extracell
Vesicles 9, 1713526. The summary lists what was used and, as importantly,
what is missing, so a reader can judge the numbers.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

import numpy as np

from ..errors import InvalidInput
from ._calibration import FlowCalibration, pick_scatter_channel
from ._concentration import ConcentrationResult, analysed_volume_nl, event_concentration
from ._events import load_events
from ._gating import MesfCalibration, PercentPositive, percent_positive
from ._model import ParticleModel
from ._sizing import FlowSizeResult, size_events

__all__ = ["DilutionSeries", "FlowReport", "dilution_series", "flow_report"]


@dataclass(frozen=True)
class DilutionSeries:
    """Single-particle counting check: events scale with dilution, median scatter does not.

    Attributes
    ----------
    dilutions, events_per_ml, median_scatter : tuple of float
        Per file, in the order given.
    slope : float
        Of log10(events per mL) against log10(1 / dilution): 1 for single particles.
    median_scatter_cv : float
        Coefficient of variation of the median scatter across dilutions.
    single_particle : bool
        ``|slope - 1| <= 0.1`` and ``median_scatter_cv <= 0.1`` (swarm detection
        bends the slope and shifts the scatter).
    """

    dilutions: tuple[float, ...]
    events_per_ml: tuple[float, ...]
    median_scatter: tuple[float, ...]
    slope: float
    median_scatter_cv: float
    single_particle: bool


def dilution_series(files, dilutions, *, channel: str | int | None = None,
                    flow_rate_ul_per_min: float | None = None) -> DilutionSeries:
    """Check a dilution series for single-particle counting (MIFlowCyt-EV)."""
    dil = [float(d) for d in dilutions]
    if len(dil) != len(files) or len(dil) < 3:
        raise InvalidInput("a dilution series needs three or more files, one dilution each")
    if any(not (math.isfinite(d) and d > 0) for d in dil) or len(set(dil)) < 2:
        raise InvalidInput("dilutions must be positive and not all equal")
    rates, medians = [], []
    for f in files:
        ev = load_events(f, what="dilution file")
        vol, _ = analysed_volume_nl(ev, flow_rate_ul_per_min=flow_rate_ul_per_min)
        rates.append(ev.n_events / (vol * 1e-6))
        medians.append(float(np.median(ev.values(pick_scatter_channel(ev, channel)))))
    if min(rates) <= 0:
        raise InvalidInput("a file of the dilution series has no events")
    slope = float(np.polyfit(np.log10(1.0 / np.asarray(dil)), np.log10(rates), 1)[0])
    m = np.asarray(medians)
    cv = float(np.std(m) / np.mean(m)) if np.mean(m) > 0 else math.inf
    return DilutionSeries(tuple(dil), tuple(rates), tuple(medians), slope, cv,
                          abs(slope - 1.0) <= 0.1 and cv <= 0.1)


@dataclass(frozen=True)
class FlowReport:
    """What a MIFlowCyt-EV reader needs to know about one sample's analysis.

    Attributes
    ----------
    sample_file, instrument : str
    trigger : dict
        ``channel`` and ``threshold`` (channel units) as the file states them.
    controls : dict
        Files used as buffer-only, isotype/unstained and MESF controls (None: not given).
    scatter_calibration, fluorescence_calibration : dict or None
    particle_model : str
    detection_limits : dict
        ``lower_nm`` (trigger threshold through the model), ``upper_nm``,
        ``noise_equivalent_nm`` (blank's 99th percentile), ``ambiguous_ranges_nm``.
    concentration, size, positive : dict or None
        The analyses that could be run.
    dilution_series : dict or None
    missing : list of str
        What MIFlowCyt-EV asks for and this analysis lacks.
    """

    sample_file: str
    instrument: str
    trigger: dict
    controls: dict
    scatter_calibration: dict | None
    fluorescence_calibration: dict | None
    particle_model: str
    detection_limits: dict | None
    concentration: dict | None
    size: dict | None
    positive: dict | None
    dilution_series: dict | None
    missing: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        return asdict(self)


def _size_summary(r: FlowSizeResult) -> dict:
    keys = ("events", "sized_events", "below_limit_events", "ambiguous_events",
            "above_range_events", "mean_nm", "mode_nm", "d10_nm", "d50_nm", "d90_nm",
            "particles_per_ml_above_limit")
    return {k: getattr(r, k) for k in keys}


def flow_report(sample, *, calibration: FlowCalibration | None = None, blank=None, control=None,
                marker_channel: str | int | None = None, mesf: MesfCalibration | None = None,
                mesf_file: str | None = None, model: ParticleModel | None = None,
                dilution: float = 1.0, series: DilutionSeries | None = None,
                detergent_control: str | None = None,
                flow_rate_ul_per_min: float | None = None) -> FlowReport:
    """Run what the inputs allow on one sample and say what is missing.

    Parameters
    ----------
    sample : path, InstrumentResult or FlowEvents
    calibration : FlowCalibration, optional
        Scatter calibration (sizes and detection limit need it).
    blank, control : optional
        Buffer-only run; isotype or unstained control (with ``marker_channel``).
    mesf : MesfCalibration, optional
        And ``mesf_file``, the bead file it came from.
    model : ParticleModel, optional
    dilution : float
    series : DilutionSeries, optional
        From :func:`dilution_series`.
    detergent_control : str, optional
        Name of the detergent-lysis control file, if one was run (recorded only).
    flow_rate_ul_per_min : float, optional
    """
    ev = load_events(sample, what="sample")
    model = model or ParticleModel()
    missing: list[str] = []
    tr = ev.trigger()
    trigger = {"channel": tr[0], "threshold": tr[1]} if tr else {"channel": None, "threshold": None}
    if tr is None:
        missing.append("trigger channel and threshold ($TR) not in the file")
    conc: ConcentrationResult | None = None
    try:
        conc = event_concentration(ev, blank=blank, dilution=dilution,
                                   flow_rate_ul_per_min=flow_rate_ul_per_min)
    except InvalidInput as exc:
        missing.append(f"concentration: {exc}")
    if blank is None:
        missing.append("buffer-only (blank) control: background events not subtracted")
    size = None
    limits = None
    if calibration is None:
        missing.append("scatter calibration (beads + Mie model): sizes and detection limit unknown")
    else:
        size = size_events(ev, calibration, model=model, blank=blank, dilution=dilution,
                           flow_rate_ul_per_min=flow_rate_ul_per_min)
        limits = {"lower_nm": size.detection_limit_nm, "upper_nm": size.upper_limit_nm,
                  "detection_range_nm": size.detection_range_nm,
                  "threshold_au": size.threshold_au, "threshold_source": size.threshold_source,
                  "noise_equivalent_nm": size.noise_equivalent_nm,
                  "ambiguous_ranges_nm": size.ambiguous_ranges_nm}
        if not calibration.half_angle_fitted:
            missing.append("collection half-angle assumed, not fitted (use three or more bead sizes)")
    positive: PercentPositive | None = None
    if control is None or marker_channel is None:
        missing.append("isotype or unstained control with a marker channel: percent positive not reported")
    else:
        positive = percent_positive(ev, load_events(control, what="control"), marker_channel, mesf=mesf)
    if mesf is None:
        missing.append("fluorescence calibration (MESF beads): fluorescence in arbitrary units")
    if detergent_control is None:
        missing.append("detergent-lysis control: vesicular nature of events not shown")
    if series is None:
        missing.append("dilution series: single-particle counting (no swarm) not shown")
    elif not series.single_particle:
        missing.append("dilution series does not show single-particle counting (swarm?)")
    cal_dict = None
    if calibration is not None:
        cal_dict = {k: getattr(calibration, k) for k in (
            "bead_file", "channel", "bead_diameters_nm", "bead_index", "wavelength_nm",
            "medium_index", "half_angle_deg", "half_angle_fitted", "half_angle_interval_deg",
            "scale_au_per_nm2", "residual_rms_log10")}
    return FlowReport(
        sample_file=ev.file, instrument=str(ev.keywords.get("cyt", "")).strip() or "unknown",
        trigger=trigger,
        controls={"buffer_only": None if blank is None else str(getattr(blank, "file", blank)),
                  "isotype_or_unstained": None if control is None
                  else str(getattr(control, "file", control)),
                  "mesf_beads": mesf_file, "detergent_lysis": detergent_control},
        scatter_calibration=cal_dict,
        fluorescence_calibration=None if mesf is None else mesf.to_dict(),
        particle_model=model.describe(), detection_limits=limits,
        concentration=None if conc is None else conc.to_dict(),
        size=None if size is None else _size_summary(size),
        positive=None if positive is None else positive.to_dict(),
        dilution_series=None if series is None else asdict(series),
        missing=missing,
    )
