"""Statistics of a binned number distribution (ZetaView tables, re-binned data).

Convention (the one vendor PDF reports use for binned data): the table's size
column gives bin *centres*; bin edges lie halfway between neighbouring centres
(the outer edges half a bin width beyond the first and last centre). Percentiles
(X10, X50, X90) interpolate the cumulative number distribution linearly across
each bin (particles spread uniformly within a bin); mean and SD are
number-weighted over the bin centres (population SD); the mode is the centre of
the fullest bin.

Logarithmic tables (ZetaView's second table: 64 classes per decade) are handled
with ``log_bins=True``: edges are geometric means of neighbouring centres and
percentiles interpolate linearly in log(size) within a bin (particles spread
uniformly per log class).
"""

from __future__ import annotations

import numpy as np

__all__ = [
    "bin_edges_from_centres",
    "binned_statistics",
    "compact_distribution",
    "observed_range_nm",
    "percentile_from_bins",
]

MAX_STORED_BINS = 400


def bin_edges_from_centres(centres_nm: np.ndarray, *, log_bins: bool = False) -> np.ndarray:
    """Bin edges (n + 1) around increasing ``centres_nm`` (nm); geometric for ``log_bins``."""
    c = np.asarray(centres_nm, dtype=float)
    if log_bins and c.size > 1 and c[0] > 0:
        lc = np.log(c)
        mid = 0.5 * (lc[1:] + lc[:-1])
        return np.exp(np.concatenate(([2 * lc[0] - mid[0]], mid, [2 * lc[-1] - mid[-1]])))
    if c.size == 1:
        return np.array([c[0] * 0.5, c[0] * 1.5])
    mid = 0.5 * (c[1:] + c[:-1])
    first = c[0] - (mid[0] - c[0])
    last = c[-1] + (c[-1] - mid[-1])
    return np.concatenate(([max(first, 0.0)], mid, [last]))


def percentile_from_bins(edges_nm: np.ndarray, counts: np.ndarray, percent: float, *,
                         log_bins: bool = False) -> float:
    """Size (nm) below which ``percent`` % of the particles lie (linear, or log-linear, within bins)."""
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
    if log_bins and edges_nm[k - 1] > 0:
        return float(edges_nm[k - 1] * (edges_nm[k] / edges_nm[k - 1]) ** frac)
    return float(edges_nm[k - 1] + frac * (edges_nm[k] - edges_nm[k - 1]))


def binned_statistics(centres_nm, counts, *, log_bins: bool = False) -> dict[str, float | None]:
    """Number-weighted mean, SD, mode and X10/X50/X90 of a binned distribution.

    Parameters
    ----------
    centres_nm : array_like, shape (n,)
        Increasing bin centres, nm.
    counts : array_like, shape (n,)
        Particles (or concentration) per bin, >= 0.
    log_bins : bool
        The centres are logarithmically spaced (geometric edges, log interpolation).

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
    edges = bin_edges_from_centres(c, log_bins=log_bins)
    return {
        "mean_nm": mean,
        "sd_nm": sd,
        "mode_nm": float(c[int(np.argmax(w))]),
        "d10_nm": percentile_from_bins(edges, w, 10.0, log_bins=log_bins),
        "d50_nm": percentile_from_bins(edges, w, 50.0, log_bins=log_bins),
        "d90_nm": percentile_from_bins(edges, w, 90.0, log_bins=log_bins),
    }


def observed_range_nm(centres_nm, counts, *, log_bins: bool = False) -> list[float] | None:
    """Outer edges (nm) of the first and last non-empty bins: the sizes the run saw."""
    c = np.asarray(centres_nm, dtype=float)
    w = np.nan_to_num(np.asarray(counts, dtype=float))
    hit = np.flatnonzero(w > 0)
    if c.size == 0 or hit.size == 0:
        return None
    edges = bin_edges_from_centres(c, log_bins=log_bins)
    return [float(edges[hit[0]]), float(edges[hit[-1] + 1])]


def compact_distribution(centres_nm, counts, *, max_bins: int = MAX_STORED_BINS) -> dict | None:
    """The ``extra["number_distribution"]`` record: centres (nm) and number fractions.

    Trimmed to the non-empty span and, when longer than ``max_bins``, merged
    ``k`` bins at a time (count-weighted centres) so a stored result stays small.
    ``None`` for an empty distribution.
    """
    c = np.asarray(centres_nm, dtype=float)
    w = np.nan_to_num(np.asarray(counts, dtype=float))
    hit = np.flatnonzero(w > 0)
    if c.size == 0 or hit.size == 0:
        return None
    c, w = c[hit[0]:hit[-1] + 1], w[hit[0]:hit[-1] + 1]
    k = -(-c.size // max_bins)
    if k > 1:
        pad = (-c.size) % k
        cw = np.concatenate([c, np.full(pad, c[-1])]).reshape(-1, k)
        ww = np.concatenate([w, np.zeros(pad)]).reshape(-1, k)
        sums = ww.sum(axis=1)
        c = np.where(sums > 0, (cw * ww).sum(axis=1) / np.where(sums > 0, sums, 1.0), cw.mean(axis=1))
        w = sums
    return {"diameter_nm": [float(x) for x in c], "fraction": [float(x) for x in w / w.sum()]}
