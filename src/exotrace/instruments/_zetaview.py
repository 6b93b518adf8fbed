"""Particle Metrix ZetaView ``.txt`` exports (software 8.x).

Layout: ``Key: value`` header lines (tab or spaces after the colon; Latin-1
bytes such as ``µ``), one line ``Number of Traces: N ... Average Number of
Particles: x ... Dilution:: D``, a ``Results`` block (``Median Number (D50)``,
``Median Volume (D50)``), then a ``Size Distribution`` table (tab separated:
``Size / nm``, ``Number``, ``Concentration / cm-3``, ``Volume / nm^3``,
``Area / nm^2``) in 5-nm bins and, after a ``-1.000E+0`` separator line, the same
columns in logarithmic bins.

Statistics are computed from the 5-nm number distribution with the convention
of :mod:`exotrace.instruments._distribution` (centres, linear interpolation of
the cumulative distribution across bins, number-weighted mean and population SD
over bin centres). The measured concentration is the sum of the
``Concentration / cm-3`` column (1 cm^3 = 1 mL); the original sample's
concentration is that times ``Dilution::``.
"""

from __future__ import annotations

import re
from datetime import datetime, tzinfo
from typing import Any

import numpy as np

from ..errors import FileFormatError
from ._distribution import binned_statistics
from ._record import InstrumentResult, VideoResult
from ._text import decode_text, parse_float, read_bytes, with_timezone

__all__ = ["read_zetaview"]

_NUMBER = r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?"
_TRACES = re.compile(r"Number of Traces:?\s*(" + _NUMBER + ")")
_AVG_PARTICLES = re.compile(r"Average Number of Particles:?\s*(" + _NUMBER + ")")
_DILUTION = re.compile(r"Dilution::?\s*(" + _NUMBER + ")")
_FIRST_NUMBER = re.compile(_NUMBER)
_NUMERIC_LINE = re.compile(r"\s*[-+.\d]")
_DATE_FORMATS = ("%Y-%m-%d", "%d.%m.%Y", "%d/%m/%Y", "%m/%d/%Y", "%Y/%m/%d", "%d-%m-%Y")
_TIME_FORMATS = ("%H:%M:%S", "%H:%M")
_SEPARATOR = -1.0


def _first_number(text: str) -> float | None:
    m = _FIRST_NUMBER.search(text)
    if not m:
        return None
    try:
        v = float(m.group(0))
    except ValueError:  # pragma: no cover - the regex only matches numbers
        return None
    return v if np.isfinite(v) else None


def _header_value(header: dict[str, tuple[str, int]], *names: str) -> tuple[str, int] | None:
    for name in names:
        if name in header:
            return header[name]
    lowered = {k.lower(): v for k, v in header.items()}
    for name in names:
        if name.lower() in lowered:
            return lowered[name.lower()]
    return None


def _table(lines: list[str], start: int, path) -> tuple[np.ndarray, int]:
    """Rows of numbers from ``lines[start:]`` until a blank/non-numeric line or the separator."""
    rows: list[list[float]] = []
    i = start
    width = None
    while i < len(lines):
        cells = [c for c in re.split(r"[\t;]+|\s{2,}", lines[i].strip()) if c != ""]
        if not cells:
            break
        try:
            first = float(cells[0].replace(",", "."))
        except ValueError:
            break
        if first == _SEPARATOR and len(cells) == 1:
            break
        values = []
        for j, cell in enumerate(cells):
            v = parse_float(cell.replace(",", "."), path, line=i + 1, field=f"Size Distribution column {j + 1}")
            values.append(np.nan if v is None else v)
        if width is None:
            width = len(values)
        elif len(values) != width:
            raise FileFormatError(path, f"row has {len(values)} columns, the table {width}",
                                  line=i + 1, field="Size Distribution")
        rows.append(values)
        i += 1
    if not rows:
        return np.empty((0, 0)), i
    return np.asarray(rows, dtype=float), i


def read_zetaview(path, *, instrument_timezone: tzinfo | None = None,
                  data: bytes | None = None) -> InstrumentResult:
    """Read a ZetaView 8.x ``.txt`` export (size, 11-position or profile variant).

    Parameters
    ----------
    path : str or os.PathLike
    instrument_timezone : tzinfo, optional
        Time zone of the instrument clock; UTC when not given.
    data : bytes, optional
        The file's bytes when already read.

    Returns
    -------
    InstrumentResult
        ``format="zetaview-txt"``. ``measured_particles_per_ml`` is the sum of the
        ``Concentration / cm-3`` column; ``particles_per_ml`` multiplies it by
        ``Dilution::``. Size statistics from the 5-nm number distribution (see the
        module notes). ``extra``: ``header`` (every ``Key: value``), ``traces``,
        ``average_particles_per_frame``, ``variant`` (``"size"``, ``"11pos"`` or
        ``"prof"``), ``positions``, ``laser_wavelength_nm``, ``um_per_pixel``,
        ``vendor_median_number_nm`` / ``vendor_median_volume_nm`` (the file's own
        D50s), ``size_distribution`` and ``log_distribution`` (columns as arrays).
        A run with ``Number of Traces: 0`` gives zero concentration, no sizes and a
        warning.
    """
    raw = read_bytes(path) if data is None else data
    text = decode_text(raw, path, encodings=("utf-8-sig", "latin-1"))
    lines = text.splitlines()
    header: dict[str, tuple[str, int]] = {}
    traces = avg_particles = dilution = None
    table_start = None
    for i, line in enumerate(lines):
        s = line.strip()
        if not s:
            continue
        if s.startswith("Size / nm") or s.lower().startswith("size / nm"):
            table_start = i
            break
        if "Number of Traces" in s:
            m = _TRACES.search(s)
            if m:
                traces = float(m.group(1))
            m = _AVG_PARTICLES.search(s)
            if m:
                avg_particles = float(m.group(1))
            m = _DILUTION.search(s)
            if m:
                dilution = float(m.group(1))
            elif "Dilution" in s:
                raise FileFormatError(path, "Dilution:: is not a number", line=i + 1,
                                      field="Dilution::")
            continue
        if ":" in s:
            key, _, value = s.partition(":")
            header.setdefault(key.strip(), (value.strip(" \t:"), i + 1))
    if not header and table_start is None:
        raise FileFormatError(path, "no 'Key: value' header and no Size Distribution table")
    if table_start is None:
        raise FileFormatError(path, "no 'Size / nm' Size Distribution table", line=len(lines))
    columns = [c.strip() for c in re.split(r"\t+|\s{2,}", lines[table_start].strip()) if c.strip()]
    fine, end = _table(lines, table_start + 1, path)
    log_table = None
    if end < len(lines) and _first_number(lines[end]) == _SEPARATOR:
        k = end + 1
        while k < len(lines) and lines[k].strip() and not _NUMERIC_LINE.match(lines[k]):
            k += 1  # an optional header line before the log-binned rows
        log_table, _ = _table(lines, k, path)
    if fine.size == 0:
        raise FileFormatError(path, "the Size Distribution table has no rows", line=table_start + 2)
    if fine.shape[1] < 2:
        raise FileFormatError(path, "the Size Distribution table needs Size and Number columns",
                              line=table_start + 2)
    col = {name.lower(): j for j, name in enumerate(columns[:fine.shape[1]])}
    size = fine[:, 0]
    number = fine[:, col.get("number", 1)]
    conc_j = next((j for name, j in col.items() if name.startswith("concentration")), None)
    concentration = fine[:, conc_j] if conc_j is not None else None
    if np.any(np.diff(size) <= 0):
        raise FileFormatError(path, "sizes in the Size Distribution table must increase",
                              line=table_start + 2, field="Size / nm")
    if np.any(size < 0) or np.any(number < 0) or (concentration is not None and np.any(concentration < 0)):
        raise FileFormatError(path, "negative size, count or concentration in the Size Distribution",
                              line=table_start + 2)

    warnings: list[str] = []
    if dilution is not None and dilution <= 0:
        raise FileFormatError(path, f"dilution {dilution} must be positive", field="Dilution::")
    if dilution is None:
        warnings.append("no 'Dilution::' value: the original sample's concentration is unknown")
    if traces is not None and traces < 0:
        raise FileFormatError(path, "Number of Traces is negative", field="Number of Traces")

    zero = (traces == 0) or float(np.nansum(number)) == 0.0
    if zero:
        stats: dict[str, Any] = dict.fromkeys(("mean_nm", "sd_nm", "mode_nm", "d10_nm", "d50_nm", "d90_nm"))
        measured = 0.0
        warnings.append("run has zero traces: no particles were tracked, no size is reported")
    else:
        stats = binned_statistics(size, np.nan_to_num(number))
        measured = float(np.nansum(concentration)) if concentration is not None else None
        if measured is None:
            warnings.append("no 'Concentration / cm-3' column: concentration unknown")
    original = None if measured is None or dilution is None else measured * dilution

    def number_of(*keys):
        hit = _header_value(header, *keys)
        return None if hit is None else _first_number(hit[0])

    temperature = number_of("Temperature (sensed)", "Temperature")
    if temperature is not None and not 0.0 < temperature < 100.0:
        hit = _header_value(header, "Temperature (sensed)", "Temperature")
        raise FileFormatError(path, f"temperature {temperature} C is outside liquid water",
                              line=hit[1], field="Temperature")
    viscosity = number_of("Viscosity")
    if viscosity is not None and viscosity <= 0:
        raise FileFormatError(path, f"viscosity {viscosity} must be positive", field="Viscosity")

    measured_at = None
    date_hit = _header_value(header, "Date")
    time_hit = _header_value(header, "Time")
    if date_hit:
        day = None
        for fmt in _DATE_FORMATS:
            try:
                day = datetime.strptime(date_hit[0].split()[0], fmt)
                break
            except (ValueError, IndexError):
                continue
        if day is None:
            warnings.append(f"could not read Date {date_hit[0][:30]!r}")
        else:
            if time_hit:
                clock = time_hit[0].split()[0] if time_hit[0].split() else ""
                for fmt in _TIME_FORMATS:
                    try:
                        t = datetime.strptime(clock, fmt)
                    except ValueError:
                        continue
                    day = day.replace(hour=t.hour, minute=t.minute, second=t.second)
                    break
                else:
                    warnings.append(f"could not read Time {time_hit[0][:30]!r}")
            measured_at = with_timezone(day, instrument_timezone)

    kind_hit = _header_value(header, "Type of Measurement")
    kind = kind_hit[0] if kind_hit else ""
    positions = number_of("Positions")
    if "prof" in kind.lower():
        variant = "prof"
    elif positions is not None and positions >= 11:
        variant = "11pos"
    elif kind:
        variant = "size"
    else:  # nothing in the header says: fall back to the vendor's file-name tags
        name = str(path).lower()
        variant = "prof" if "_prof" in name else "11pos" if "_11pos" in name else "size"
    for key in ("Cell Check Result", "Particle Drift Check Result"):
        hit = _header_value(header, key)
        if hit and hit[0] and not hit[0].lower().startswith(("ok", "passed", "pass")) \
                and _first_number(hit[0]) is None:
            warnings.append(f"{key}: {hit[0]}")

    software = _header_value(header, "Software", "Software Version")
    sample = _header_value(header, "Sample")
    original_file = _header_value(header, "Original File")
    columns_out = {c: fine[:, j] for j, c in enumerate(columns[:fine.shape[1]])}
    extra: dict[str, Any] = {
        "header": {k: v for k, (v, _) in header.items()},
        "traces": None if traces is None else int(traces),
        "average_particles_per_frame": avg_particles,
        "variant": variant,
        "measurement_type": kind or None,
        "positions": None if positions is None else int(positions),
        "laser_wavelength_nm": number_of("Laser Wavelength nm", "Laser Wavelength"),
        "um_per_pixel": number_of("Micrometer per Pixel"),
        "vendor_median_number_nm": number_of("Median Number (D50)"),
        "vendor_median_volume_nm": number_of("Median Volume (D50)"),
        "size_distribution": columns_out,
        "log_distribution": (None if log_table is None or log_table.size == 0 else
                             {c: log_table[:, j] for j, c in enumerate(columns[:log_table.shape[1]])}),
        "statistics_convention": "bin centres; X10/X50/X90 by linear interpolation of the "
                                 "cumulative number distribution across bins; number-weighted "
                                 "mean and population SD over bin centres",
    }
    video = VideoResult(
        name=original_file[0] if original_file else str(path), particles_per_ml=original,
        measured_particles_per_ml=measured, valid_tracks=traces, has_results=not zero,
        **{k: stats[k] for k in ("mean_nm", "mode_nm", "sd_nm", "d10_nm", "d50_nm", "d90_nm")},
    )
    return InstrumentResult(
        file=str(path), format="zetaview-txt", instrument="ZetaView",
        software_version=software[0] if software and software[0] else None,
        sample=sample[0] if sample and sample[0] else None, measured_at=measured_at,
        temperature_c=temperature, viscosity_cp=viscosity, dilution_factor=dilution,
        particles_per_ml=original, measured_particles_per_ml=measured,
        videos=(video,), warnings=tuple(warnings), extra=extra,
        **{k: stats[k] for k in ("mean_nm", "mode_nm", "sd_nm", "d10_nm", "d50_nm", "d90_nm")},
    )
