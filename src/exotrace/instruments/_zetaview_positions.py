"""The per-position table a ZetaView run writes beside its size file (``..._size_488_11pos.txt``).

Columns: ``Use``, ``Position``, ``Mean Int.``, ``Av. No of Particles``,
``Conc. (p./mL)``, ``Orig. Conc. (p./cm^3)``, ``No. of Traces``, ``X50 (nm)``,
``Peak (nm)``, ``Span``, ``Drift (um/s)``, ``Removal``. Positions the software
dropped have ``Use`` 0 and a reason in ``Removal`` (``MIN_TRACES``,
``GRUBBS_NUMBER`` ...). The run's concentration is the mean over the positions
in use; the reasons of the others are kept.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from ..errors import FileFormatError
from ._zetaview_text import number_or_none, split_cells

__all__ = ["find_position_header", "position_table_path", "read_positions", "run_name"]

_REQUIRED = ("position", "conc")
_TRUE = {"1", "x", "yes", "true", "used", "y", "+"}
_FALSE = {"0", "", "no", "false", "-", "n", "unused"}
_COLUMNS = {  # normalised header -> our key
    "use": "use", "position": "position", "mean int.": "mean_intensity",
    "av. no of particles": "average_particles", "conc. (p./ml)": "particles_per_ml",
    "orig. conc. (p./cm^3)": "original_particles_per_ml", "no. of traces": "traces",
    "x50 (nm)": "x50_nm", "peak (nm)": "peak_nm", "span": "span", "drift (um/s)": "drift_um_per_s",
    "drift (\u00b5m/s)": "drift_um_per_s", "removal": "removal",
}


def run_name(path: object) -> str:
    """The run a ZetaView file belongs to: its name without ``.txt``/``.avi`` and ``_11pos``-like tags."""
    stem = Path(str(path)).name
    if stem.lower().endswith((".txt", ".avi")):
        stem = stem[:-4]
    parts = stem.split("_")
    while parts and parts[-1].lower().endswith("pos") and parts[-1][:-3].isdigit():
        parts.pop()
    return "_".join(parts)


def position_table_path(size_path: Path) -> Path | None:
    """``X_size_488_<n>pos.txt`` beside ``X_size_488.txt``, if there is exactly one."""
    try:
        hits = sorted(size_path.parent.glob(f"{size_path.stem}_*pos.txt"))
    except OSError:
        return None
    hits = [h for h in hits if run_name(h) == size_path.stem]
    return hits[0] if len(hits) == 1 else None


def find_position_header(lines: list[str]) -> int | None:
    """Index of the ``Use / Position / Conc. ...`` header row, or None."""
    for i, line in enumerate(lines):
        low = line.lower()
        if "position" in low and "conc" in low and "\t" in line:
            cells = [c.lower() for c in split_cells(line)]
            if any(c.startswith("position") for c in cells):
                return i
    return None


def read_positions(lines: list[str], start: int, path) -> dict[str, Any]:
    """Rows of the position table whose header row is ``lines[start]``.

    Returns
    -------
    dict
        ``positions`` (one dict per row with the keys of the columns present and
        ``used``), ``removed`` (``[{"position", "reason"}]``), ``positions_used``,
        ``measured_particles_per_ml`` / ``particles_per_ml`` (means over the
        positions in use; None when no position is in use), ``traces_used``.

    Raises
    ------
    FileFormatError
        Missing columns, non-numeric cells, no rows.
    """
    names = [c.strip() for c in split_cells(lines[start])]
    keys = [_COLUMNS.get(" ".join(n.lower().split()), n) for n in names]
    for need in ("position", "particles_per_ml"):
        if need not in keys:
            raise FileFormatError(path, f"position table has no {need!r} column", line=start + 1)
    rows: list[dict[str, Any]] = []
    i = start + 1
    while i < len(lines) and lines[i].strip():
        cells = split_cells(lines[i])
        row: dict[str, Any] = {}
        for j, key in enumerate(keys):
            cell = cells[j] if j < len(cells) else ""
            if key in ("removal",):
                row[key] = cell or None
            elif key == "use":
                low = cell.lower()
                if low not in _TRUE | _FALSE:
                    raise FileFormatError(path, f"Use must be 1/0, found {cell[:20]!r}", line=i + 1,
                                          field="Use")
                row["used"] = low in _TRUE
            else:
                value = number_or_none(cell)
                if value is None and cell and cell.lower() not in ("nan", "-nan"):
                    raise FileFormatError(path, f"expected a number, found {cell[:40]!r}",
                                          line=i + 1, field=names[j])
                row[key] = value
        if row.get("position") is None:
            raise FileFormatError(path, "position number missing", line=i + 1, field="Position")
        row.setdefault("used", not row.get("removal"))
        rows.append(row)
        i += 1
    if not rows:
        raise FileFormatError(path, "position table has no rows", line=start + 2)
    used = [r for r in rows if r["used"]]
    for key in ("particles_per_ml", "original_particles_per_ml"):
        for r in used:
            if r.get(key) is not None and r[key] < 0:
                raise FileFormatError(path, f"negative concentration at position {r['position']:g}",
                                      field=key)

    def mean(key: str) -> float | None:
        values = [r[key] for r in used if r.get(key) is not None]
        return float(np.mean(values)) if values else None

    return {
        "positions": rows,
        "removed": [{"position": int(r["position"]), "reason": r.get("removal") or "unused"}
                    for r in rows if not r["used"]],
        "positions_used": len(used),
        "measured_particles_per_ml": mean("particles_per_ml"),
        "particles_per_ml": mean("original_particles_per_ml"),
        "traces_used": (None if not used or any(r.get("traces") is None for r in used)
                        else int(sum(r["traces"] for r in used))),
    }
