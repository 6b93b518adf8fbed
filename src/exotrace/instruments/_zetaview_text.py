"""The text layer of ZetaView 8.x exports: ``Key:<TAB>value<TAB>more`` lines and tables.

ZetaView writes Windows-1252 text (the micro sign is byte 0xB5), tab separated,
CRLF. A header line holds one or more ``Key:`` cells, each followed by its value
cells: ``Number of Traces:<TAB>630<TAB>(at 0.099990)<TAB>Average Number of
Particles:<TAB>30.606061<TAB>Dilution::<TAB>500.000000`` gives three keys, the
first with two values. Keys keep their text without the trailing colons
(``Dilution::`` is ``Dilution``). ``NaN`` marks values not used.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ..errors import FileFormatError

__all__ = ["Header", "HeaderField", "number_or_none", "parse_header", "read_rows", "split_cells"]


@dataclass(frozen=True)
class HeaderField:
    """Values written after one ``Key:`` cell, and the 1-based line they are on."""

    values: tuple[str, ...]
    line: int

    @property
    def text(self) -> str:
        return " ".join(v for v in self.values if v)


class Header(dict):
    """``{key: HeaderField}`` with case-insensitive look-ups of the first of several names."""

    def find(self, *names: str) -> HeaderField | None:
        for name in names:
            if name in self:
                return self[name]
        lowered = {k.lower(): v for k, v in self.items()}
        for name in names:
            hit = lowered.get(name.lower())
            if hit is not None:
                return hit
        return None

    def number(self, *names: str, path: object = "<zetaview>") -> float | None:
        """First value of the first present key as a finite float; None for NaN/blank/absent.

        Raises
        ------
        FileFormatError
            When the value is there but is not a number (names line and key).
        """
        hit = self.find(*names)
        if hit is None or not hit.values:
            return None
        cell = hit.values[0].split()[0] if hit.values[0].split() else ""
        value = number_or_none(cell)
        if value is None and cell and cell.lower() not in ("nan", "-nan", "n/a", "na"):
            raise FileFormatError(path, f"expected a number, found {cell[:40]!r}", line=hit.line,
                                  field=names[0])
        return value


def split_cells(line: str) -> list[str]:
    """Tab-separated cells, stripped (ZetaView never quotes)."""
    return [c.strip() for c in line.split("\t")]


def number_or_none(cell: str) -> float | None:
    """A finite float, or None for ``NaN``, blanks and text."""
    try:
        value = float(cell.replace(",", ".")) if cell else math.nan
    except ValueError:
        return None
    return value if math.isfinite(value) else None


def _is_key(cell: str) -> bool:
    return len(cell) > 1 and cell.endswith(":")


def parse_header(lines: list[str], stop: int) -> Header:
    """Every ``Key:`` cell in ``lines[:stop]`` with the value cells that follow it.

    The first occurrence of a key wins (later blocks repeat some keys per position).
    """
    header = Header()
    for i in range(min(stop, len(lines))):
        line = lines[i]
        if ":" not in line:
            continue
        cells = split_cells(line)
        if not _is_key(cells[0]):
            # ``Key: value`` written with a space rather than a tab.
            key, _, rest = line.partition(":")
            cells = [key.strip() + ":", *split_cells(rest.strip(" :\t"))]
        key: str | None = None
        values: list[str] = []
        for cell in cells:
            if _is_key(cell) and not _looks_like_time(cell):
                if key:
                    header.setdefault(key, HeaderField(tuple(values), i + 1))
                key, values = cell.rstrip(":").strip(), []
            elif cell:
                values.append(cell)
        if key:
            header.setdefault(key, HeaderField(tuple(values), i + 1))
    return header


def _looks_like_time(cell: str) -> bool:
    # "10:42:" would otherwise read as a key; keys start with a letter.
    return not cell[0].isalpha()


def read_rows(lines: list[str], start: int, width: int, path, *, table: str,
              stop_at_separator: bool = True) -> tuple[np.ndarray, int]:
    """Numeric rows from ``lines[start:]`` until a blank line, text, or a ``-1`` separator row.

    Parameters
    ----------
    width : int
        Columns expected (the header row's); a row with fewer is an error, extra
        trailing cells are ignored.
    table : str
        Named in error messages.

    Returns
    -------
    (array of shape (rows, width), index of the first line not consumed)
        ``NaN`` cells stay NaN; the caller decides which columns must be finite.
    """
    rows: list[list[float]] = []
    i = start
    while i < len(lines):
        cells = split_cells(lines[i])
        while cells and cells[-1] == "":
            cells.pop()
        if not cells:
            break
        first = number_or_none(cells[0])
        if first is None and cells[0].lower() != "nan":
            break  # text: the table has ended
        if stop_at_separator and first == -1.0 and all(number_or_none(c) == -1.0 for c in cells):
            break
        if len(cells) < width:
            raise FileFormatError(path, f"row has {len(cells)} cells, the {table} table {width}",
                                  line=i + 1, field=table)
        row = []
        for j, cell in enumerate(cells[:width]):
            try:
                value = float(cell.replace(",", "."))
            except ValueError:
                raise FileFormatError(path, f"expected a number, found {cell[:40]!r}", line=i + 1,
                                      field=f"{table} column {j + 1}") from None
            if math.isinf(value):
                raise FileFormatError(path, f"number {cell[:40]!r} is not finite", line=i + 1,
                                      field=f"{table} column {j + 1}")
            row.append(value)
        rows.append(row)
        i += 1
    return (np.asarray(rows, dtype=float) if rows else np.empty((0, width))), i
