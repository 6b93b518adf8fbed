"""Charts for trending, stability and potency (matplotlib, Agg, no pyplot state).

The format follows the file suffix (``.png`` or ``.svg``). SVG output is made
reproducible (fixed hash salt, no date in the metadata).

References
----------
.. [1] J. D. Hunter, "Matplotlib: A 2D graphics environment", Computing in
   Science & Engineering 9(3):90-95, 2007.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from ..errors import FileFormatError, InvalidInput
from ._potency import PotencyResult, four_pl
from ._spc import IMRLimits, Violation
from ._stability import ShelfLifeResult

__all__ = ["plot_imr", "plot_potency", "plot_stability"]


def _figure(**kwargs):
    # matplotlib is imported on first use: it is slow to import and most
    # callers of exotrace.quality never plot.
    from matplotlib.figure import Figure

    return Figure(**kwargs)


def _save(fig, path: str | Path) -> Path:
    from matplotlib import rcParams
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in (".png", ".svg"):
        raise InvalidInput(f"{path}: chart files must end in .png or .svg")
    FigureCanvasAgg(fig)
    try:
        if suffix == ".svg":
            old = rcParams["svg.hashsalt"]
            rcParams["svg.hashsalt"] = "exotrace"
            try:
                fig.savefig(path, format="svg", metadata={"Date": None})
            finally:
                rcParams["svg.hashsalt"] = old
        else:
            fig.savefig(path, format="png", dpi=120, metadata={"Software": None})
    except OSError as exc:  # missing folder, a directory, disk full
        raise FileFormatError(path, f"cannot write the chart: {exc.strerror or exc}") from None
    return path


def plot_imr(x, limits: IMRLimits, violations: Sequence[Violation], path: str | Path, *,
             title: str = "", unit: str = "") -> Path:
    """Individuals and moving-range chart with Nelson-rule violations marked.

    Parameters
    ----------
    x : array_like, shape (n,)
        Values in time order (``unit``).
    limits : IMRLimits
        Chart limits.
    violations : sequence of Violation
        Marked in red at their index, labelled with the rule numbers.
    path : str or Path
        Output file (``.png`` or ``.svg``).
    title, unit : str
        Chart title and value unit for the axis label.

    Returns
    -------
    Path
    """
    x = np.asarray(x, dtype=float)
    idx = np.arange(x.size)
    fig = _figure(figsize=(9, 6))
    ax1, ax2 = fig.subplots(2, 1, sharex=True, gridspec_kw={"height_ratios": [2, 1]})
    ax1.plot(idx, x, "o-", color="#1f4e79", ms=3, lw=1)
    for y, style in ((limits.mean, "-"), (limits.ucl, "--"), (limits.lcl, "--")):
        ax1.axhline(y, color="#444", ls=style, lw=1)
    for k in (1, 2):
        for s in (1, -1):
            ax1.axhline(limits.mean + s * k * limits.sigma, color="#bbb", ls=":", lw=0.8)
    rules_at: dict[int, list[int]] = {}
    for v in violations:
        rules_at.setdefault(v.index, []).append(v.rule)
    if rules_at:
        bad = np.array(sorted(rules_at))
        ax1.plot(bad, x[bad], "o", color="#c00000", ms=6, label="Nelson rule violation")
        for i in bad:
            ax1.annotate(",".join(str(r) for r in sorted(set(rules_at[i]))), (i, x[i]),
                         textcoords="offset points", xytext=(0, 6), ha="center", fontsize=7,
                         color="#c00000")
        ax1.legend(loc="best", fontsize=8)
    ax1.set_ylabel(f"individual value{f' ({unit})' if unit else ''}")
    ax1.set_title(title or f"I-MR chart (mean {limits.mean:.4g}, sigma {limits.sigma:.4g})")
    mr = np.abs(np.diff(x))
    ax2.plot(idx[1:], mr, "o-", color="#1f4e79", ms=3, lw=1)
    ax2.axhline(limits.mr_bar, color="#444", lw=1)
    ax2.axhline(limits.mr_ucl, color="#444", ls="--", lw=1)
    ax2.set_ylabel("moving range")
    ax2.set_xlabel("point (0-based index)")
    fig.tight_layout()
    return _save(fig, path)


def plot_stability(time, values, batches, result: ShelfLifeResult, path: str | Path, *,
                   time_unit: str = "", value_unit: str = "") -> Path:
    """Stability data with regression lines, confidence bounds, limits and shelf life."""
    t = np.asarray(time, dtype=float)
    y = np.asarray(values, dtype=float)
    b = np.asarray(["pooled"] * t.size if batches is None else [str(v) for v in batches])
    fig = _figure(figsize=(8, 5))
    ax = fig.subplots()
    for name in dict.fromkeys(b.tolist()):
        m = b == name
        ax.plot(t[m], y[m], "o", ms=4, label=f"batch {name}" if batches is not None else "data")
    for name, c in result.curves.items():
        ax.plot(c["time"], c["mean"], "-", lw=1, label=f"fit {name}")
        if result.lower_limit is not None:
            ax.plot(c["time"], c["lower"], ":", lw=1, color="#555")
        if result.upper_limit is not None:
            ax.plot(c["time"], c["upper"], ":", lw=1, color="#555")
    for lim in (result.lower_limit, result.upper_limit):
        if lim is not None:
            ax.axhline(lim, color="#c00000", lw=1)
    ax.axvline(result.shelf_life, color="#c00000", ls="--", lw=1,
               label=f"shelf life {result.shelf_life:.3g}")
    ax.set_xlabel(f"time{f' ({time_unit})' if time_unit else ''}")
    ax.set_ylabel(f"value{f' ({value_unit})' if value_unit else ''}")
    ax.set_title(f"Stability ({result.model} model, {result.sided} "
                 f"{result.confidence:.0%} bound)")
    ax.legend(fontsize=7)
    fig.tight_layout()
    return _save(fig, path)


def plot_potency(dose_reference, response_reference, dose_sample, response_sample,
                 result: PotencyResult, path: str | Path) -> Path:
    """Reference and sample dose-response data with the parallel 4PL fit."""
    fig = _figure(figsize=(7, 5))
    ax = fig.subplots()
    xr, xs = np.asarray(dose_reference, float), np.asarray(dose_sample, float)
    ax.semilogx(xr, response_reference, "o", ms=4, label="reference")
    ax.semilogx(xs, response_sample, "s", ms=4, label="sample")
    grid = np.geomspace(min(xr.min(), xs.min()), max(xr.max(), xs.max()), 200)
    s = result.shared
    ax.semilogx(grid, four_pl(grid, s["a"], s["b"], s["ec50_reference"], s["d"]), "-")
    ax.semilogx(grid, four_pl(grid, s["a"], s["b"], s["ec50_sample"], s["d"]), "-")
    ax.set_xlabel("dose")
    ax.set_ylabel("response")
    ax.set_title(f"Relative potency {result.relative_potency:.3g} "
                 f"({result.confidence:.0%} CI {result.ci_low:.3g}-{result.ci_high:.3g})")
    ax.legend(fontsize=8)
    fig.tight_layout()
    return _save(fig, path)
