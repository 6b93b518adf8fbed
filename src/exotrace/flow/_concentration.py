"""Particle concentration from event counts, analysed volume, dilution and a blank.

Notes
-----
``particles/mL = (N / V - N_blank / V_blank) * dilution`` with the volumes in
mL (FCS 3.1 ``$VOL`` is in nanolitres: 1 mL = 1e6 nL). Event counts are
Poisson, so ``SD = dilution * sqrt(N / V^2 + N_blank / V_blank^2)``.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np

from ..errors import InvalidInput
from ._events import FlowEvents, load_events

__all__ = ["ConcentrationResult", "analysed_volume_nl", "event_concentration"]

NL_PER_ML = 1e6


def analysed_volume_nl(events: FlowEvents, *, volume_nl: float | None = None,
                       flow_rate_ul_per_min: float | None = None) -> tuple[float, str]:
    """Volume the events were counted in, nL, and where it came from.

    Order: ``volume_nl`` given; ``$VOL``; flow rate (given, else a vendor keyword)
    times the acquisition time (``$DURTIM``, else ``$ETIM - $BTIM``).

    Raises
    ------
    InvalidInput
        No way to know the volume.
    """
    for name, v in (("volume_nl", volume_nl), ("flow_rate_ul_per_min", flow_rate_ul_per_min)):
        if v is not None and not (math.isfinite(v) and v > 0):
            raise InvalidInput(f"{name.replace('_', '-')} must be a positive number, got {v}")
    if volume_nl is not None:
        return float(volume_nl), "given"
    if events.volume_nl is not None:
        return events.volume_nl, "$VOL"
    rate = flow_rate_ul_per_min or events.flow_rate_ul_per_min
    duration = events.duration_s
    if rate is not None and duration is not None:
        source = "flow rate given" if flow_rate_ul_per_min else "flow-rate keyword"
        return rate * 1000.0 * duration / 60.0, f"{source} x acquisition time"
    missing = "flow rate (--flow-rate-ul-per-min)" if rate is None else "acquisition time ($DURTIM)"
    raise InvalidInput(f"{events.file}: no analysed volume: no valid $VOL and no {missing}; "
                       "give the volume or the flow rate")


@dataclass(frozen=True)
class ConcentrationResult:
    """Event concentration of a sample, blank-subtracted and dilution-corrected.

    Attributes
    ----------
    file : str
    events : int
        Events counted in the sample file (after any scatter gate).
    volume_nl : float
        Analysed volume, nL; ``volume_source`` says how it was found.
    events_per_ml : float
        Events per mL of the measured (diluted) suspension.
    blank_file : str or None
    blank_events : int or None
    blank_volume_nl, blank_events_per_ml : float or None
    dilution : float
        Dilution factor of the sample before measurement.
    particles_per_ml : float
        ``(events_per_ml - blank_events_per_ml) * dilution``, floored at 0.
    sd_particles_per_ml : float
        Poisson standard deviation, particles/mL (sample and blank counts).
    relative_sd : float or None
        ``sd / particles_per_ml``.
    blank_fraction : float or None
        Blank event rate as a fraction of the sample's (per volume).
    warnings : tuple of str
    """

    file: str
    events: int
    volume_nl: float
    volume_source: str
    events_per_ml: float
    dilution: float
    particles_per_ml: float
    sd_particles_per_ml: float
    relative_sd: float | None
    blank_file: str | None = None
    blank_events: int | None = None
    blank_volume_nl: float | None = None
    blank_events_per_ml: float | None = None
    blank_fraction: float | None = None
    warnings: tuple[str, ...] = ()

    def to_dict(self) -> dict:
        return asdict(self)


def _count(events: FlowEvents, gate_channel, gate_min) -> int:
    if gate_channel is None:
        return events.n_events
    v = events.data[:, events.channel_index(gate_channel)]
    return int(np.count_nonzero(v >= gate_min))


def event_concentration(sample, *, blank=None, dilution: float = 1.0,
                        volume_nl: float | None = None, blank_volume_nl: float | None = None,
                        flow_rate_ul_per_min: float | None = None,
                        gate_channel: str | int | None = None,
                        gate_min: float = -math.inf) -> ConcentrationResult:
    """Particles per mL of the original sample from an FCS file (and a blank).

    Parameters
    ----------
    sample, blank : path, InstrumentResult or FlowEvents
        The sample and, optionally, a buffer-only / blank run of the same session
        and settings.
    dilution : float
        Dilution factor of the sample before acquisition (>= 1 usually; > 0).
    volume_nl, blank_volume_nl : float, optional
        Analysed volumes, nL, overriding ``$VOL`` / flow rate x time.
    flow_rate_ul_per_min : float, optional
        Sample flow rate, uL/min, where the files carry no ``$VOL``.
    gate_channel, gate_min : optional
        Count only events with ``gate_channel >= gate_min`` (channel units), e.g. a
        scatter gate above the noise; applied to sample and blank alike.

    Returns
    -------
    ConcentrationResult
    """
    if not (math.isfinite(dilution) and dilution > 0):
        raise InvalidInput(f"dilution must be a positive number, got {dilution}")
    s = load_events(sample, what="sample")
    v_nl, v_src = analysed_volume_nl(s, volume_nl=volume_nl,
                                     flow_rate_ul_per_min=flow_rate_ul_per_min)
    n = _count(s, gate_channel, gate_min)
    rate = n / (v_nl / NL_PER_ML)
    var = n / (v_nl / NL_PER_ML) ** 2
    warnings = list(s.warnings)
    blank_info: dict = {}
    net = rate
    if blank is not None:
        b = load_events(blank, what="blank", allow_empty=True)
        bv_nl, _ = analysed_volume_nl(b, volume_nl=blank_volume_nl,
                                      flow_rate_ul_per_min=flow_rate_ul_per_min)
        nb = _count(b, gate_channel, gate_min)
        b_rate = nb / (bv_nl / NL_PER_ML)
        var += nb / (bv_nl / NL_PER_ML) ** 2
        net = rate - b_rate
        warnings += [f"blank: {w}" for w in b.warnings]
        frac = b_rate / rate if rate > 0 else None
        if net <= 0:
            warnings.append("the sample's event rate is not above the blank's: no particles counted")
        elif frac is not None and frac > 0.2:
            warnings.append(f"the blank's event rate is {100 * frac:.0f} % of the sample's: "
                            "dilute less or lower the background")
        blank_info = {"blank_file": b.file, "blank_events": nb, "blank_volume_nl": bv_nl,
                      "blank_events_per_ml": b_rate, "blank_fraction": frac}
    particles = max(net, 0.0) * dilution
    sd = math.sqrt(var) * dilution
    return ConcentrationResult(
        file=s.file, events=n, volume_nl=v_nl, volume_source=v_src, events_per_ml=rate,
        dilution=float(dilution), particles_per_ml=particles, sd_particles_per_ml=sd,
        relative_sd=sd / particles if particles > 0 else None, warnings=tuple(warnings),
        **blank_info,
    )
