"""Nano-flow EV analysis of FCS events: marker-positive gating and bead scatter calibration.

* :func:`percent_positive`: events above a control's (isotype or buffer-only)
  upper quantile on a marker channel.
* :func:`scatter_calibration`: a power law log scatter = log A + b log d fitted
  to the peaks of a bead mixture of known diameters, to map scatter to a
  bead-equivalent size.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import InsufficientData, InvalidInput
from ._fcs import read_fcs
from ._record import InstrumentResult

__all__ = ["PercentPositive", "ScatterCalibration", "percent_positive", "scatter_calibration"]


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


def _values(source, channel: str | int, what: str) -> np.ndarray:
    if isinstance(source, (str, Path)):
        source = read_fcs(source)
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
        ``percent_positive - control_percent_positive``, floored at 0.
    standard_error_percent : float
        Binomial standard error of ``percent_positive``, percentage points.
    sample_events, control_events, positive_events : int
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


def percent_positive(sample, control, channel: str | int, *, quantile: float = 0.995) -> PercentPositive:
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
    s = _values(sample, channel, "sample")
    c = _values(control, channel, "control")
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
        control_percent_positive=100.0 * cp, net_percent_positive=max(0.0, 100.0 * (p - cp)),
        standard_error_percent=100.0 * math.sqrt(p * (1.0 - p) / s.size),
        sample_events=int(s.size), control_events=int(c.size), positive_events=k,
    )


@dataclass(frozen=True)
class ScatterCalibration:
    """Power law scatter = prefactor * diameter_nm ** exponent fitted to bead peaks.

    Attributes
    ----------
    channel : str
    exponent : float
        Slope of log(scatter) against log(diameter); about 6 in the Rayleigh regime
        (d << wavelength), smaller for larger beads (Mie).
    prefactor : float
        Scatter of a 1-nm bead on the fitted line (channel units).
    r_squared : float
        Of the log-log fit (1.0 by construction with two beads).
    bead_diameters_nm, peak_scatter : tuple of float
        Each bead population's diameter and its median scatter, ascending.
    bead_events : tuple of int
        Events assigned to each population.
    """

    channel: str
    exponent: float
    prefactor: float
    r_squared: float
    bead_diameters_nm: tuple[float, ...]
    peak_scatter: tuple[float, ...]
    bead_events: tuple[int, ...]

    def diameter_nm(self, scatter):
        """Bead-equivalent diameter (nm) of ``scatter`` (channel units); nan for <= 0."""
        s = np.asarray(scatter, dtype=float)
        with np.errstate(divide="ignore", invalid="ignore"):
            out = np.where(s > 0, (s / self.prefactor) ** (1.0 / self.exponent), np.nan)
        return float(out) if out.ndim == 0 else out

    def scatter(self, diameter_nm):
        """Expected scatter (channel units) of a bead of ``diameter_nm``."""
        d = np.asarray(diameter_nm, dtype=float)
        out = self.prefactor * d ** self.exponent
        return float(out) if out.ndim == 0 else out


def _kmeans_1d(x: np.ndarray, k: int, iterations: int = 200) -> np.ndarray:
    centres = np.quantile(x, (np.arange(k) + 0.5) / k)
    labels = np.zeros(x.size, dtype=np.int64)
    for _ in range(iterations):
        bounds = 0.5 * (centres[1:] + centres[:-1])
        labels = np.searchsorted(bounds, x)
        new = np.array([x[labels == j].mean() if np.any(labels == j) else centres[j]
                        for j in range(k)])
        if np.allclose(new, centres, rtol=0, atol=1e-9):
            break
        centres = np.sort(new)
    return labels


def scatter_calibration(bead_file, bead_diameters_nm, channel: str | int, *,
                        min_scatter: float | None = None) -> ScatterCalibration:
    """Fit log scatter against log diameter from a mixture of beads of known size.

    Parameters
    ----------
    bead_file : path, InstrumentResult (FCS) or array_like
        Events of the bead mixture (or the channel's values).
    bead_diameters_nm : sequence of float
        Diameters of the bead populations in the mixture, nm (at least two).
    channel : str or int
        Scatter channel (``$PnN``/``$PnS`` or 1-based index).
    min_scatter : float, optional
        Drop events at or below this value first (noise, debris).

    Returns
    -------
    ScatterCalibration

    Notes
    -----
    The populations are found by 1-D k-means on log10(scatter) with k the number
    of beads; their medians are matched to the diameters in ascending order (larger
    beads scatter more). Then ``log s = log A + b log d`` by least squares, a
    Mie/Rayleigh-like power law valid within the calibrated range.
    """
    diam = np.sort(np.asarray(bead_diameters_nm, dtype=float).ravel())
    if diam.size < 2 or not np.all(np.isfinite(diam)) or np.any(diam <= 0):
        raise InvalidInput("bead_diameters_nm needs at least two positive diameters")
    if np.unique(diam).size != diam.size:
        raise InvalidInput("bead_diameters_nm must be distinct")
    values = _values(bead_file, channel, "bead file")
    values = values[values > (0.0 if min_scatter is None else min_scatter)]
    k = diam.size
    if values.size < 20 * k:
        raise InsufficientData(f"{values.size} positive scatter events cannot define {k} bead peaks "
                               f"(need at least {20 * k})")
    logs = np.log10(values)
    labels = _kmeans_1d(logs, k)
    counts = np.bincount(labels, minlength=k)
    if np.any(counts < 10):
        raise InsufficientData(f"bead populations too small to locate ({counts.tolist()} events)")
    peaks = np.array([np.median(values[labels == j]) for j in range(k)])
    x = np.log10(diam)
    y = np.log10(peaks)
    slope, intercept = np.polyfit(x, y, 1)  # distinct diameters: a well-posed 1st-degree fit
    fit = intercept + slope * x
    ss_res = float(np.sum((y - fit) ** 2))
    ss_tot = float(np.sum((y - y.mean()) ** 2))
    if slope <= 0:
        raise InvalidInput(f"scatter does not grow with bead size on {channel!r} (slope {slope:.3g})")
    return ScatterCalibration(
        channel=str(channel), exponent=float(slope), prefactor=float(10.0 ** intercept),
        r_squared=1.0 - ss_res / ss_tot if ss_tot > 0 else 1.0,
        bead_diameters_nm=tuple(float(d) for d in diam), peak_scatter=tuple(float(p) for p in peaks),
        bead_events=tuple(int(c) for c in counts),
    )
