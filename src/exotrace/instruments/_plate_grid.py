"""Plate-shaped absorbance exports (rows A-H x columns 1-12) with a separate layout file.

Many plate readers export the plate as a grid; which well holds a standard, a
sample or a blank lives in a layout kept apart. :func:`read_protein_grid` joins
the two into the one-row-per-well table of :mod:`._protein` and analyses it
the same way.
"""

from __future__ import annotations

import csv

from ..errors import FileFormatError
from ._protein import (
    ABSORBANCE_MAX,
    ABSORBANCE_MIN,
    HIGH_CV_PERCENT,
    plate_columns,
    read_protein_plate,
)
from ._record import InstrumentResult
from ._text import decode_text, parse_float, read_bytes

__all__ = ["looks_like_grid", "read_protein_grid"]


def looks_like_grid(first_lines: list[str]) -> bool:
    """True if one of the first lines is a plate-grid header ``,1,2,...`` (12 or 24 columns)."""
    for line in first_lines:
        for delim in (",", ";", "\t"):
            nums = [c.strip() for c in line.split(delim) if c.strip()]
            if len(nums) in (12, 24) and nums == [str(k) for k in range(1, len(nums) + 1)]:
                return True
    return False



_ROWS = "ABCDEFGHIJKLMNOP"  # 96-well plates use A-H; 384-well plates A-P


def _read_grid(path, data: bytes | None) -> dict[str, tuple[float, int]]:
    """Absorbance per well from a plate-shaped export: a header row 1..n, rows A.. H."""
    raw = read_bytes(path) if data is None else data
    lines = decode_text(raw, path).splitlines()
    for i, line in enumerate(lines):
        for delim in (",", ";", "\t"):
            cells = [c.strip() for c in next(csv.reader([line], delimiter=delim), [])]
            nums = [c for c in cells if c]
            if len(nums) >= 2 and nums == [str(k) for k in range(1, len(nums) + 1)]:
                first = cells.index("1")
                columns = {j: int(cells[j]) for j in range(first, len(cells)) if cells[j]}
                out: dict[str, tuple[float, int]] = {}
                for k, row_line in enumerate(lines[i + 1:], start=i + 2):
                    row = [c.strip() for c in next(csv.reader([row_line], delimiter=delim), [])]
                    label = next((c for c in row[:first + 1] if c), "")
                    if len(label) != 1 or label.upper() not in _ROWS:
                        break
                    for j, col in columns.items():
                        if j < len(row) and row[j]:
                            well = f"{label.upper()}{col}"
                            v = parse_float(row[j], path, line=k, field=f"well {well}")
                            # Checked here, not in the merged table, so that the error
                            # names the grid file and its line, where the value is.
                            if not ABSORBANCE_MIN < v < ABSORBANCE_MAX:
                                raise FileFormatError(
                                    path, f"absorbance {v} is outside what a plate reader "
                                    f"reports ({ABSORBANCE_MIN:g} to {ABSORBANCE_MAX:g})",
                                    line=k, field=f"well {well}")
                            out[well] = (v, k)
                if not out:
                    raise FileFormatError(path, "the plate grid has no rows A, B, ...", line=i + 2)
                return out
    raise FileFormatError(path, "no plate grid (a header row 1, 2, ... 12 followed by rows A-H)")


def read_protein_grid(grid_path, layout_path, *, data: bytes | None = None,
                      cv_limit_percent: float = HIGH_CV_PERCENT) -> InstrumentResult:
    """Read a plate-shaped absorbance export (rows A-H x columns 1-12) with its layout file.

    Parameters
    ----------
    grid_path : str or os.PathLike
        The reader's grid export: a header row ``,1,2,...,12`` then one row per plate
        row (``A,0.101,0.098,...``); preamble lines before it are skipped.
    layout_path : str or os.PathLike
        A CSV with ``Well, Type, ID, Concentration, Dilution`` columns (the
        one-row-per-well layout without absorbances).
    data : bytes, optional
        The grid file's bytes when already read.
    cv_limit_percent : float
        Replicate CV above which a sample is flagged ``"high-cv"``.

    Returns
    -------
    InstrumentResult
        As :func:`read_protein_plate`; ``file`` is the grid, ``extra["layout_file"]``
        the layout. Wells in the layout but empty in the grid are an error; grid
        wells absent from the layout are ignored.

    Raises
    ------
    FileFormatError
        Naming the file (grid or layout) and the line that holds the problem: an
        absorbance is checked in the grid, a type, concentration or dilution in
        the layout; a problem of the plate as a whole (too few standards, no
        curve) names the layout with the grid it was read with.
    """
    grid = _read_grid(grid_path, data)
    raw = read_bytes(layout_path)
    lines = decode_text(raw, layout_path).splitlines()
    cols = None
    header_at, delim = 0, ","
    for i, line in enumerate(lines[:50]):
        for delim in (",", ";", "\t"):
            cells = next(csv.reader([line], delimiter=delim), [])
            cols = plate_columns([*cells, "Absorbance"])
            if cols is not None:
                break
        if cols is not None:
            header_at = i
            break
    else:
        raise FileFormatError(layout_path, "no layout header with Well and Type columns")
    cols.pop("absorbance", None)
    rows = ["Well,Type,ID,Concentration (ug/mL),Absorbance,Dilution"]
    layout_line = {}  # line of the merged table -> line of the layout file
    header_cells = next(csv.reader([lines[header_at]], delimiter=delim))
    mg = "concentration" in cols and "mg" in header_cells[cols["concentration"]].lower()
    for k, line in enumerate(lines[header_at + 1:], start=header_at + 2):
        cells = next(csv.reader([line], delimiter=delim), [])
        if not any(c.strip() for c in cells):
            continue

        def get(name: str, cells: list[str] = cells) -> str:
            j = cols.get(name)
            return cells[j].strip() if j is not None and j < len(cells) else ""

        well = get("well").upper()
        if well not in grid:
            raise FileFormatError(layout_path, f"well {well[:8]!r} has no absorbance in {grid_path}",
                                  line=k, field="Well")
        conc = get("concentration")
        if conc and mg:
            value = parse_float(conc, layout_path, line=k, field="Concentration")
            conc = "" if value is None else repr(value * 1000.0)
        rows.append(",".join(f'"{x}"' for x in (well, get("type"), get("id"), conc,
                                                   repr(grid[well][0]), get("dilution"))))
        layout_line[len(rows)] = k
    try:
        result = read_protein_plate(grid_path, data="\n".join(rows).encode("utf-8"),
                                    cv_limit_percent=cv_limit_percent)
    except FileFormatError as exc:
        # The absorbances passed the grid's checks, so what is left came from the
        # layout: its line, or the plate as a whole (read with this grid).
        line = layout_line.get(exc.line) if exc.line is not None else None
        problem = exc.problem if line is not None else f"{exc.problem} (with grid {grid_path})"
        raise FileFormatError(layout_path, problem, line=line, field=exc.field) from None
    extra = dict(result.extra, layout_file=str(layout_path))
    return InstrumentResult(**{**{f: getattr(result, f) for f in result.__dataclass_fields__},
                               "extra": extra})
