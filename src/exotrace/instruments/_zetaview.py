"""Particle Metrix ZetaView 8.x ``.txt`` exports: size runs, position tables, zeta profiles.

A run writes up to three files, all Windows-1252, tab separated, CRLF, opening
with ``Key:<TAB>value`` header lines (see :mod:`._zetaview_text`):

* ``..._size_488.txt``: a ``Results (Pos ...)`` block with the vendor's
  ``Median Number (D50)``, then ``Size Distribution`` and the header row
  ``Size / nm<TAB>Number<TAB>Concentration / cm-3<TAB>Volume / nm^3<TAB>Area / nm^2``
  followed by **two tables of the same particles**: linear 5-nm classes
  (centres 2.5 ... 5997.5 nm), a separator row of ``-1.000E+0``, then
  logarithmic classes (64 per decade: centres from 4.7 nm up to ~6 um, each
  3.66 % above the last);
* ``..._size_488_11pos.txt``: the per-position table (:mod:`._zetaview_positions`);
  read on its own, or attached to the size file it sits beside;
* ``..._prof_488.txt`` (``Type of Measurement: Profile``): zeta potential
  (:mod:`._zetaview_zeta`).

Which table the size statistics come from
-----------------------------------------
The logarithmic one. Its classes are 3.66 % wide at every size (the SOP's 64
classes per decade, the binning of ZetaView's logarithmic size plots), while a
5-nm class is 5 % of a 100-nm EV, 10 % of a 50-nm one and 2.5 % of a 200-nm
one - the linear table is coarsest exactly where EVs are. X10, X50 and X90
interpolate the cumulative number distribution within a class (linearly in log
size, the particles being spread evenly per log class); the mean is
number-weighted over the geometric class centres (the arithmetic mean of a
class differs from its geometric centre by 0.003 %). On generated exports the
log table reproduces the exact-particle D50 and mean about twice as closely as
the 5-nm table (``benchmarks/zetaview_format.py``); the export does not say
which table the vendor's PDF uses, and the two agree within a class. The
linear table is read too: its X50 and concentration must agree with the
logarithmic table's within 5 %, else the file is flagged. A file with only the
linear table is evaluated on it, with a warning.

Concentration: the measured concentration is the sum of the ``Concentration /
cm-3`` column (1 cm^3 = 1 mL); the original sample's is that times
``Dilution::``. Detection range: the outer edges of the first and last
non-empty classes (what the run saw; the file states no instrument limit).
"""

from __future__ import annotations

from datetime import datetime, tzinfo
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import FileFormatError
from ._distribution import binned_statistics, compact_distribution, observed_range_nm
from ._record import InstrumentResult, VideoResult
from ._text import decode_text, read_bytes, with_timezone
from ._zetaview_positions import find_position_header, position_table_path, read_positions, run_name
from ._zetaview_text import Header, parse_header, read_rows, split_cells
from ._zetaview_zeta import read_profile

__all__ = ["AGREEMENT", "read_zetaview"]

_DATE_FORMATS = ("%Y-%m-%d", "%d.%m.%Y", "%d/%m/%Y", "%m/%d/%Y", "%Y/%m/%d", "%d-%m-%Y")
_TIME_FORMATS = ("%H:%M:%S", "%H:%M")
_STAT_KEYS = ("mean_nm", "mode_nm", "sd_nm", "d10_nm", "d50_nm", "d90_nm")
#: Relative disagreement between two statements of the same number in one run
#: (the two tables, the vendor's D50, the position table) beyond which we warn:
#: the tables' own resolution is 3.7-5 %, so 5 % is one class.
AGREEMENT = 0.05
ENCODINGS = ("utf-8-sig", "cp1252")


def _lines(raw: bytes, path) -> list[str]:
    return decode_text(raw, path, encodings=ENCODINGS).splitlines()


def _measured_at(header: Header, tz: tzinfo | None, warnings: list[str]) -> datetime | None:
    date_hit, time_hit = header.find("Date"), header.find("Time")
    if not date_hit or not date_hit.values:
        return None
    day = None
    for fmt in _DATE_FORMATS:
        try:
            day = datetime.strptime(date_hit.values[0].split()[0], fmt)
            break
        except (ValueError, IndexError):
            continue
    if day is None:
        warnings.append(f"could not read Date {date_hit.text[:30]!r}")
        return None
    if time_hit and time_hit.values:
        for fmt in _TIME_FORMATS:
            try:
                t = datetime.strptime(time_hit.values[0].split()[0], fmt)
            except (ValueError, IndexError):
                continue
            day = day.replace(hour=t.hour, minute=t.minute, second=t.second)
            break
        else:
            warnings.append(f"could not read Time {time_hit.text[:30]!r}")
    return with_timezone(day, tz)


def _count(value: float | None) -> int | None:
    return None if value is None else int(value)


def _conditions(header: Header, path, warnings: list[str]) -> dict[str, Any]:
    dilution = header.number("Dilution", path=path)
    if dilution is not None and dilution <= 0:
        hit = header.find("Dilution")
        raise FileFormatError(path, f"dilution {dilution:g} must be positive", line=hit.line,
                              field="Dilution::")
    traces = header.number("Number of Traces", path=path)
    if traces is not None and (traces < 0 or traces != int(traces)):
        hit = header.find("Number of Traces")
        raise FileFormatError(path, f"Number of Traces {traces:g} is not a count", line=hit.line,
                              field="Number of Traces")
    temperature = header.number("Temperature", "Temperature (sensed)", path=path)
    if temperature is not None and not 0.0 < temperature < 100.0:
        hit = header.find("Temperature", "Temperature (sensed)")
        raise FileFormatError(path, f"temperature {temperature:g} C is outside liquid water",
                              line=hit.line, field="Temperature")
    viscosity = header.number("Viscosity", path=path)
    if viscosity is not None and viscosity <= 0:
        raise FileFormatError(path, f"viscosity {viscosity:g} must be positive", field="Viscosity")
    if dilution is None:
        warnings.append("no 'Dilution::' value: the original sample's concentration is unknown")
    return {"dilution": dilution, "traces": None if traces is None else int(traces),
            "temperature": temperature, "viscosity": viscosity}


def _table(lines: list[str], start: int, path) -> tuple[list[str], np.ndarray, np.ndarray | None]:
    names = [c for c in split_cells(lines[start]) if c]
    if len(names) < 2 or names[1].lower() != "number":
        raise FileFormatError(path, "the Size Distribution header must start 'Size / nm, Number'",
                              line=start + 1, field="Size Distribution")
    linear, end = read_rows(lines, start + 1, len(names), path, table="Size Distribution")
    log = None
    if end < len(lines) and split_cells(lines[end])[0].startswith("-1"):
        k = end + 1
        while k < len(lines) and k < end + 3 and lines[k].strip() and not lines[k].strip()[0].isdigit():
            k += 1  # a repeated header row before the logarithmic classes
        log, _ = read_rows(lines, k, len(names), path, table="Size Distribution (log)")
        if log.shape[0] == 0:
            log = None
    if linear.shape[0] == 0:
        raise FileFormatError(path, "the Size Distribution table has no rows", line=start + 2)
    return names, linear, log


def _check(table: np.ndarray, conc_j: int | None, path, line: int, what: str) -> None:
    size, number = table[:, 0], table[:, 1]
    if not np.all(np.isfinite(size)) or np.any(size <= 0) or np.any(np.diff(size) <= 0):
        raise FileFormatError(path, f"sizes of the {what} table must be positive and increasing",
                              line=line, field="Size / nm")
    if not np.all(np.isfinite(number)) or np.any(number < 0):
        raise FileFormatError(path, f"the {what} table has a negative or missing Number",
                              line=line, field="Number")
    if conc_j is not None and np.any(table[:, conc_j] < 0):
        raise FileFormatError(path, f"the {what} table has a negative concentration", line=line,
                              field="Concentration / cm-3")


def _disagree(a: float | None, b: float | None) -> bool:
    return a is not None and b is not None and b != 0 and abs(a - b) > AGREEMENT * abs(b)


def _attach_positions(path, warnings: list[str]) -> dict[str, Any] | None:
    try:
        sibling = position_table_path(Path(str(path)))
    except (OSError, ValueError):
        return None
    if sibling is None:
        return None
    try:
        lines = _lines(read_bytes(sibling), sibling)
        start = find_position_header(lines)
        if start is None:
            raise FileFormatError(sibling, "no Position/Conc. table")
        table = read_positions(lines, start, sibling)
    except FileFormatError as exc:
        warnings.append(f"position table not attached: {exc}")
        return None
    table["file"] = sibling.name
    return table


def _size_run(lines, start, header, cond, path, warnings, attach_positions) -> dict[str, Any]:
    names, linear, log = _table(lines, start, path)
    lower = [n.lower() for n in names]
    conc_j = next((j for j, n in enumerate(lower) if n.startswith("concentration")), None)
    _check(linear, conc_j, path, start + 2, "linear")
    if log is not None:
        _check(log, conc_j, path, start + 2 + linear.shape[0], "logarithmic")
    chosen, log_bins = (log, True) if log is not None else (linear, False)
    if log is None:
        warnings.append("no logarithmic table after the -1 separator: statistics from the 5-nm table")
    counts = chosen[:, 1]
    zero = cond["traces"] == 0 or float(counts.sum()) == 0.0
    stats: dict[str, Any] = dict.fromkeys(_STAT_KEYS)
    measured = None
    if zero:
        measured = 0.0
        warnings.append("run has zero traces: no particles were tracked, no size is reported")
    else:
        stats = binned_statistics(chosen[:, 0], counts, log_bins=log_bins)
        if conc_j is not None and np.all(np.isfinite(chosen[:, conc_j])):
            measured = float(chosen[:, conc_j].sum())
        else:
            warnings.append("no usable 'Concentration / cm-3' column: concentration unknown")
        if log is not None:
            lin = binned_statistics(linear[:, 0], linear[:, 1])
            if _disagree(lin["d50_nm"], stats["d50_nm"]):
                warnings.append(f"X50 of the 5-nm table ({lin['d50_nm']:.1f} nm) and of the "
                                f"logarithmic table ({stats['d50_nm']:.1f} nm) disagree")
            if conc_j is not None and _disagree(float(np.nansum(linear[:, conc_j])), measured):
                warnings.append("the two tables' concentrations disagree by more than 5 %")
        vendor_d50 = header.number("Median Number (D50)", path=path)
        if vendor_d50 and _disagree(stats["d50_nm"], vendor_d50):
            warnings.append(f"X50 {stats['d50_nm']:.1f} nm differs from the file's Median Number "
                            f"(D50) {vendor_d50:.1f} nm by more than 5 %")
    positions = _attach_positions(path, warnings) if attach_positions else None
    if positions and not zero and _disagree(positions["measured_particles_per_ml"], measured):
        warnings.append("the position table's mean concentration differs from the size "
                        "table's by more than 5 %")
    columns = {n: chosen[:, j] for j, n in enumerate(names)}
    extra = {
        "size_distribution": {n: linear[:, j] for j, n in enumerate(names)},
        "log_distribution": None if log is None else {n: log[:, j] for j, n in enumerate(names)},
        "statistics_table": "logarithmic" if log_bins else "linear 5 nm",
        "number_distribution": None if zero else compact_distribution(columns[names[0]], counts),
        "detection_range_nm": None if zero else observed_range_nm(columns[names[0]], counts,
                                                                  log_bins=log_bins),
        "detection_range_source": "observed: outer edges of the first and last non-empty class",
        "position_table": positions,
        "removed_positions": None if positions is None else positions["removed"],
    }
    return {"stats": stats, "measured": measured, "zero": zero, "extra": extra}


def _positions_run(lines, start, path, warnings) -> dict[str, Any]:
    table = read_positions(lines, start, path)
    if table["positions_used"] == 0:
        warnings.append("no position is in use: the run has no concentration")
    return {"stats": dict.fromkeys(_STAT_KEYS), "measured": table["measured_particles_per_ml"],
            "original": table["particles_per_ml"], "zero": table["positions_used"] == 0,
            "extra": {"position_table": table, "removed_positions": table["removed"],
                      "detection_range_nm": None}}


def read_zetaview(path, *, instrument_timezone: tzinfo | None = None, data: bytes | None = None,
                  attach_positions: bool = True) -> InstrumentResult:
    """Read a ZetaView 8.x export: size file, per-position table or zeta-potential profile.

    Parameters
    ----------
    path : str or os.PathLike
    instrument_timezone : tzinfo, optional
        Time zone of the instrument clock; UTC when not given.
    data : bytes, optional
        The file's bytes when already read.
    attach_positions : bool
        Attach the ``<name>_<n>pos.txt`` table lying beside a size file.

    Returns
    -------
    InstrumentResult
        ``format="zetaview-txt"``; ``extra["variant"]`` is ``"size"``, ``"11pos"``
        or ``"prof"``. Size runs: mean/X10/X50/X90 from the logarithmic table (see
        the module notes), ``measured_particles_per_ml`` (sum of the
        concentration column) and ``particles_per_ml`` (times ``Dilution::``);
        ``extra``: ``number_distribution``, ``detection_range_nm``,
        ``position_table`` and ``removed_positions`` when the table is beside it.
        Position tables: concentrations are the means over the positions in use.
        Profiles: ``extra["zeta_potential_mv"]`` (at 25 C). A run with
        ``Number of Traces: 0`` is a record with a warning.

    Raises
    ------
    FileFormatError
        One line naming the file, line and field.
    """
    raw = read_bytes(path) if data is None else data
    lines = _lines(raw, path)
    size_row = next((i for i, ln in enumerate(lines) if ln.strip().lower().startswith("size / nm")), None)
    zp_row = next((i for i, ln in enumerate(lines) if ln.strip().lower().startswith("zp profile")), None)
    pos_row = find_position_header(lines) if size_row is None else None
    stop = min(i for i in (size_row, zp_row, pos_row, len(lines)) if i is not None)
    header = parse_header(lines, stop)
    if not header:
        raise FileFormatError(path, "no 'Key: value' header lines", line=1)
    warnings: list[str] = []
    cond = _conditions(header, path, warnings)
    kind_hit = header.find("Type of Measurement")
    kind = kind_hit.text if kind_hit else ""
    original = None
    if "profile" in kind.lower() or zp_row is not None or header.find("Zeta Potential / mV"):
        variant = "prof"
        zeta = read_profile(lines, header, cond["temperature"], path, warnings)
        run = {"stats": dict.fromkeys(_STAT_KEYS), "measured": None, "zero": cond["traces"] == 0,
               "extra": {**zeta, "detection_range_nm": None}}
        if cond["traces"] == 0:
            warnings.append("run has zero traces: no particles were tracked")
    elif size_row is not None:
        variant = "size"
        run = _size_run(lines, size_row, header, cond, path, warnings, attach_positions)
    elif pos_row is not None:
        variant = "11pos"
        run = _positions_run(lines, pos_row, path, warnings)
        original = run["original"]
    else:
        raise FileFormatError(path, "no 'Size / nm' table, position table or ZP Profile",
                              line=len(lines))
    measured = run["measured"]
    if variant != "11pos":
        original = None if measured is None or cond["dilution"] is None else measured * cond["dilution"]
    stats = run["stats"]
    software = header.find("Software", "Software Version")
    sample = header.find("Sample")
    original_file = header.find("Original File")
    avg = header.number("Average Number of Particles", path=path)
    extra: dict[str, Any] = {
        "header": {k: v.text for k, v in header.items()},
        "method": "ZetaView",
        "variant": variant,
        "run": run_name(original_file.text if original_file and original_file.text else path),
        "measurement_type": kind or None,
        "traces": cond["traces"],
        "average_particles_per_frame": avg,
        "positions": _count(header.number("Positions", path=path)),
        "laser_wavelength_nm": header.number("Laser Wavelength nm", "Laser Wavelength", "Laser",
                                             path=path),
        "um_per_pixel": header.number("Micrometer per Pixel", path=path),
        "camera": header.find("Camera").text if header.find("Camera") else None,
        "vendor_median_number_nm": header.number("Median Number (D50)", path=path),
        "vendor_median_volume_nm": header.number("Median Volume (D50)", path=path),
        **run["extra"],
    }
    video = VideoResult(name=original_file.text if original_file else str(path),
                        particles_per_ml=original, measured_particles_per_ml=measured,
                        valid_tracks=cond["traces"], has_results=not run["zero"],
                        **{k: stats[k] for k in _STAT_KEYS})
    return InstrumentResult(
        file=str(path), format="zetaview-txt", instrument="ZetaView",
        software_version=software.text if software and software.text else None,
        sample=sample.text if sample and sample.text else None,
        measured_at=_measured_at(header, instrument_timezone, warnings),
        temperature_c=cond["temperature"], viscosity_cp=cond["viscosity"],
        dilution_factor=cond["dilution"], particles_per_ml=original,
        measured_particles_per_ml=measured, videos=(video,), warnings=tuple(warnings), extra=extra,
        **{k: stats[k] for k in _STAT_KEYS},
    )
