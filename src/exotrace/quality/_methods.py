"""One lot, several sizing methods: how much of their disagreement the detection ranges explain.

NTA, ZetaView and EV flow cytometry see different size windows: a scatter
method misses what is below its lower limit, so two methods can report very
different concentrations for the same particles. The comparison restricts every
method's number distribution to the range all of them see (the largest lower
limit to the smallest upper limit), and recomputes each concentration ratio on
that common range:

    ratio_raw    = C_i / C_ref
    ratio_common = C_i f_i / (C_ref f_ref)

where ``f`` is the fraction of a method's particles inside the common range
(bins cut by a limit count in proportion to their overlap, particles spread
evenly within a bin). The share of the difference the ranges explain is
``1 - |ln ratio_common| / |ln ratio_raw|`` (log scale: a factor of 2 high and a
factor of 2 low are equally far), reported in percent between 0 and 100.
The reference is the first method given.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ..errors import InsufficientData, InvalidInput

__all__ = ["MethodComparison", "MethodDistribution", "MethodRow", "compare_methods",
           "fraction_in_range", "plot_method_comparison"]


@dataclass(frozen=True)
class MethodDistribution:
    """One method's number-weighted size distribution for a lot.

    Attributes
    ----------
    method : str
        ``"NTA"``, ``"ZetaView"``, ``"flow"`` ...
    source : str
        The file (or analysis) it came from.
    diameter_nm : tuple of float
        Bin centres, nm, increasing.
    fraction : tuple of float
        Number fraction per bin (sums to 1).
    particles_per_ml : float or None
        The method's concentration, particles/mL of the original sample.
    detection_range_nm : tuple of (float or None, float or None) or None
        The method's size window, nm; a missing limit is taken from the
        distribution's own extent.
    """

    method: str
    source: str
    diameter_nm: tuple[float, ...]
    fraction: tuple[float, ...]
    particles_per_ml: float | None = None
    detection_range_nm: tuple[float | None, float | None] | None = None


@dataclass(frozen=True)
class MethodRow:
    """One method in the comparison (ratios against the reference method)."""

    method: str
    source: str
    particles_per_ml: float | None
    detection_range_nm: tuple[float, float]
    fraction_in_common_range: float | None
    particles_per_ml_in_common_range: float | None
    ratio_raw: float | None
    ratio_common_range: float | None
    explained_percent: float | None


@dataclass(frozen=True)
class MethodComparison:
    """Result of :func:`compare_methods`."""

    reference: str
    common_range_nm: tuple[float, float] | None
    rows: tuple[MethodRow, ...]
    notes: tuple[str, ...]


def _edges(centres: np.ndarray) -> np.ndarray:
    if centres.size == 1:
        return np.array([centres[0] * 0.5, centres[0] * 1.5])
    mid = 0.5 * (centres[1:] + centres[:-1])
    return np.concatenate(([max(centres[0] - (mid[0] - centres[0]), 0.0)], mid,
                           [centres[-1] + (centres[-1] - mid[-1])]))


def fraction_in_range(diameter_nm, fraction, low_nm: float, high_nm: float) -> float:
    """Share of the particles between ``low_nm`` and ``high_nm`` (bins cut pro rata)."""
    c = np.asarray(diameter_nm, dtype=float)
    w = np.asarray(fraction, dtype=float)
    e = _edges(c)
    overlap = np.clip(np.minimum(e[1:], high_nm) - np.maximum(e[:-1], low_nm), 0.0, None)
    share = overlap / np.diff(e)
    return float(np.sum(w * share) / np.sum(w))


def _validated(item: MethodDistribution) -> tuple[np.ndarray, np.ndarray, tuple[float, float]]:
    c = np.asarray(item.diameter_nm, dtype=float)
    w = np.asarray(item.fraction, dtype=float)
    if c.size == 0 or c.size != w.size:
        raise InvalidInput(f"{item.method} ({item.source}): diameters and fractions must be "
                           "non-empty and of equal length")
    if not (np.all(np.isfinite(c)) and np.all(np.isfinite(w))) or np.any(c <= 0) \
            or np.any(np.diff(c) <= 0) or np.any(w < 0) or w.sum() <= 0:
        raise InvalidInput(f"{item.method} ({item.source}): diameters must be positive and "
                           "increasing, fractions non-negative with a positive sum")
    if item.particles_per_ml is not None and not (math.isfinite(item.particles_per_ml)
                                                  and item.particles_per_ml >= 0):
        raise InvalidInput(f"{item.method} ({item.source}): concentration must be >= 0")
    e = _edges(c)
    hit = np.flatnonzero(w > 0)
    low, high = (item.detection_range_nm or (None, None))
    low = float(e[hit[0]]) if low is None else float(low)
    high = float(e[hit[-1] + 1]) if high is None else float(high)
    if not low < high:
        raise InvalidInput(f"{item.method} ({item.source}): detection range {low}-{high} nm is empty")
    return c, w / w.sum(), (low, high)


def compare_methods(items: Sequence[MethodDistribution]) -> MethodComparison:
    """Compare concentrations of several methods, raw and on their common detection range.

    Parameters
    ----------
    items : sequence of MethodDistribution
        At least two; the first is the reference.

    Returns
    -------
    MethodComparison

    Raises
    ------
    InsufficientData
        Fewer than two distributions.
    InvalidInput
        Malformed distributions.
    """
    if len(items) < 2:
        raise InsufficientData(f"comparing methods needs size distributions from at least two "
                               f"results, got {len(items)}")
    parsed = [_validated(it) for it in items]
    low = max(p[2][0] for p in parsed)
    high = min(p[2][1] for p in parsed)
    common = (low, high) if low < high else None
    notes: list[str] = []
    if common is None:
        notes.append("the detection ranges do not overlap: no common range to compare on")
    ref = items[0]
    fractions = [fraction_in_range(c, w, low, high) if common else None for c, w, _ in parsed]
    in_range = [None if f is None or it.particles_per_ml is None else it.particles_per_ml * f
                for it, f in zip(items, fractions, strict=True)]
    rows = []
    for it, (_, _, rng), f, c_common in zip(items, parsed, fractions, in_range, strict=True):
        raw = (it.particles_per_ml / ref.particles_per_ml
               if it.particles_per_ml is not None and ref.particles_per_ml else None)
        common_ratio = (c_common / in_range[0] if c_common is not None and in_range[0] else None)
        explained = None
        if raw and common_ratio and abs(math.log(raw)) > 1e-12:
            explained = 100.0 * min(max(1.0 - abs(math.log(common_ratio)) / abs(math.log(raw)), 0.0), 1.0)
        rows.append(MethodRow(method=it.method, source=it.source, particles_per_ml=it.particles_per_ml,
                              detection_range_nm=rng, fraction_in_common_range=f,
                              particles_per_ml_in_common_range=c_common, ratio_raw=raw,
                              ratio_common_range=common_ratio, explained_percent=explained))
        if f is not None and f < 0.05:
            notes.append(f"{it.method} ({it.source}): under 5 % of its particles lie in the common "
                         "range; its common-range concentration is uncertain")
    if ref.particles_per_ml is None or ref.particles_per_ml == 0:
        notes.append(f"the reference {ref.method} has no concentration: no ratios")
    return MethodComparison(reference=f"{ref.method} ({ref.source})", common_range_nm=common,
                            rows=tuple(rows), notes=tuple(notes))


def plot_method_comparison(items: Sequence[MethodDistribution], comparison: MethodComparison,
                           path, *, title: str = ""):
    """Overlay the methods' size distributions (particles/mL per nm, log size axis), ranges marked.

    Each curve is the concentration density C f_i / width_i (normalised density
    where the concentration is unknown); each method's detection limits are
    dashed lines in its colour and the common range is shaded. PNG or SVG.
    """
    from ._charts import _figure, _save

    fig = _figure(figsize=(8.0, 4.8))
    ax = fig.add_subplot(1, 1, 1)
    colours = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b"]
    if comparison.common_range_nm:
        ax.axvspan(*comparison.common_range_nm, color="0.9", label="common range")
    for k, (it, row) in enumerate(zip(items, comparison.rows, strict=True)):
        colour = colours[k % len(colours)]
        c, w, _ = _validated(it)
        density = w / np.diff(_edges(c)) * (it.particles_per_ml or 1.0)
        conc = f"{it.particles_per_ml:.3g} /mL" if it.particles_per_ml is not None else "no conc."
        ax.plot(c, density, color=colour, label=f"{it.method}: {conc}")
        for limit in row.detection_range_nm:
            ax.axvline(limit, color=colour, linestyle="--", linewidth=0.8)
    ax.set_xscale("log")
    ax.set_xlabel("diameter (nm)")
    ax.set_ylabel("particles/mL per nm")
    ax.set_title(title or "size distributions by method")
    ax.legend(fontsize=8)
    return _save(fig, path)
