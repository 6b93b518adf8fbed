"""Low-level reading of NanoSight summary CSV: sections, key rows, numeric tables.

:mod:`._nanosight` interprets what this module collects. Rows are kept as raw
cells with their 1-based line numbers so every error can name its place.
"""

from __future__ import annotations

import csv
import io
import math
from datetime import datetime

import numpy as np

from ..errors import FileFormatError
from ._text import parse_float

__all__ = [
    "Block",
    "CONCENTRATION_KEY",
    "DIFFUSION_UNIT_M2_PER_S",
    "DILUTION_PREFIX",
    "STAT_NAMES",
    "Table",
    "WEIGHTINGS",
    "average_index",
    "concentration_key",
    "cells_of",
    "dilutions",
    "first_value",
    "maybe_number",
    "mean_of",
    "numbers",
    "parse_sections",
    "parse_time",
    "split_row",
    "value_at",
    "video_names",
]

CONCENTRATION_KEY = "Concentration (Particles / ml)"


def concentration_key(results: dict) -> str | None:
    """The [Results] key of the concentration row, spelled as this export spells it.

    NTA 3.x writes ``Concentration (Particles / ml)``; spacing and case vary between
    builds, and ``Concentration Upgrade?`` must not match.
    """
    for key in results:
        if "".join(key.lower().split()).startswith("concentration(particles/ml)"):
            return key
    return None

DILUTION_PREFIX = "Dilution factor"
# NanoSight diffusion coefficients are printed in units of 1e4 nm^2/s = 1e-14 m^2/s.
DIFFUSION_UNIT_M2_PER_S = 1e4 * 1e-18

STAT_NAMES = {"Mean": "mean", "Mode": "mode", "SD": "sd", "D10": "d10", "D50": "d50",
               "D90": "d90"}
WEIGHTINGS = {"number": "number", "surface area": "surface_area", "volume": "volume"}
_SIMPLE_SECTIONS = {
    "[Experiment Details]": "experiment",
    "[Conditions]": "conditions",
    "[Settings]": "settings",
    "[Results]": "results",
    "[Concentration Warnings]": "concentration_warnings",
    "[Information]": "information",
    "[Exclusion Regions]": "exclusion_regions",
    "[Data Included]": "data_included",
}
_DATA_SECTIONS = {"[Size Data]": "size", "[Diffusion Coefficient Data]": "diffusion"}
_TIME_FORMATS = ("%H:%M:%S %d/%m/%Y", "%d/%m/%Y %H:%M:%S", "%H:%M:%S %m/%d/%Y",
                 "%Y-%m-%d %H:%M:%S", "%H:%M %d/%m/%Y")


def maybe_number(text: str) -> float | str:
    s = text.strip()
    try:
        value = float(s)
    except ValueError:
        return s
    return value if math.isfinite(value) else s


# Below this many cells float() per cell beats pandas' fixed start-up cost.
_SMALL_TABLE_CELLS = 2000


class Table:
    """A numeric table (Graph Data or Percentiles): its header and raw lines."""

    def __init__(self, header: list[str], line: int) -> None:
        self.header = header
        self.line = line  # 1-based line of the header
        self.lines: list[str] = []

    def to_array(self, path: object, ncols: int, what: str) -> np.ndarray:
        """Parse the rows into an (n_rows, ncols) float array; blank cells are nan."""
        arr = None
        if len(self.lines) * ncols <= _SMALL_TABLE_CELLS:
            try:
                arr = np.array([(ln.split(",") + [""] * ncols)[:ncols] for ln in self.lines],
                               dtype=np.float64)
            except ValueError:  # blank or bad cells: the slow path below says which
                arr = None
        if arr is None:
            arr = self._pandas(ncols)
        if arr is None:
            # Slow path only to say where the bad cell is.
            arr = np.full((len(self.lines), ncols), np.nan)
            for i, line in enumerate(self.lines):
                for j, cell in enumerate(split_row(line)[:ncols]):
                    v = parse_float(cell, path, line=self.line + 1 + i,
                                    field=f"{what} column {j + 1}")
                    arr[i, j] = np.nan if v is None else v
        if np.isinf(arr).any():
            raise FileFormatError(path, f"{what} holds a number too large to be finite",
                                  line=self.line)
        return arr

    def _pandas(self, ncols: int) -> np.ndarray | None:
        import pandas as pd  # the C CSV parser is ~4x faster than float() per cell on big tables

        text = "\n".join(self.lines)
        arr = None
        try:
            frame = pd.read_csv(io.StringIO(text), header=None, names=range(ncols),
                                usecols=range(ncols), dtype=np.float64, engine="c",
                                skip_blank_lines=False, index_col=False)
            arr = frame.to_numpy(dtype=np.float64)
            if arr.shape[0] != len(self.lines):
                arr = None
        except (ValueError, pd.errors.ParserError, OverflowError):
            arr = None
        return arr


class Block:
    """One weighting of the size or diffusion data."""

    def __init__(self, domain: str, weighting: str, line: int) -> None:
        self.domain = domain
        self.weighting = weighting
        self.line = line
        self.filename_row: list[str] | None = None
        self.stats: dict[str, tuple[list[str], int]] = {}
        self.graph: Table | None = None
        self.percentiles: Table | None = None


_NUMERIC_START = frozenset("0123456789-+.")


def split_row(line: str) -> list[str]:
    if '"' in line:
        try:
            return next(csv.reader([line]))
        except (csv.Error, StopIteration):
            return line.split(",")
    return line.split(",")


def parse_sections(text: str, path: object):
    sections: dict[str, dict[str, tuple[list[str], int]]] = {}
    section_headers: dict[str, list[str]] = {}
    blocks: list[Block] = []
    preamble: list[str] = []
    current: str | None = None
    domain: str | None = None
    block: Block | None = None
    table: Table | None = None
    for index, raw in enumerate(text.splitlines()):
        line = index + 1
        if table is not None:
            if raw[:1] in _NUMERIC_START:
                table.lines.append(raw)
                continue
            table = None
        row = split_row(raw)
        first = row[0].strip()
        if not first:
            continue
        if first.startswith("[") and first.endswith("]"):
            current = first
            section_headers[first] = row
            domain = _DATA_SECTIONS.get(first)
            block = None
            if first in _SIMPLE_SECTIONS:
                sections.setdefault(_SIMPLE_SECTIONS[first], {})
            continue
        if current is None:
            preamble.append(",".join(c for c in row if c.strip()))
            continue
        if domain is None:
            name = _SIMPLE_SECTIONS.get(current)
            if name is not None:
                sections[name].setdefault(first, (row[1:], line))
            continue
        # [Size Data] / [Diffusion Coefficient Data]
        if first == "Weighting":
            weighting = row[1].strip() if len(row) > 1 and row[1].strip() else "Number"
            block = Block(domain, weighting, line)
            blocks.append(block)
            continue
        if first == "Analysis Method":
            sections.setdefault("analysis", {})[domain] = (row[1:], line)
            continue
        if block is None:  # older exports without a Weighting row: number weighting
            block = Block(domain, "Number", line)
            blocks.append(block)
        if first == "Filename":
            block.filename_row = row
        elif first == "Graph Data":
            continue
        elif first.startswith(("Bin centre", "Bin center")):
            table = block.graph = Table(row, line)
        elif first.startswith("Percentile"):
            table = block.percentiles = Table(row, line)
        else:
            block.stats.setdefault(first, (row[1:], line))
    return preamble, sections, section_headers, blocks


def video_names(sections, blocks, path) -> list[str]:
    exp = sections.get("experiment", {})
    row = exp.get("Filename:") or exp.get("Filename")
    cells = row[0] if row else (blocks[0].filename_row[1:] if blocks and blocks[0].filename_row else None)
    if cells is None:
        raise FileFormatError(path, "no 'Filename:' row naming the videos", field="Filename:")
    names = [c.strip() for c in cells]
    while names and not names[-1]:
        names.pop()
    # The size-data Filename row ends in Average / Standard Error; they are not videos.
    while names and names[-1] in ("Average", "Standard Error"):
        names.pop()
    if not names:
        raise FileFormatError(path, "the 'Filename:' row names no videos",
                              line=row[1] if row else None, field="Filename:")
    return names


def average_index(header: list[str] | None, n: int) -> tuple[int, int | None]:
    """Column of ``Average`` and ``Standard Error`` (1 + n and 2 + n when unlabelled)."""
    if header:
        cells = [c.strip() for c in header]
        if "Average" in cells:
            a = cells.index("Average")
            return a, (cells.index("Standard Error") if "Standard Error" in cells else None)
    return 1 + n, 2 + n


def cells_of(row: tuple[list[str], int] | None, n: int) -> list[str]:
    if row is None:
        return [""] * n
    cells = row[0][:n]
    return cells + [""] * (n - len(cells))


def numbers(row, n, path, field) -> list[float | None]:
    if row is None:
        return [None] * n
    cells, line = row
    out = []
    for i in range(n):
        cell = cells[i] if i < len(cells) else ""
        out.append(parse_float(cell, path, line=line, field=f"{field} (video {i + 1})"))
    return out


def value_at(row, idx: int | None, path, field) -> float | None:
    """Value of the (1-based file column) ``idx`` of a row stored without its key."""
    if row is None or idx is None:
        return None
    cells, line = row
    j = idx - 1
    if j >= len(cells):
        return None
    return parse_float(cells[j], path, line=line, field=field)


def dilutions(row, n, path) -> list[float | None]:
    out: list[float | None] = []
    for i, cell in enumerate(cells_of(row, n)):
        s = cell.strip()
        if not s or s.lower().startswith("not recorded"):
            out.append(None)
            continue
        v = parse_float(s, path, line=row[1], field=f"Dilution factor (video {i + 1})")
        if v is not None and v <= 0:
            raise FileFormatError(path, f"dilution factor {s} must be positive", line=row[1],
                                  field="Dilution factor")
        out.append(v)
    return out


def parse_time(text: str) -> datetime | None:
    s = " ".join(text.split())
    for fmt in _TIME_FORMATS:
        try:
            return datetime.strptime(s, fmt)
        except ValueError:
            continue
    return None


def first_value(sections, section, key) -> str | None:
    row = sections.get(section, {}).get(key)
    if row is None:
        return None
    s = row[0][0].strip() if row[0] else ""
    return s or None


def mean_of(values) -> float | None:
    vals = [v for v in values if v is not None and math.isfinite(v)]
    return float(np.mean(vals)) if vals else None


