"""Populations of beads (scatter or MESF) in one channel: modes of the log histogram."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy.signal import find_peaks

from ..errors import InsufficientData

__all__ = ["BeadPeak", "find_bead_peaks"]


@dataclass(frozen=True)
class BeadPeak:
    """One bead population: median scatter, spread and size of the population."""

    median_scatter: float
    robust_sd_log10: float
    events: int

    @property
    def se_log10(self) -> float:
        # Standard error of a median: 1.2533 sigma / sqrt(n) for a normal population.
        return 1.2533 * self.robust_sd_log10 / math.sqrt(max(self.events, 1))


def find_bead_peaks(scatter, n_beads: int, *, smooth_decades: float = 0.02,
                    source: str = "bead file") -> list[BeadPeak]:
    """Locate ``n_beads`` populations in positive scatter values.

    Parameters
    ----------
    scatter : array_like
        Scatter of every event (channel units); values <= 0 are ignored.
    n_beads : int
    smooth_decades : float
        Gaussian smoothing of the log10 histogram, decades.

    Returns
    -------
    list of BeadPeak
        Ascending in scatter.

    Notes
    -----
    The smoothed histogram of log10(scatter) in 0.005-decade bins gives the
    modes; modes at the lowest values (the threshold's pile of noise events) are
    dropped and the ``n_beads`` most prominent of the rest kept. Each population is then
    the events within 2.5 robust SDs of its mode and at most half-way to its
    neighbours, re-centred twice on its median, so a symmetric population gives
    an unbiased median even when it touches its neighbours.
    """
    v = np.asarray(scatter, dtype=float)
    v = v[np.isfinite(v) & (v > 0)]
    if v.size < 20 * n_beads:
        raise InsufficientData(f"{source}: {v.size} events with positive scatter cannot define "
                               f"{n_beads} bead populations (need at least {20 * n_beads})")
    logs = np.log10(v)
    lo, hi = float(logs.min()), float(logs.max())
    bin_w = 0.005
    nbins = int(min(max((hi - lo) / bin_w, 10), 4000)) + 1
    hist, edges = np.histogram(logs, bins=nbins, range=(lo - bin_w, hi + bin_w))
    width = edges[1] - edges[0]
    sigma_bins = max(smooth_decades / width, 1.0)
    half = int(4 * sigma_bins) + 1
    kernel = np.exp(-0.5 * (np.arange(-half, half + 1) / sigma_bins) ** 2)
    smooth = np.convolve(hist.astype(float), kernel / kernel.sum(), mode="same")
    idx, props = find_peaks(smooth, prominence=max(3.0, 0.02 * smooth.max()))
    # Background triggers pile up at the threshold, the lowest recorded values: a
    # "peak" within a few smoothing widths of that edge is the pile, not a bead.
    edge = lo + 3.0 * smooth_decades
    keep_idx = 0.5 * (edges[idx] + edges[idx + 1]) > edge
    idx, props = idx[keep_idx], {k: v[keep_idx] for k, v in props.items()}
    if idx.size < n_beads:
        raise InsufficientData(f"{source}: found {idx.size} scatter populations for {n_beads} bead "
                               "sizes; check the bead sizes, the channel and the threshold")
    keep = np.sort(idx[np.argsort(props["prominences"])[::-1][:n_beads]])
    centres = 0.5 * (edges[keep] + edges[keep + 1])
    peaks = []
    for j, c in enumerate(centres):
        left = -np.inf if j == 0 else 0.5 * (c + centres[j - 1])
        right = np.inf if j == len(centres) - 1 else 0.5 * (c + centres[j + 1])
        centre, sd = float(c), 0.05
        for _ in range(3):
            w = max(2.5 * sd, 2 * width)
            sel = logs[(logs >= max(left, centre - w)) & (logs <= min(right, centre + w))]
            if sel.size < 10:
                raise InsufficientData(f"{source}: bead population {j + 1} has {sel.size} events")
            centre = float(np.median(sel))
            sd = max(1.4826 * float(np.median(np.abs(sel - centre))), width)
        peaks.append(BeadPeak(median_scatter=10.0 ** centre, robust_sd_log10=sd, events=int(sel.size)))
    return peaks
