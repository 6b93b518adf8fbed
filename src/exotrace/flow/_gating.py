"""Marker-positive events against a control gate, and MESF fluorescence calibration.

* :func:`percent_positive`: events above a control's (isotype, unstained or
  buffer-only) upper quantile on a marker channel; the gate is reported.
* :func:`mesf_calibration`: a straight line log10 MESF = a + b log10(median
  fluorescence) through the peaks of a MESF bead set, to express a channel in
  molecules of equivalent soluble fluorochrome.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from ..errors import InsufficientData, InvalidInput
from ..instruments._fcs import read_fcs
from ..instruments._record import InstrumentResult
from ._peaks import find_bead_peaks

__all__ = ["MesfCalibration", "PercentPositive", "channel_values", "mesf_calibration",
           "percent_positive"]


def _channel_index(result: InstrumentResult, channel: str | int) -> int:
    chans = result.channels or ()
    if isinstance(channel, int) and not isinstance(channel, bool):
        for j, c in enumerate(chans):
            if c.index == channel:
                return j
        raise InvalidInput(f"{result.file}: no channel with index {channel}")
    matches = [j for j, c in enumerate(chans) if c.name == channel or c.label == channel]
    if not matches:
        known = ", ".join(c.name for c in chans)
        raise InvalidInput(f"{result.file}: no channel {channel!r} (channels: {known})")
    if len(matches) > 1:
        raise InvalidInput(f"{result.file}: channel name {channel!r} is not unique; give its index")
    return matches[0]


def channel_values(source, channel: str | int, what: str) -> np.ndarray:
    """Finite values of ``channel`` in an FCS path / InstrumentResult / FlowEvents, or of an array."""
    # Imported here: exotrace.instruments re-exports this module, and _events reads
    # through exotrace.instruments, so a module-level import would be circular.
    from ._events import FlowEvents

    if isinstance(source, (str, Path)):
        source = read_fcs(source)
    if isinstance(source, FlowEvents):
        return source.values(channel)
    if isinstance(source, InstrumentResult):
        if source.format != "fcs" or "event_data" not in source.extra:
            raise InvalidInput(f"{source.file}: {what} is not an FCS result with events")
        j = _channel_index(source, channel)
        values = source.extra["event_data"][:, j]
    else:
        values = np.asarray(source, dtype=float).ravel()
    return values[np.isfinite(values)]


@dataclass(frozen=True)
class PercentPositive:
    """Marker-positive events against a control gate.

    Attributes
    ----------
    channel : str
    gate : float
        The control's ``quantile`` on the channel (channel units); events above are positive.
    quantile : float
    percent_positive : float
        Sample events above the gate, percent.
    control_percent_positive : float
        Control events above the gate, percent (about 100 (1 - quantile) by construction).
    net_percent_positive : float
        Sample percent positive corrected for the control's false-positive rate
        ``c``: ``(p - c) / (1 - c)``, floored at 0 (observed ``p = t + (1 - t) c``
        when negatives cross the gate as often as the control's events do).
    standard_error_percent : float
        Binomial standard error of ``percent_positive``, percentage points.
    sample_events, control_events, positive_events : int
    mesf_gate : float or None
        The gate in MESF where a MESF calibration was given.
    """

    channel: str
    gate: float
    quantile: float
    percent_positive: float
    control_percent_positive: float
    net_percent_positive: float
    standard_error_percent: float
    sample_events: int
    control_events: int
    positive_events: int
    mesf_gate: float | None = None

    def to_dict(self) -> dict:
        return asdict(self)


def percent_positive(sample, control, channel: str | int, *, quantile: float = 0.995,
                     mesf: MesfCalibration | None = None) -> PercentPositive:
    """Percent of sample events above a control's upper quantile on a marker channel.

    Parameters
    ----------
    sample, control : path, InstrumentResult (FCS) or array_like
        The stained sample and its isotype or buffer-only control: FCS files, read
        results, or the channel's values directly.
    channel : str or int
        ``$PnN`` name or ``$PnS`` label, or the 1-based parameter index.
    quantile : float
        Control quantile that sets the gate, 0.5 < quantile < 1 (0.995: 0.5 % of
        control events fall above).
    mesf : MesfCalibration, optional
        Also express the gate in MESF.

    Returns
    -------
    PercentPositive

    Raises
    ------
    InsufficientData
        When the control has too few events for the quantile (fewer than
        10 / (1 - quantile)) or the sample has none.
    """
    if not 0.5 < quantile < 1.0:
        raise InvalidInput(f"quantile must lie between 0.5 and 1, got {quantile}")
    s = channel_values(sample, channel, "sample")
    c = channel_values(control, channel, "control")
    need = int(math.ceil(10.0 / (1.0 - quantile)))
    if c.size < need:
        raise InsufficientData(f"control has {c.size} events on {channel!r}; a {quantile} quantile "
                               f"gate needs at least {need}")
    if s.size == 0:
        raise InsufficientData(f"sample has no events on {channel!r}")
    gate = float(np.quantile(c, quantile))
    k = int(np.count_nonzero(s > gate))
    p = k / s.size
    cp = float(np.count_nonzero(c > gate)) / c.size
    return PercentPositive(
        channel=str(channel), gate=gate, quantile=quantile, percent_positive=100.0 * p,
        control_percent_positive=100.0 * cp, net_percent_positive=max(0.0, 100.0 * (p - cp) / (1.0 - cp)) if cp < 1 else 0.0,
        standard_error_percent=100.0 * math.sqrt(p * (1.0 - p) / s.size),
        sample_events=int(s.size), control_events=int(c.size), positive_events=k,
        mesf_gate=None if mesf is None else mesf.mesf(gate),
    )




@dataclass(frozen=True)
class MesfCalibration:
    """log10 MESF = intercept + slope * log10(fluorescence), fitted on MESF bead peaks.

    Attributes
    ----------
    channel : str
    slope, intercept : float
        Of the log-log line (slope ~1 for a linear detector).
    r_squared : float
    mesf_values : tuple of float
        Assigned MESF of each bead population used (blank beads excluded).
    peak_fluorescence : tuple of float
        Median fluorescence of each population, channel units.
    blank_fluorescence : float or None
        Median of the unlabelled (0 MESF) bead population, subtracted before the fit.
    """

    channel: str
    slope: float
    intercept: float
    r_squared: float
    mesf_values: tuple[float, ...]
    peak_fluorescence: tuple[float, ...]
    blank_fluorescence: float | None

    def mesf(self, fluorescence):
        """MESF of a fluorescence value (channel units); nan at or below the blank."""
        f = np.asarray(fluorescence, dtype=float) - (self.blank_fluorescence or 0.0)
        with np.errstate(divide="ignore", invalid="ignore"):
            out = np.where(f > 0, 10.0 ** (self.intercept + self.slope * np.log10(f)), np.nan)
        return float(out) if out.ndim == 0 else out

    def to_dict(self) -> dict:
        return asdict(self)


def mesf_calibration(beads, mesf_values, channel: str | int) -> MesfCalibration:
    """Fit a MESF bead set: one population per value (0 for the unlabelled bead).

    Parameters
    ----------
    beads : path, InstrumentResult, FlowEvents or array_like
        Events of the MESF beads (or the channel's values).
    mesf_values : sequence of float
        Assigned MESF of each population; include 0 when the set has a blank bead.
    channel : str or int
        Fluorescence channel.

    Returns
    -------
    MesfCalibration

    Notes
    -----
    Populations are found as bead scatter peaks are (log histogram modes), matched
    to the values in ascending order; the blank bead's median is subtracted from
    the others, then log10 MESF is regressed on log10 fluorescence.
    """
    values = np.sort(np.asarray(mesf_values, dtype=float).ravel())
    if values.size < 2 or not np.all(np.isfinite(values)) or np.any(values < 0):
        raise InvalidInput("MESF values: give at least two numbers >= 0")
    if np.unique(values).size != values.size:
        raise InvalidInput("MESF values must be distinct")
    labelled = values[values > 0]
    if labelled.size < 2:
        raise InvalidInput("MESF values: at least two labelled (> 0) bead populations are needed")
    f = channel_values(beads, channel, "MESF bead file")
    name = str(channel)
    # A blank bead sits near zero where noise can make values <= 0: shift them positive.
    shift = max(0.0, 1.0 - float(np.min(f))) if f.size else 0.0
    peaks = find_bead_peaks(f + shift, values.size, source="MESF bead file")
    medians = np.array([p.median_scatter for p in peaks]) - shift
    blank = float(medians[0]) if values[0] == 0 else None
    lab_medians = medians[1:] if blank is not None else medians
    net = lab_medians - (blank or 0.0)
    if np.any(net <= 0) or np.any(np.diff(net) <= 0):
        raise InsufficientData("MESF bead populations do not brighten with their MESF values")
    x, y = np.log10(net), np.log10(labelled)
    slope, intercept = np.polyfit(x, y, 1)
    fit = intercept + slope * x
    ss_tot = float(np.sum((y - y.mean()) ** 2))
    r2 = 1.0 - float(np.sum((y - fit) ** 2)) / ss_tot if ss_tot > 0 else 1.0
    return MesfCalibration(channel=name, slope=float(slope), intercept=float(intercept),
                           r_squared=r2, mesf_values=tuple(float(v) for v in labelled),
                           peak_fluorescence=tuple(float(v) for v in lab_medians),
                           blank_fluorescence=blank)
