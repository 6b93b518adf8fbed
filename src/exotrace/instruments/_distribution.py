"""Statistics of a binned number distribution (ZetaView tables, re-binned data).

Convention (the one vendor PDF reports use for binned data): the table's size
column gives bin *centres*; bin edges lie halfway between neighbouring centres
(the outer edges half a bin width beyond the first and last centre). Percentiles
(X10, X50, X90) interpolate the cumulative number distribution linearly across
each bin (particles spread uniformly within a bin); mean and SD are
number-weighted over the bin centres (population SD); the mode is the centre of
the fullest bin.
"""

from __future__ import annotations

import numpy as np

__all__ = ["binned_statistics", "bin_edges_from_centres", "percentile_from_bins"]


def bin_edges_from_centres(centres_nm: np.ndarray) -> np.ndarray:
    """Bin edges (n + 1) around increasing ``centres_nm`` (nm)."""
    c = np.asarray(centres_nm, dtype=float)
    if c.size == 1:
        return np.array([c[0] * 0.5, c[0] * 1.5])
    mid = 0.5 * (c[1:] + c[:-1])
    first = c[0] - (mid[0] - c[0])
    last = c[-1] + (c[-1] - mid[-1])
    return np.concatenate(([max(first, 0.0)], mid, [last]))


def percentile_from_bins(edges_nm: np.ndarray, counts: np.ndarray, percent: float) -> float:
    """Size (nm) below which ``percent`` % of the particles lie (linear within bins)."""
    counts = np.asarray(counts, dtype=float)
    cum = np.concatenate(([0.0], np.cumsum(counts)))
    total = cum[-1]
    target = total * percent / 100.0
    # First edge where the cumulative count reaches the target; interpolate inside
    # that bin. Empty bins have flat cumulative segments and are stepped over.
    k = int(np.searchsorted(cum, target, side="left"))
    k = min(max(k, 1), len(counts))
    lo, hi = cum[k - 1], cum[k]
    frac = 0.0 if hi == lo else (target - lo) / (hi - lo)
    return float(edges_nm[k - 1] + frac * (edges_nm[k] - edges_nm[k - 1]))


def binned_statistics(centres_nm, counts) -> dict[str, float | None]:
    """Number-weighted mean, SD, mode and X10/X50/X90 of a binned distribution.

    Parameters
    ----------
    centres_nm : array_like, shape (n,)
        Increasing bin centres, nm.
    counts : array_like, shape (n,)
        Particles (or concentration) per bin, >= 0.

    Returns
    -------
    dict
        ``mean_nm``, ``sd_nm``, ``mode_nm``, ``d10_nm``, ``d50_nm``, ``d90_nm``;
        all ``None`` when the distribution is empty.
    """
    c = np.asarray(centres_nm, dtype=float)
    w = np.asarray(counts, dtype=float)
    total = float(w.sum())
    keys = ("mean_nm", "sd_nm", "mode_nm", "d10_nm", "d50_nm", "d90_nm")
    if c.size == 0 or total <= 0:
        return dict.fromkeys(keys)
    mean = float(np.sum(w * c) / total)
    sd = float(np.sqrt(np.sum(w * (c - mean) ** 2) / total))
    edges = bin_edges_from_centres(c)
    return {
        "mean_nm": mean,
        "sd_nm": sd,
        "mode_nm": float(c[int(np.argmax(w))]),
        "d10_nm": percentile_from_bins(edges, w, 10.0),
        "d50_nm": percentile_from_bins(edges, w, 50.0),
        "d90_nm": percentile_from_bins(edges, w, 90.0),
    }
