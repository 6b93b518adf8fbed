"""Format detection by content and the one entry point :func:`read_file`.

File names and extensions are never consulted: users rename exports, and a
``.csv`` may be a NanoSight summary, a per-particle table or a plate layout.
"""

from __future__ import annotations

import os
from datetime import tzinfo

from ..errors import FileFormatError
from ._fcs import FCS_MAGIC, read_fcs
from ._nano import read_nanosight_nano
from ._nanosight import read_nanosight_summary
from ._particles import header_columns, read_nanosight_particles
from ._plate_grid import looks_like_grid
from ._protein import looks_like_plate, read_protein_plate
from ._record import InstrumentResult
from ._text import read_bytes
from ._zetaview import read_zetaview

__all__ = ["FORMATS", "detect_format", "read_file"]

FORMATS: tuple[str, ...] = (
    "nanosight-summary", "nanosight-nano", "nanosight-particledata", "nanosight-alltracks",
    "zetaview-txt", "fcs", "bca-plate",
)
EXPECTED = ("a NanoSight ExperimentSummary/.nano/ParticleData/AllTracks export, a ZetaView .txt, "
            "an FCS 2.0/3.0/3.1/3.2 file or a BCA plate CSV")
_SNIFF_BYTES = 16384


def _head_text(data: bytes) -> str:
    head = data[:_SNIFF_BYTES]
    for enc in ("utf-8-sig", "cp1252", "latin-1"):
        try:
            return head.decode(enc)
        except UnicodeDecodeError:
            continue
    return head.decode("latin-1")  # pragma: no cover - latin-1 decodes anything


def detect_format(data: bytes, path: object = "<bytes>") -> str:
    """Name the format of a file from its first bytes.

    Parameters
    ----------
    data : bytes
        The file's content (at least its first 16 KiB).
    path : object
        For the error message only.

    Returns
    -------
    str
        One of :data:`FORMATS`.

    Raises
    ------
    FileFormatError
        When the content matches no supported format.
    """
    if not data:
        raise FileFormatError(path, f"file is empty (expected {EXPECTED})")
    if data[:6] in FCS_MAGIC:
        return "fcs"
    if data[:3] == b"FCS":
        raise FileFormatError(path, f"FCS version {data[:6]!r} is not supported (expected FCS2.0, "
                                    "FCS3.0, FCS3.1 or FCS3.2)", offset=0)
    if b"\x00" in data[:4096]:
        raise FileFormatError(path, f"binary content: not a recognised instrument file (expected {EXPECTED})")
    text = _head_text(data)
    lines = [ln.strip() for ln in text.splitlines()[:80]]
    head = "\n".join(lines)
    if ("NTA Experiment Summary File" in head or "NTA Single Analysis Summary File" in head
            or "[Experiment Details]" in head or ("NTA Version" in head and "Graph Data" in head)
            or ("[Size Data]" in head and "[Results]" in head)):
        return "nanosight-summary"
    if ("ZetaView" in head or "Dilution::" in head or "Number of Traces:" in head
            or any(ln.startswith("Original File:") for ln in lines)
            or any(ln.startswith("Use\tPosition\t") for ln in lines)):
        return "zetaview-txt"
    first = next((ln for ln in lines if ln), "")
    cols = header_columns(first)
    if "particle_id" in cols and "size_nm" in cols:
        if {"frame", "x_px", "y_px"} <= cols.keys():
            return "nanosight-alltracks"
        return "nanosight-particledata"
    if "particle_id" in cols and {"frame", "x_px", "y_px"} <= cols.keys():
        return "nanosight-alltracks"
    lowered = head.lower()
    if ("[filenames]" in lowered or "[capturesettings]" in lowered) and any(
            ln.startswith("[") and ln.endswith("]") for ln in lines):
        return "nanosight-nano"
    if looks_like_plate(lines[:50]):
        return "bca-plate"
    if looks_like_grid(lines[:50]):
        raise FileFormatError(path, "a plate-shaped absorbance grid needs its layout file: use "
                                    "exotrace.instruments.read_protein_grid(grid, layout)")
    raise FileFormatError(path, f"not a recognised instrument file (expected {EXPECTED})")


def read_file(path: str | os.PathLike, *, instrument_timezone: tzinfo | None = None) -> InstrumentResult:
    """Read any supported instrument file, detecting its format by content.

    Parameters
    ----------
    path : str or os.PathLike
        NanoSight ``ExperimentSummary.csv`` / ``.nano`` / ``ParticleData`` /
        ``AllTracks``, ZetaView ``.txt``, FCS 2.0/3.0/3.1/3.2, or a BCA plate CSV.
    instrument_timezone : tzinfo, optional
        Time zone of the instrument's clock (vendor files carry none); UTC when not
        given.

    Returns
    -------
    InstrumentResult

    Raises
    ------
    FileFormatError
        Missing, unreadable, unrecognised or malformed files; the message is one
        line naming the file and, where known, the line/byte and field.
    """
    data = read_bytes(path)
    fmt = detect_format(data, path)
    try:
        if fmt == "fcs":
            return read_fcs(path, instrument_timezone=instrument_timezone, data=data)
        if fmt == "nanosight-summary":
            return read_nanosight_summary(path, instrument_timezone=instrument_timezone, data=data)
        if fmt == "zetaview-txt":
            return read_zetaview(path, instrument_timezone=instrument_timezone, data=data)
        if fmt in ("nanosight-particledata", "nanosight-alltracks"):
            return read_nanosight_particles(path, data=data)
        if fmt == "nanosight-nano":
            return read_nanosight_nano(path, data=data)
        return read_protein_plate(path, data=data)
    except FileFormatError:
        raise
    except (ValueError, IndexError, KeyError, TypeError, ArithmeticError, MemoryError, RecursionError) as exc:
        # A reader bug or an input we did not foresee: still one line, never a traceback.
        msg = " ".join(f"{type(exc).__name__}: {exc}".split())[:160]
        raise FileFormatError(path, f"malformed {fmt} file ({msg})") from None
