"""Turn the command's INPUTs (videos, folders, CSV manifests) into :class:`VideoJob` s.

Manifest columns (CSV, UTF-8, a header row; lines starting with ``#`` are skipped):

=================  =========================================================
``video``          required; path of the video, relative to the manifest's folder
``sample``         label of the video (default: the file name without suffix)
``group``          sample group the summary aggregates (default: none)
``lot``            lot number the result is stored on with ``--database``
``pixel_size_nm``  nm; with the columns below, overrides the command-line value
``fps``            frames/s
``temperature_c``  C
``exposure_ms``    ms
``viscosity_cp``   cP
``dilution``       factor
``calibration``    calibration JSON, relative to the manifest's folder
``invert``         true/false (also yes/no, 1/0)
``threshold_sigma`` noise sigmas
``min_diameter_nm`` nm
=================  =========================================================

An empty cell takes the command-line value. Videos and folders given
directly are grouped by the folder they are in.
"""

from __future__ import annotations

import csv
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from ..errors import ExotraceError, FileFormatError, InvalidInput
from ..nta.concentration import Calibration
from ._jobs import AnalysisSettings, VideoJob, settings_sha256

__all__ = ["MANIFEST_COLUMNS", "VIDEO_SUFFIXES", "collect_jobs", "read_manifest"]

#: Files a folder walk picks up (movie containers; TIFF stacks are named explicitly,
#: since a folder of single-frame TIFFs is one capture, not many).
VIDEO_SUFFIXES = (".avi", ".mp4", ".mov", ".mkv", ".m4v", ".wmv")
_DIRECT_SUFFIXES = VIDEO_SUFFIXES + (".tif", ".tiff")

_FLOAT_COLUMNS = ("pixel_size_nm", "fps", "temperature_c", "exposure_ms", "viscosity_cp",
                  "dilution", "threshold_sigma", "min_diameter_nm")
MANIFEST_COLUMNS = ("video", "sample", "group", "lot", *_FLOAT_COLUMNS, "calibration", "invert")
_REQUIRED_SETTINGS = ("pixel_size_nm", "fps", "temperature_c")
_TRUE = {"true", "yes", "1", "y"}
_FALSE = {"false", "no", "0", "n"}


class _CalibrationCache:
    """Each calibration file is read and validated once."""

    def __init__(self) -> None:
        self._loaded: dict[Path, Calibration] = {}

    def get(self, path: Path) -> Calibration:
        path = path.resolve()
        if path not in self._loaded:
            self._loaded[path] = Calibration.from_json(path)
        return self._loaded[path]


def _settings(values: Mapping[str, Any], cache: _CalibrationCache) -> AnalysisSettings:
    missing = [k for k in _REQUIRED_SETTINGS if values.get(k) is None]
    if missing:
        names = ", ".join("--" + k.replace("_", "-") for k in missing)
        raise InvalidInput(f"{names} required (on the command line or as manifest columns "
                           f"{', '.join(missing)})")
    kwargs = {k: v for k, v in values.items() if v is not None}
    cal = kwargs.pop("calibration", None)
    if cal is not None:
        kwargs["calibration"] = cache.get(Path(cal))
        kwargs["calibration_file"] = str(Path(cal).resolve())
    return AnalysisSettings(**kwargs)


def _walk(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*")
                  if p.suffix.lower() in VIDEO_SUFFIXES and p.is_file()
                  and not any(part.startswith(".") for part in p.relative_to(folder).parts))


def _cell_float(path: Path, line: int, column: str, text: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise FileFormatError(path, f"{text!r} is not a number", line=line, field=column) from None


def _row_values(path: Path, line: int, row: Mapping[str, str]) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for column in _FLOAT_COLUMNS:
        text = (row.get(column) or "").strip()
        if text:
            values[column] = _cell_float(path, line, column, text)
    text = (row.get("invert") or "").strip().lower()
    if text:
        if text not in _TRUE | _FALSE:
            raise FileFormatError(path, f"{text!r} is not true or false", line=line,
                                  field="invert")
        values["invert"] = text in _TRUE
    text = (row.get("calibration") or "").strip()
    if text:
        values["calibration"] = str(path.parent / text)
    return values


def read_manifest(path: str | Path, defaults: Mapping[str, Any]) -> list[VideoJob]:
    """Jobs of a CSV manifest (columns in the module docstring).

    Parameters
    ----------
    path : path
        The manifest.
    defaults : mapping
        Command-line settings (``AnalysisSettings`` keyword arguments; ``None``
        where not given) that empty cells fall back to.

    Raises
    ------
    FileFormatError
        Unreadable file, no header or ``video`` column, unknown column, a cell
        that is not a number or boolean, settings out of range, missing
        required settings; the message names the file, line and column.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as exc:
        raise FileFormatError(path, "is not UTF-8 text", offset=exc.start) from None
    except OSError as exc:
        raise FileFormatError(path, f"cannot be read: {exc.strerror or exc}") from None
    if "\x00" in text:
        raise FileFormatError(path, "is not valid CSV: it holds NUL bytes (a binary file?)",
                              offset=len(text[:text.index("\x00")].encode("utf-8")))
    lines = [(i, ln) for i, ln in enumerate(text.splitlines(), start=1)
             if ln.strip() and not ln.lstrip().startswith("#")]
    if not lines:
        raise FileFormatError(path, "is empty; expected a header row with a 'video' column")
    try:
        rows = list(csv.reader([ln for _, ln in lines]))
    except csv.Error as exc:
        raise FileFormatError(path, f"is not valid CSV: {exc}") from None
    header = [h.strip().lower() for h in rows[0]]
    header_line = lines[0][0]
    for h in header:
        if h not in MANIFEST_COLUMNS:
            raise FileFormatError(path, f"unknown column; expected some of "
                                  f"{', '.join(MANIFEST_COLUMNS)}", line=header_line, field=h)
    if len(set(header)) != len(header):
        dup = next(h for h in header if header.count(h) > 1)
        raise FileFormatError(path, "column appears twice", line=header_line, field=dup)
    if "video" not in header:
        raise FileFormatError(path, "has no 'video' column", line=header_line)
    if len(rows) == 1:
        raise FileFormatError(path, "has a header but no video rows")
    cache = _CalibrationCache()
    jobs = []
    for (line, _), cells in zip(lines[1:], rows[1:], strict=True):
        if len(cells) > len(header):
            raise FileFormatError(path, f"{len(cells)} cells for {len(header)} columns",
                                  line=line)
        row = {h: (cells[i] if i < len(cells) else "") for i, h in enumerate(header)}
        video_text = row["video"].strip()
        if not video_text:
            raise FileFormatError(path, "no video given", line=line, field="video")
        video = (path.parent / video_text).resolve()
        values = {**{k: v for k, v in defaults.items() if k != "lot"},
                  **_row_values(path, line, row)}
        try:
            settings = _settings(values, cache)
        except FileFormatError as exc:
            field = "calibration" if "calibration" in values else None
            raise FileFormatError(path, str(exc), line=line, field=field) from None
        except ExotraceError as exc:
            raise FileFormatError(path, str(exc), line=line) from None
        jobs.append(VideoJob(video=video, sample=row.get("sample", "").strip() or video.stem,
                             group=row.get("group", "").strip(), lot=row.get("lot", "").strip()
                             or defaults.get("lot"), settings=settings,
                             origin=f"{path}, line {line}"))
    return jobs


def collect_jobs(inputs: Sequence[str | Path], defaults: Mapping[str, Any], *,
                 lot: str | None = None) -> list[VideoJob]:
    """Jobs for every video named, found in a folder or listed in a manifest.

    Parameters
    ----------
    inputs : sequence of path
        Video files (``.avi``, ``.mp4``, ... and TIFF stacks), folders (walked
        recursively for :data:`VIDEO_SUFFIXES`, hidden entries skipped) and
        ``.csv`` manifests.
    defaults : mapping
        Command-line settings (``AnalysisSettings`` keyword arguments, ``None``
        where not given; ``calibration`` as a path).
    lot : str, optional
        Lot of every video (a manifest's ``lot`` column overrides it).

    Returns
    -------
    list of VideoJob
        In input order; a video given twice with the same sample name and
        settings appears once.

    Raises
    ------
    FileFormatError
        An input that does not exist, a folder without videos, an invalid manifest.
    InvalidInput
        Required settings missing or out of range.
    """
    if not inputs:
        raise InvalidInput("give at least one video, folder or CSV manifest")
    defaults = {**defaults, "lot": lot}
    settings_defaults = {k: v for k, v in defaults.items() if k != "lot"}
    cache = _CalibrationCache()
    plain: AnalysisSettings | None = None
    jobs: list[VideoJob] = []
    for item in inputs:
        p = Path(item)
        if not p.exists():
            raise FileFormatError(p, "file or folder not found")
        if p.is_file() and p.suffix.lower() == ".csv":
            jobs.extend(read_manifest(p, defaults))
            continue
        if p.is_dir():
            videos = _walk(p)
            if not videos:
                raise FileFormatError(p, f"no video files ({', '.join(VIDEO_SUFFIXES)}) in "
                                      "this folder or below")
        elif p.suffix.lower() in _DIRECT_SUFFIXES:
            videos = [p]
        else:
            raise FileFormatError(p, f"not a video ({', '.join(_DIRECT_SUFFIXES)}), folder or "
                                  ".csv manifest")
        if plain is None:
            plain = _settings(settings_defaults, cache)
        for v in videos:
            v = v.resolve()
            jobs.append(VideoJob(video=v, sample=v.stem, group=v.parent.name, lot=lot,
                                 settings=plain, origin=str(v)))
    unique: dict[tuple, VideoJob] = {}
    for job in jobs:
        unique.setdefault((job.video, job.sample, settings_sha256(job.settings), job.lot), job)
    return list(unique.values())
