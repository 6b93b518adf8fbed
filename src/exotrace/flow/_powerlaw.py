"""Bead-equivalent size by a power law fitted to bead peaks (no optics model).

Kept for comparison with the Mie calibration (:mod:`._calibration`): a power
law ``log scatter = log A + b log d`` maps scatter to a *bead-equivalent*
diameter, which is not a vesicle diameter (vesicles scatter much less than
polystyrene of the same size).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import InsufficientData, InvalidInput
from ._gating import channel_values

__all__ = ["ScatterCalibration", "scatter_calibration"]


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
    values = channel_values(bead_file, channel, "bead file")
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
