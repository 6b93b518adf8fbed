"""Plot of a flow size distribution with its detection limit (matplotlib Agg, lazy)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..errors import FileFormatError, InvalidInput
from ._sizing import FlowSizeResult

__all__ = ["plot_size_distribution"]

_FORMATS = {".png": "png", ".svg": "svg"}


def plot_size_distribution(result: FlowSizeResult, path, *, title: str | None = None) -> Path:
    """Draw the sized events per bin, the detection limit and the ambiguous ranges.

    Parameters
    ----------
    result : FlowSizeResult
    path : str or Path
        ``.png`` or ``.svg``.
    title : str, optional

    Returns
    -------
    Path

    Raises
    ------
    InvalidInput
        Unsupported extension.
    FileFormatError
        The file cannot be written.
    """
    path = Path(path)
    fmt = _FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise InvalidInput(f"{path}: plot format must be .png or .svg, got {path.suffix or 'none'!r}")
    if not path.parent.exists():
        raise FileFormatError(path, "folder does not exist")
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    edges = np.asarray(result.bin_edges_nm)
    counts = np.asarray(result.counts)
    fig = Figure(figsize=(7.0, 4.2), dpi=120)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(1, 1, 1)
    ax.stairs(counts, edges, fill=True, color="#1f5fa8", alpha=0.8, label="sized events")
    ax.axvline(result.detection_limit_nm, color="#c0392b", lw=1.2,
               label=f"detection limit {result.detection_limit_nm:.0f} nm")
    for i, (lo, hi) in enumerate(result.ambiguous_ranges_nm):
        ax.axvspan(lo, hi, color="#aaaaaa", alpha=0.3, label="ambiguous (not sized)" if i == 0 else None)
    for q, name in ((result.d10_nm, "D10"), (result.d50_nm, "D50"), (result.d90_nm, "D90")):
        if q is not None:
            ax.axvline(q, color="#333333", lw=0.8, ls=":")
            ax.text(q, ax.get_ylim()[1] * 0.95, f" {name} {q:.0f}", rotation=90, va="top",
                    fontsize=7)
    shown = edges[-1] if counts.sum() == 0 else edges[np.flatnonzero(counts)[-1] + 1]
    ax.set_xlim(max(edges[0] - 20, 0), min(max(shown * 1.1, edges[0] + 100), edges[-1]))
    ax.set_ylim(bottom=0)
    ax.set_xlabel("diameter (nm), " + ("coated" if result.model.get("kind") == "coated"
                                       else "homogeneous") + " sphere model")
    ax.set_ylabel("events per bin (blank-subtracted)")
    ax.set_title(title or f"Flow size distribution ({result.sized_events} sized events)", fontsize=10)
    ax.legend(loc="upper right", fontsize=8, frameon=False)
    fig.tight_layout()
    try:
        fig.savefig(path, format=fmt)
    except OSError as exc:
        raise FileFormatError(path, f"cannot write plot: {exc.strerror or exc}") from exc
    return path
