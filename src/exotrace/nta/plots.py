"""Plot of a size distribution (matplotlib, Agg backend, imported lazily)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..errors import FileFormatError, InvalidInput
from .sizing import SizeDistribution

__all__ = ["plot_distribution"]

_FORMATS = {".png": "png", ".svg": "svg"}


def plot_distribution(distribution: SizeDistribution, path, *, title: str | None = None) -> Path:
    """Draw the number distribution with D10/D50/D90 and peaks; write PNG or SVG.

    Parameters
    ----------
    distribution : SizeDistribution
        Result of :func:`~exotrace.nta.sizing.size_distribution`.
    path : str or Path
        Output file; ``.png`` or ``.svg`` decides the format.
    title : str, optional
        Figure title.

    Returns
    -------
    Path
        The file written.

    Raises
    ------
    InvalidInput
        Unsupported extension.
    FileFormatError
        The file cannot be written (missing folder, permissions).

    Notes
    -----
    The y axis is the number fraction per grid bin divided by the bin's width
    in ln d (a density per ln d), so curves on different grids compare.
    """
    path = Path(path)
    fmt = _FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise InvalidInput(f"{path}: plot format must be .png or .svg, got {path.suffix or 'none'!r}")
    if not path.parent.exists():
        raise FileFormatError(path, "folder does not exist")
    # Lazy imports: the object-oriented API never touches pyplot's global backend.
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    from ._sizing_stats import grid_edges_nm

    d = distribution.diameter_nm
    widths = np.diff(np.log(grid_edges_nm(d)))
    fig = Figure(figsize=(7.0, 4.2), dpi=120)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(1, 1, 1)
    main = distribution.number_fraction / widths
    ax.plot(d, main, color="#1f5fa8", lw=2.0, label="number (corrected)")
    if distribution.raw_number_fraction is not None:
        ax.plot(d, distribution.raw_number_fraction / widths, color="#888888", lw=1.0, ls="--",
                label="tracks (uncorrected)")
    ax.set_xscale("log")
    ax.set_xlim(d[0], d[-1])
    ax.set_ylim(bottom=0)
    for q, name in ((distribution.d10_nm, "D10"), (distribution.d50_nm, "D50"),
                    (distribution.d90_nm, "D90")):
        ax.axvline(q, color="#c0392b", lw=0.8, ls=":")
        ax.text(q, ax.get_ylim()[1] * 0.6, f" {name} {q:.0f}", rotation=90, va="top",
                ha="left", fontsize=7, color="#c0392b")
    for p in distribution.peaks_nm:
        y = float(np.interp(np.log(p), np.log(d), main))
        ax.plot([p], [y], marker="v", color="#1f5fa8")
        ax.annotate(f"{p:.0f} nm", (p, y), textcoords="offset points", xytext=(0, 6),
                    ha="center", fontsize=8)
    from matplotlib.ticker import FixedLocator, NullFormatter, NullLocator, ScalarFormatter

    ticks = [t for t in (20, 30, 50, 70, 100, 150, 200, 300, 500, 700, 1000, 2000, 5000)
             if d[0] <= t <= d[-1]]
    ax.xaxis.set_major_locator(FixedLocator(ticks))
    ax.xaxis.set_major_formatter(ScalarFormatter())
    ax.xaxis.set_minor_locator(NullLocator())
    ax.xaxis.set_minor_formatter(NullFormatter())
    ax.set_xlabel("hydrodynamic diameter (nm)")
    ax.set_ylabel("number density per ln(d)")
    ax.set_title(title or f"Size distribution ({distribution.n_tracks} tracks, "
                          f"{distribution.method.upper()})", fontsize=10)
    ax.text(0.99, 0.80, f"mean {distribution.mean_nm:.0f} nm\nSD {distribution.sd_nm:.0f} nm\n"
            f"mode {distribution.mode_nm:.0f} nm", transform=ax.transAxes, ha="right", va="top",
            fontsize=8)
    ax.legend(loc="upper left", fontsize=8, frameon=False)
    fig.tight_layout()
    try:
        fig.savefig(path, format=fmt)
    except OSError as exc:
        raise FileFormatError(path, f"cannot write plot: {exc.strerror or exc}") from exc
    return path
