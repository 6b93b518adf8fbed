"""Compare a lot's particle size distribution with a reference lot's.

Drifting shape is caught, not only drifting means: the comparison reports the
first Wasserstein distance (earth mover's distance, nm), the largest
difference between the two cumulative number distributions (the
Kolmogorov-Smirnov statistic, 0-1) and the overlap of the D10-D90 intervals.

References
----------
.. [1] L. N. Vaserstein, "Markov processes over denumerable products of spaces",
   Problems Inform. Transmission 5:47-52, 1969; scipy.stats.wasserstein_distance.
.. [2] ISO 9276-2:2014, *Representation of results of particle size analysis*
   (percentiles D10/D50/D90 of the number distribution).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy import stats

from ..errors import InsufficientData, InvalidInput

__all__ = ["DistributionComparison", "compare_size_distributions", "weighted_percentiles_nm"]


@dataclass(frozen=True)
class DistributionComparison:
    """Result of a size-distribution comparison.

    Attributes
    ----------
    wasserstein_nm : float
        First Wasserstein distance between the number distributions (nm).
    max_cdf_difference : float
        Largest absolute difference of the two cumulative distributions (0-1).
    d10_d50_d90_nm, reference_d10_d50_d90_nm : tuple of float
        Percentiles of the lot and the reference (nm).
    d10_d90_overlap : float
        Length of the intersection of the two D10-D90 intervals divided by
        the length of their union (1 identical, 0 disjoint).
    flags : list of str
        Criteria beyond their threshold.
    """

    wasserstein_nm: float
    max_cdf_difference: float
    d10_d50_d90_nm: tuple[float, float, float]
    reference_d10_d50_d90_nm: tuple[float, float, float]
    d10_d90_overlap: float
    flags: list[str] = field(default_factory=list)

    @property
    def flagged(self) -> bool:
        """True when any criterion is beyond its threshold."""
        return bool(self.flags)


def _clean(diameters_nm, weights, name: str) -> tuple[np.ndarray, np.ndarray]:
    d = np.asarray(diameters_nm, dtype=float).ravel()
    w = np.ones_like(d) if weights is None else np.asarray(weights, dtype=float).ravel()
    if d.shape != w.shape:
        raise InvalidInput(f"{name}: diameters and weights differ in length "
                           f"({d.size} vs {w.size})")
    if d.size == 0:
        raise InsufficientData(f"{name}: empty size distribution")
    if not (np.all(np.isfinite(d)) and np.all(np.isfinite(w))):
        raise InvalidInput(f"{name}: NaN or infinite diameters/weights")
    if np.any(d <= 0) or np.any(w < 0):
        raise InvalidInput(f"{name}: diameters must be positive and weights non-negative")
    if w.sum() <= 0:
        raise InsufficientData(f"{name}: all weights are zero")
    order = np.argsort(d, kind="stable")
    return d[order], w[order]


def weighted_percentiles_nm(diameters_nm, weights=None, q=(10, 50, 90)) -> np.ndarray:
    """Percentiles of a number-weighted size distribution (nm).

    Parameters
    ----------
    diameters_nm : array_like
        Bin centres or individual particle diameters (nm).
    weights : array_like, optional
        Counts or concentrations per diameter (any scale); default 1 each.
    q : sequence of float
        Percentiles in percent.

    Notes
    -----
    Inverts the cumulative distribution with linear interpolation between the
    mid-points of each diameter's share of the weight (the "centred" plotting
    position ``(cumsum(w) - w/2) / sum(w)``), so a single diameter gives
    itself for every q.
    """
    d, w = _clean(diameters_nm, weights, "distribution")
    cw = np.cumsum(w)
    centred = (cw - 0.5 * w) / cw[-1]
    return np.interp(np.asarray(q, dtype=float) / 100.0, centred, d)


def compare_size_distributions(diameters_nm, weights, reference_diameters_nm,
                               reference_weights, *, wasserstein_threshold_nm: float = 10.0,
                               max_cdf_difference_threshold: float = 0.15,
                               min_overlap: float = 0.7) -> DistributionComparison:
    """Compare a lot's number size distribution with a reference lot's.

    Parameters
    ----------
    diameters_nm, weights : array_like
        The lot: diameters (nm) and number weights (counts or concentration;
        ``None`` for individual particles).
    reference_diameters_nm, reference_weights : array_like
        The reference lot, likewise.
    wasserstein_threshold_nm : float
        Flag when the Wasserstein distance exceeds this (nm).
    max_cdf_difference_threshold : float
        Flag when the largest CDF difference exceeds this (0-1).
    min_overlap : float
        Flag when the D10-D90 overlap falls below this (0-1).

    Returns
    -------
    DistributionComparison
    """
    d, w = _clean(diameters_nm, weights, "lot")
    rd, rw = _clean(reference_diameters_nm, reference_weights, "reference")
    wd = float(stats.wasserstein_distance(d, rd, u_weights=w, v_weights=rw))
    grid = np.union1d(d, rd)
    cdf = np.cumsum(w)[np.searchsorted(d, grid, side="right") - 1] / w.sum()
    cdf[grid < d[0]] = 0.0
    rcdf = np.cumsum(rw)[np.searchsorted(rd, grid, side="right") - 1] / rw.sum()
    rcdf[grid < rd[0]] = 0.0
    ks = float(np.max(np.abs(cdf - rcdf)))
    p = weighted_percentiles_nm(d, w)
    rp = weighted_percentiles_nm(rd, rw)
    inter = max(0.0, min(p[2], rp[2]) - max(p[0], rp[0]))
    union = max(p[2], rp[2]) - min(p[0], rp[0])
    overlap = 1.0 if union <= 0 else inter / union
    flags = []
    if wd > wasserstein_threshold_nm:
        flags.append(f"Wasserstein distance {wd:.1f} nm > {wasserstein_threshold_nm:g} nm")
    if ks > max_cdf_difference_threshold:
        flags.append(f"max CDF difference {ks:.2f} > {max_cdf_difference_threshold:g}")
    if overlap < min_overlap:
        flags.append(f"D10-D90 overlap {overlap:.2f} < {min_overlap:g}")
    return DistributionComparison(wd, ks, tuple(float(v) for v in p),
                                  tuple(float(v) for v in rp), float(overlap), flags)
