"""NanoSight ``.nano`` experiment descriptors (INI-like text).

A ``.nano`` file names the videos of an experiment (``[Filenames]``) and the
capture settings (``[CaptureSettings]``: ``PixelSize`` in nm, ``DilutionFactor``,
camera level, frame rate ...). Keys are read case-insensitively; every section
and key is kept in ``extra["sections"]``.
"""

from __future__ import annotations

import configparser
import math
import re
from pathlib import PureWindowsPath

from ..errors import FileFormatError
from ._record import InstrumentResult
from ._text import decode_text, read_bytes

__all__ = ["read_nanosight_nano"]

_PIXEL_KEYS = ("pixelsize", "pixel size", "pixelsize_nm", "pixelsizenm")
_DILUTION_KEYS = ("dilutionfactor", "dilution factor", "dilution")
_TEMPERATURE_KEYS = ("temperature", "temperature/c")
_FPS_KEYS = ("framerate", "frame rate", "fps")


def _number(value: str, path, section: str, key: str) -> float:
    s = value.strip()
    try:
        v = float(s)
    except ValueError:
        raise FileFormatError(path, f"expected a number, found {s[:40]!r}",
                              field=f"[{section}] {key}") from None
    if not math.isfinite(v):
        raise FileFormatError(path, f"number {s[:40]!r} is not finite", field=f"[{section}] {key}")
    return v


def _find(parser: configparser.ConfigParser, keys) -> tuple[str, str, str] | None:
    for section in parser.sections():
        for key, value in parser.items(section):
            if key.strip().lower() in keys:
                return section, key, value
    return None


def read_nanosight_nano(path, *, data: bytes | None = None) -> InstrumentResult:
    """Read a NanoSight ``.nano`` descriptor.

    Parameters
    ----------
    path : str or os.PathLike
    data : bytes, optional
        The file's bytes when already read.

    Returns
    -------
    InstrumentResult
        ``format="nanosight-nano"``; ``dilution_factor`` from ``DilutionFactor``;
        ``extra``: ``pixel_size_nm``, ``frame_rate_fps`` (where present),
        ``video_files`` (from ``[Filenames]``, in file order) and ``sections``
        (every key, as text). No concentration or size: a descriptor holds none.
    """
    raw = read_bytes(path) if data is None else data
    text = decode_text(raw, path)
    parser = configparser.ConfigParser(interpolation=None, strict=False,
                                       delimiters=("=", ":"), comment_prefixes=(";", "#"),
                                       inline_comment_prefixes=None)
    parser.optionxform = str  # keep the vendor's key spelling
    try:
        parser.read_string(text, source=str(path))
    except configparser.MissingSectionHeaderError:
        raise FileFormatError(path, "no [section] header before the first key", line=1) from None
    except configparser.ParsingError as exc:
        line = exc.errors[0][0] if getattr(exc, "errors", None) else None
        raise FileFormatError(path, "line is neither '[section]' nor 'key=value'", line=line) from None
    except configparser.Error as exc:
        raise FileFormatError(path, f"malformed .nano descriptor ({exc.message.splitlines()[0]})") from None
    if not parser.sections():
        raise FileFormatError(path, "no sections found (expected [Filenames] and [CaptureSettings])")
    warnings: list[str] = []
    dilution = None
    hit = _find(parser, _DILUTION_KEYS)
    if hit is not None:
        section, key, value = hit
        if value.strip() and not value.strip().lower().startswith("not recorded"):
            dilution = _number(value, path, section, key)
            if dilution <= 0:
                raise FileFormatError(path, f"dilution factor {dilution:g} must be positive",
                                      field=f"[{section}] {key}")
    if dilution is None:
        warnings.append("dilution factor not recorded")
    pixel = None
    hit = _find(parser, _PIXEL_KEYS)
    if hit is not None and hit[2].strip():
        pixel = _number(hit[2], path, hit[0], hit[1])
        if pixel <= 0:
            raise FileFormatError(path, f"pixel size {pixel:g} nm must be positive",
                                  field=f"[{hit[0]}] {hit[1]}")
    else:
        warnings.append("no PixelSize in [CaptureSettings]")
    fps = None
    hit = _find(parser, _FPS_KEYS)
    if hit is not None and hit[2].strip():
        fps = _number(hit[2], path, hit[0], hit[1])
    temperature = None
    hit = _find(parser, _TEMPERATURE_KEYS)
    if hit is not None and hit[2].strip():
        temperature = _number(hit[2], path, hit[0], hit[1])
        if not 0.0 < temperature < 100.0:
            raise FileFormatError(path, f"temperature {temperature} C is outside liquid water",
                                  field=f"[{hit[0]}] {hit[1]}")
    videos: list[str] = []
    for section in parser.sections():
        if section.strip().lower() == "filenames":
            videos = [v.strip() for _, v in parser.items(section) if v.strip()]
    sample = None
    for section in parser.sections():
        for key, value in parser.items(section):
            if re.fullmatch(r"sample ?(name|description)", key.strip().lower()) and value.strip():
                sample = value.strip()
    version = None
    for section in parser.sections():
        for key, value in parser.items(section):
            if key.strip().lower() in ("softwareversion", "software version", "version") and value.strip():
                version = value.strip()
    return InstrumentResult(
        file=str(path), format="nanosight-nano", instrument="NanoSight",
        software_version=version, sample=sample, temperature_c=temperature,
        dilution_factor=dilution, warnings=tuple(warnings),
        extra={
            "pixel_size_nm": pixel,
            "frame_rate_fps": fps,
            "video_files": videos,
            "video_names": [PureWindowsPath(v).stem for v in videos],
            "sections": {s: dict(parser.items(s)) for s in parser.sections()},
        },
    )
