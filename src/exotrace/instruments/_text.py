"""Shared helpers for reading vendor files: bytes, text decoding, numbers, times.

Every failure becomes a one-line :class:`~exotrace.errors.FileFormatError`
naming the file and, where known, the line and field.
"""

from __future__ import annotations

import math
import os
from datetime import UTC, datetime, tzinfo
from pathlib import Path

from ..errors import FileFormatError

__all__ = [
    "MAX_FILE_BYTES",
    "decode_text",
    "parse_float",
    "read_bytes",
    "require_float",
    "with_timezone",
]

# Per-particle NanoSight exports reach a few hundred MB; anything beyond this is
# not an instrument export we can hold in memory sensibly.
MAX_FILE_BYTES = 2 * 1024**3


def read_bytes(path: str | os.PathLike) -> bytes:
    """Read a whole file, turning OS errors into :class:`FileFormatError`."""
    p = Path(path)
    try:
        if p.is_dir():
            raise FileFormatError(p, "is a directory, not an instrument file")
        size = p.stat().st_size
        if size > MAX_FILE_BYTES:
            raise FileFormatError(p, f"file is {size} bytes, more than the {MAX_FILE_BYTES} "
                                     "bytes an instrument export can be")
        return p.read_bytes()
    except FileNotFoundError:
        raise FileFormatError(p, "file not found") from None
    except PermissionError:
        raise FileFormatError(p, "permission denied") from None
    except OSError as exc:
        raise FileFormatError(p, f"cannot be read ({exc.strerror or exc})") from None


def decode_text(data: bytes, path: object, *, encodings: tuple[str, ...] = ("utf-8-sig", "cp1252")) -> str:
    """Decode vendor text: the first encoding that works, Latin-1 as the last resort.

    NanoSight writes cp1252 and ZetaView Latin-1; UTF-8 files (re-saved by users)
    also occur. Latin-1 maps every byte, so decoding never fails, but text with
    NUL bytes is binary and refused.
    """
    if b"\x00" in data[:65536]:
        raise FileFormatError(path, "binary content (NUL bytes) where text was expected")
    for enc in encodings:
        try:
            return data.decode(enc)
        except UnicodeDecodeError:
            continue
    return data.decode("latin-1")


def parse_float(text: str, path: object, *, line: int | None = None,
                field: str | None = None) -> float | None:
    """A finite float from ``text``; ``None`` for blank cells.

    Raises
    ------
    FileFormatError
        For text that is not a number, or for inf/nan/overflowing values.
    """
    s = text.strip()
    if not s:
        return None
    try:
        value = float(s)
    except ValueError:
        shown = s if len(s) <= 40 else s[:37] + "..."
        raise FileFormatError(path, f"expected a number, found {shown!r}", line=line,
                              field=field) from None
    if not math.isfinite(value):
        raise FileFormatError(path, f"number {s[:40]!r} is not finite", line=line, field=field)
    return value


def require_float(text: str, path: object, *, line: int | None = None,
                  field: str | None = None) -> float:
    """Like :func:`parse_float` but a blank cell is an error too."""
    value = parse_float(text, path, line=line, field=field)
    if value is None:
        raise FileFormatError(path, "expected a number, found an empty cell", line=line, field=field)
    return value


def with_timezone(moment: datetime, tz: tzinfo | None) -> datetime:
    """Attach the instrument's time zone (UTC when unknown) to a naive clock time."""
    if moment.tzinfo is not None:
        return moment
    return moment.replace(tzinfo=tz if tz is not None else UTC)
