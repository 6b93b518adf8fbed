"""Event diameters from calibrated side scatter, with the detection limit enforced.

Each event's scatter divided by the calibration scale is a collected
cross-section (nm^2); the particle model's curve, computed with the
calibrated collection optics, turns it into a diameter. Events below the
trigger threshold's cross-section are counted but never sized (the method
does not see those particles, so no size is extrapolated there); events
whose scatter matches several diameters (Mie oscillations) are flagged
ambiguous and not sized; events beyond the grid or at the detector's full
scale are counted as above range. A blank's sized events, scaled to the
sample's volume, are subtracted bin by bin.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

import numpy as np

from ..errors import InsufficientData, InvalidInput
from ..instruments._record import InstrumentResult
from ._calibration import FlowCalibration
from ._concentration import NL_PER_ML, analysed_volume_nl
from ._events import FlowEvents, load_events
from ._model import ABOVE_RANGE, AMBIGUOUS, BELOW_RANGE, SIZED, ParticleModel, ScatterCurve

__all__ = ["FlowSizeResult", "size_events"]


@dataclass(frozen=True)
class FlowSizeResult:
    """Size distribution of a sample's events above the detection limit.

    Attributes
    ----------
    file, channel : str
    model : dict
        The particle model (:class:`ParticleModel` fields).
    threshold_au : float
        Trigger threshold in channel units; ``threshold_source`` says where it came from.
    detection_limit_nm : float
        Diameter whose modelled scatter equals the threshold: nothing smaller is sized.
    upper_limit_nm : float
        Largest diameter sized (the grid's end, or the detector's full scale).
    events, sized_events, below_limit_events, above_range_events, ambiguous_events : int
        ``sized + below + above + ambiguous = events``.
    mean_nm, mode_nm, sd_nm, d10_nm, d50_nm, d90_nm : float or None
        Number-weighted statistics above the detection limit (blank-subtracted), nm.
        Ambiguous events count in the total as "at least the first ambiguous
        diameter", so D-values below that diameter are exact and those above it are
        None; mean, mode and SD are of the sized events.
    bin_edges_nm : list of float
    counts : list of float
        Sized events per bin (blank-subtracted, not negative).
    particles_per_ml_above_limit : float or None
        Particles per mL of the original sample scattering at least the threshold
        (sized, ambiguous or beyond the range; blank-subtracted, times dilution),
        None without a volume.
    ambiguous_ranges_nm : list of (float, float)
        Diameters whose scatter another diameter (beyond the tolerance) shares.
    noise_equivalent_nm : float or None
        Diameter of the blank's 99th-percentile scatter, where a blank is given.
    blank_file : str or None
    warnings : tuple of str
    """

    file: str
    channel: str
    model: dict
    threshold_au: float
    threshold_source: str
    detection_limit_nm: float
    upper_limit_nm: float
    events: int
    sized_events: int
    below_limit_events: int
    above_range_events: int
    ambiguous_events: int
    mean_nm: float | None
    mode_nm: float | None
    sd_nm: float | None
    d10_nm: float | None
    d50_nm: float | None
    d90_nm: float | None
    bin_edges_nm: list[float]
    counts: list[float]
    particles_per_ml_above_limit: float | None
    ambiguous_ranges_nm: list[tuple[float, float]]
    noise_equivalent_nm: float | None = None
    blank_file: str | None = None
    dilution: float = 1.0
    instrument: str = "flow"
    warnings: tuple[str, ...] = field(default=())

    @property
    def detection_range_nm(self) -> list[float]:
        """``[lower, upper]`` nm over which every particle is seen and sized unambiguously:
        from the detection limit to the first ambiguous diameter (or the upper limit)."""
        upper = self.upper_limit_nm
        if self.ambiguous_ranges_nm:
            upper = min(upper, self.ambiguous_ranges_nm[0][0])
        return [self.detection_limit_nm, upper]

    def number_distribution(self) -> dict:
        """``{"diameter_nm": bin centres, "fraction": number fraction per bin}``."""
        e = np.asarray(self.bin_edges_nm)
        c = np.asarray(self.counts, dtype=float)
        total = c.sum()
        return {"diameter_nm": (0.5 * (e[1:] + e[:-1])).tolist(),
                "fraction": (c / total if total > 0 else c).tolist()}

    def to_dict(self) -> dict:
        out = asdict(self)
        out["detection_range_nm"] = self.detection_range_nm
        out["number_distribution"] = self.number_distribution()
        return out

    def to_instrument_result(self, *, measured_at=None, sample: str | None = None) -> InstrumentResult:
        """The lot-storable record (``extra``: number_distribution, detection_range_nm)."""
        return InstrumentResult(
            file=self.file, format="fcs", instrument=self.instrument, sample=sample,
            measured_at=measured_at, dilution_factor=self.dilution,
            particles_per_ml=self.particles_per_ml_above_limit,
            measured_particles_per_ml=(None if self.particles_per_ml_above_limit is None
                                       else self.particles_per_ml_above_limit / self.dilution),
            mean_nm=self.mean_nm, mode_nm=self.mode_nm, sd_nm=self.sd_nm, d10_nm=self.d10_nm,
            d50_nm=self.d50_nm, d90_nm=self.d90_nm, events=self.events, warnings=self.warnings,
            extra={"method": "flow", "number_distribution": self.number_distribution(),
                   "detection_range_nm": self.detection_range_nm, "channel": self.channel,
                   "particle_model": self.model, "sized_events": self.sized_events,
                   "below_limit_events": self.below_limit_events,
                   "ambiguous_events": self.ambiguous_events,
                   "above_range_events": self.above_range_events},
        )


def _threshold(ev: FlowEvents, cal: FlowCalibration, channel: str, given) -> tuple[float, str]:
    if given is not None:
        if not (math.isfinite(given) and given > 0):
            raise InvalidInput(f"threshold must be a positive number, got {given}")
        return float(given), "given"
    tr = ev.trigger()
    if tr is not None and tr[0] == channel:
        return tr[1], "$TR of the sample"
    if cal.trigger_threshold is not None:
        return cal.trigger_threshold, "$TR of the bead file"
    v = ev.values(channel)
    v = v[v > 0]
    if v.size == 0:
        raise InsufficientData(f"{ev.file}: no positive scatter on {channel!r} to set a noise floor")
    # Triggered events start at the threshold: their lowest 0.1 % marks it.
    return float(np.quantile(v, 0.001)), "noise floor (lowest 0.1 % of events)"


def _statistics(centres: np.ndarray, counts: np.ndarray, width: float, *, ambiguous: float = 0.0,
                ambiguous_from_nm: float = math.inf) -> tuple[dict, list[str]]:
    """Number statistics of 1-nm counts; ``ambiguous`` particles known only to be at least
    ``ambiguous_from_nm`` join the total, so quantiles below that bound stay exact."""
    keys = ("mean_nm", "mode_nm", "sd_nm", "d10_nm", "d50_nm", "d90_nm")
    notes: list[str] = []
    total = counts.sum()
    if total <= 0:
        return dict.fromkeys(keys), notes
    p = counts / total
    mean = float(np.sum(p * centres))
    edges = np.concatenate([[centres[0] - width / 2], centres + width / 2])
    cum = np.concatenate([[0.0], np.cumsum(counts)])
    known = float(np.interp(ambiguous_from_nm, edges, cum)) if ambiguous else math.inf
    grand = total + ambiguous
    out = {"mean_nm": mean, "mode_nm": float(centres[int(np.argmax(counts))]),
           "sd_nm": float(math.sqrt(max(np.sum(p * (centres - mean) ** 2), 0.0)))}
    for key, q in (("d10_nm", 0.1), ("d50_nm", 0.5), ("d90_nm", 0.9)):
        target = q * grand
        if target <= known:
            out[key] = float(np.interp(target, cum, edges))
        else:
            out[key] = None
            notes.append(f"{key[:3].upper()} lies among the ambiguous sizes (>= {ambiguous_from_nm:.0f} nm)"
                         ": not reported")
    if ambiguous:
        notes.append("mean, mode and SD are of the sized events only (ambiguous ones excluded)")
    return out, notes


def size_events(sample, calibration: FlowCalibration, *, model: ParticleModel | None = None,
                blank=None, dilution: float = 1.0, threshold_au: float | None = None,
                diameter_range_nm=(20.0, 1000.0), bin_width_nm: float = 5.0,
                ambiguity_tolerance: float = 0.1, scatter_uncertainty: float = 0.05,
                volume_nl: float | None = None,
                blank_volume_nl: float | None = None,
                flow_rate_ul_per_min: float | None = None) -> FlowSizeResult:
    """Number size distribution of a sample's events, above the detection limit.

    Parameters
    ----------
    sample, blank : path, InstrumentResult or FlowEvents
        The sample and, optionally, a buffer-only run of the same session.
    calibration : FlowCalibration
        From :func:`calibrate_scatter` (channel, scale, collection optics).
    model : ParticleModel, optional
        Vesicle model; default a homogeneous sphere of index 1.40.
    dilution : float
        Dilution before acquisition (for the concentration above the limit).
    threshold_au : float, optional
        Trigger threshold (channel units); default the sample's ``$TR``, the bead
        file's, or the lowest 0.1 % of the sample's scatter.
    diameter_range_nm : (float, float)
        Diameters the model covers, nm; scatter beyond is counted as above range.
    bin_width_nm : float
        Width of the reported distribution's bins, nm (at most 400 bins).
    ambiguity_tolerance : float
        Relative spread of several solutions still taken as one size.
    scatter_uncertainty : float
        Relative uncertainty of a scatter value when deciding ambiguity (see
        :meth:`ScatterCurve.invert`).
    volume_nl, blank_volume_nl, flow_rate_ul_per_min : float, optional
        Analysed volumes where the files carry no ``$VOL``.

    Returns
    -------
    FlowSizeResult
    """
    model = model or ParticleModel()
    if not (math.isfinite(dilution) and dilution > 0):
        raise InvalidInput(f"dilution must be a positive number, got {dilution}")
    ev = load_events(sample, what="sample")
    channel = ev.names[ev.channel_index(calibration.channel)]
    curve = ScatterCurve.compute(model, wavelength_nm=calibration.wavelength_nm,
                                 medium_index=calibration.medium_index, optics=calibration.optics,
                                 diameter_range_nm=diameter_range_nm, step_nm=1.0,
                                 ambiguity_tolerance=ambiguity_tolerance,
                                 scatter_uncertainty=scatter_uncertainty)
    lo, hi = float(curve.diameter_nm[0]), float(curve.diameter_nm[-1])
    if not (math.isfinite(bin_width_nm) and (hi - lo) / 400 <= bin_width_nm <= (hi - lo) / 2):
        raise InvalidInput(f"bin width must lie in [{(hi - lo) / 400:g}, {(hi - lo) / 2:g}] nm "
                           f"for {lo:g}-{hi:g} nm, got {bin_width_nm}")
    threshold, source = _threshold(ev, calibration, channel, threshold_au)
    warnings = list(ev.warnings)
    c_thr = threshold / calibration.scale_au_per_nm2
    limit = curve.diameter_at(c_thr)
    if limit is None:
        raise InsufficientData(f"{ev.file}: the threshold {threshold:g} on {channel} exceeds the "
                               f"scatter of every {model.describe()} up to {hi:g} nm")
    if limit <= lo:
        warnings.append(f"the threshold lies below the model's smallest diameter: sizes start "
                        f"at {lo:g} nm")
        limit = lo
    full_scale = ev.channel_range(channel)
    upper = hi
    if full_scale:
        d_sat = curve.diameter_at(full_scale / calibration.scale_au_per_nm2)
        if d_sat is not None:
            upper = min(upper, d_sat)

    def classify(events: FlowEvents):
        v = events.data[:, events.channel_index(channel)]
        v = v[np.isfinite(v)]
        d, status, _ = curve.invert(v / calibration.scale_au_per_nm2)
        # Below the threshold, or below the model's smallest diameter when the
        # threshold lies under it: counted, never sized.
        below = (v < threshold) | (status == BELOW_RANGE)
        status = np.where(below, -1, status)
        if full_scale:
            status = np.where(v >= full_scale, ABOVE_RANGE, status)
        sized = d[(status == SIZED) & (d <= upper)]
        status = np.where((status == SIZED) & (d > upper), ABOVE_RANGE, status)
        return v, sized, status

    v, sized, status = classify(ev)
    n_amb = int(np.count_nonzero(status == AMBIGUOUS))
    n_bins = max(int(math.ceil((upper - limit) / bin_width_nm)), 1)
    edges = limit + bin_width_nm * np.arange(n_bins + 1)
    counts = np.histogram(sized, bins=edges)[0].astype(float)
    # 1-nm counts give the statistics to within 0.5 nm whatever the bin width.
    fine_edges = np.arange(limit, upper + 1.0, 1.0)
    fine = np.histogram(sized, bins=fine_edges)[0].astype(float)
    noise_nm = None
    blank_file = None
    amb_net = float(n_amb)
    # Every event at or above the threshold is a particle above the limit, whether
    # sized, ambiguous or beyond the model's range.
    above_net = float(np.count_nonzero(status != -1))
    volume = None
    try:
        volume, _ = analysed_volume_nl(ev, volume_nl=volume_nl, flow_rate_ul_per_min=flow_rate_ul_per_min)
    except InvalidInput:
        warnings.append("no analysed volume: concentration above the limit not reported")
    if blank is not None:
        bev = load_events(blank, what="blank", allow_empty=True)
        blank_file = bev.file
        bv, b_sized, b_status = classify(bev)
        b_vol, _ = analysed_volume_nl(bev, volume_nl=blank_volume_nl,
                                      flow_rate_ul_per_min=flow_rate_ul_per_min)
        if volume is None:
            raise InvalidInput(f"{ev.file}: a blank is subtracted per volume, but the sample's "
                               "volume is unknown; give the volume or the flow rate")
        ratio = volume / b_vol
        counts = np.clip(counts - ratio * np.histogram(b_sized, bins=edges)[0], 0.0, None)
        fine = np.clip(fine - ratio * np.histogram(b_sized, bins=fine_edges)[0], 0.0, None)
        amb_net = max(n_amb - ratio * np.count_nonzero(b_status == AMBIGUOUS), 0.0)
        above_net = max(above_net - ratio * np.count_nonzero(b_status != -1), 0.0)
        if bv.size:
            q99 = float(np.quantile(bv, 0.99)) / calibration.scale_au_per_nm2
            noise_nm = curve.diameter_at(q99)
    ranges = curve.ambiguous_ranges_nm()
    amb_from = ranges[0][0] if ranges else math.inf
    stats, notes = _statistics(0.5 * (fine_edges[1:] + fine_edges[:-1]), fine, 1.0,
                               ambiguous=amb_net, ambiguous_from_nm=amb_from)
    warnings += notes
    sized_total = float(fine.sum()) + amb_net
    if sized_total < 100:
        warnings.append(f"only {sized_total:.0f} events sized above {limit:.0f} nm: statistics are rough")
    conc = None if volume is None else float(above_net / (volume / NL_PER_ML) * dilution)
    if n_amb:
        warnings.append(f"{n_amb} events have ambiguous sizes (Mie oscillations) and are not sized")
    if not calibration.half_angle_fitted:
        warnings.append(f"collection half-angle assumed ({calibration.half_angle_deg:g} deg), "
                        "not fitted on the beads")
    return FlowSizeResult(
        file=ev.file, channel=channel, model=model.to_dict(), threshold_au=threshold,
        threshold_source=source, detection_limit_nm=float(limit), upper_limit_nm=float(upper),
        events=int(v.size), sized_events=int(sized.size),
        below_limit_events=int(np.count_nonzero(status == -1)),
        above_range_events=int(np.count_nonzero(status == ABOVE_RANGE)),
        ambiguous_events=n_amb, bin_edges_nm=edges.tolist(), counts=counts.tolist(),
        particles_per_ml_above_limit=conc, ambiguous_ranges_nm=ranges,
        noise_equivalent_nm=noise_nm, blank_file=blank_file, dilution=float(dilution),
        instrument=str(ev.keywords.get("cyt", "")).strip() or "flow",
        warnings=tuple(warnings), **stats,
    )
