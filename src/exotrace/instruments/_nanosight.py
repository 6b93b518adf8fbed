"""NanoSight NTA 3.x ``*ExperimentSummary.csv`` reader.

The export is a cp1252 CSV of bracketed sections (``[Experiment Details]``,
``[Conditions]``, ``[Settings]``, ``[Results]``, ``[Concentration Warnings]``,
``[Information]``, ``[Size Data]``, ``[Diffusion Coefficient Data]``) with one
column per video followed, where the vendor computed them, by ``Average`` and
``Standard Error`` columns. Rows are ragged and end in trailing commas.

The summary values of the returned record are the file's own ``Average``
column, never recomputed: what the vendor printed is what the user signed off.
"""

from __future__ import annotations

from datetime import tzinfo
from typing import Any

import numpy as np

from ..errors import FileFormatError
from ._distribution import compact_distribution, observed_range_nm
from ._nanosight_csv import (
    CONCENTRATION_KEY,
    DIFFUSION_UNIT_M2_PER_S,
    DILUTION_PREFIX,
    STAT_NAMES,
    WEIGHTINGS,
    Block,
    average_index,
    cells_of,
    concentration_key,
    dilutions,
    first_value,
    maybe_number,
    mean_of,
    numbers,
    parse_sections,
    parse_time,
    split_row,
    value_at,
    video_names,
)
from ._record import InstrumentResult, VideoResult
from ._text import decode_text, read_bytes, with_timezone

__all__ = ["read_nanosight_summary"]

# [Information] / [Concentration Warnings] values that mean "nothing to report".
_BENIGN = {"ok", "no", ""}
_NOT_WARNINGS = {"Vibration correction applied"}

def _block_summary(block: Block, names: list[str], path) -> dict[str, Any]:
    n = len(names)
    avg_idx, se_idx = average_index(block.filename_row, n)
    size = block.domain == "size"
    scale = 1.0 if size else DIFFUSION_UNIT_M2_PER_S
    unit = "nm" if size else "m2_per_s"
    videos: dict[str, list[float | None]] = {}
    average: dict[str, float | None] = {}
    standard_error: dict[str, float | None] = {}
    label = f"{block.weighting} weighting"
    for key, row in block.stats.items():
        short = STAT_NAMES.get(key)
        name = f"{short}_{unit}" if short else key.lower().replace(" ", "_")
        factor = scale if short else 1.0
        vals = numbers(row, n, path, f"{key}, {label}")
        videos[name] = [None if v is None else v * factor for v in vals]
        a = value_at(row, avg_idx, path, f"{key}, {label}")
        s = value_at(row, se_idx, path, f"{key}, {label}")
        average[name] = None if a is None else a * factor
        standard_error[name] = None if s is None else s * factor
    out: dict[str, Any] = {"average": average, "standard_error": standard_error, "videos": videos}
    return out


def _block_tables(block: Block, names: list[str], path) -> tuple[dict | None, dict | None]:
    n = len(names)
    size = block.domain == "size"
    scale = 1.0 if size else DIFFUSION_UNIT_M2_PER_S
    dist = None
    if block.graph is not None and block.graph.lines:
        header = [c.strip() for c in block.graph.header]
        ncols = max(len([c for c in header if c]), 1 + n)
        arr = block.graph.to_array(path, ncols, f"Graph Data ({block.weighting})")
        dist = {
            ("bin_centres_nm" if size else "bin_centres_m2_per_s"): arr[:, 0] * scale,
            "videos": arr[:, 1:1 + n].T.copy(),
            "average": arr[:, 1 + n] if ncols > 1 + n else None,
            "standard_error": arr[:, 2 + n] if ncols > 2 + n else None,
            "unit": "particles/mL per bin",
        }
    pct = None
    if block.percentiles is not None and block.percentiles.lines:
        arr = block.percentiles.to_array(path, 1 + n, f"Percentiles ({block.weighting})")
        pct = {"percent": arr[:, 0], ("videos_nm" if size else "videos_m2_per_s"):
               (arr[:, 1:1 + n] * scale).T.copy()}
    return dist, pct


def _size_extras(dist: dict | None) -> dict[str, Any]:
    """``number_distribution`` and ``detection_range_nm`` (observed) from the number Graph Data."""
    if dist is None:
        return {"number_distribution": None, "detection_range_nm": None}
    weights = dist["average"] if dist.get("average") is not None else np.nansum(dist["videos"], axis=0)
    weights = np.clip(np.nan_to_num(np.asarray(weights, dtype=float)), 0.0, None)
    centres = dist["bin_centres_nm"]
    return {"number_distribution": compact_distribution(centres, weights),
            "detection_range_nm": observed_range_nm(centres, weights),
            "detection_range_source": "observed: outer edges of the first and last non-empty bin"}


def _vendor_warnings(sections, names) -> tuple[list[str], list[list[str]]]:
    n = len(names)
    overall: list[str] = []
    per_video: list[list[str]] = [[] for _ in range(n)]
    for sec in ("concentration_warnings", "information"):
        for key, row in sections.get(sec, {}).items():
            if key in _NOT_WARNINGS:
                continue
            groups: dict[str, list[int]] = {}
            for i, cell in enumerate(cells_of(row, n)):
                value = " ".join(cell.split())
                if value.lower() in _BENIGN or f"{key}: {value}" in per_video[i]:
                    continue
                groups.setdefault(value, []).append(i)
                per_video[i].append(f"{key}: {value}")
            for value, idx in groups.items():
                shown = ", ".join(names[i] for i in idx[:4]) + (", ..." if len(idx) > 4 else "")
                overall.append(f"{key}: {value} ({len(idx)} of {n} videos: {shown})")
    return overall, per_video


def _average_note(number, concs, videos, conc_avg) -> list[str]:
    """Say whether the vendor's Average counted failed videos as zeros (it is kept as printed)."""
    means = number["videos"].get("mean_nm") or []
    avg = number["average"].get("mean_nm")
    ok = [i for i, v in enumerate(videos) if v.has_results]
    if avg is None or not ok or len(means) != len(videos):
        return []
    with_zeros = float(np.mean([m or 0.0 for m in means]))
    without = float(np.mean([means[i] for i in ok if means[i] is not None]))
    if abs(avg - with_zeros) < abs(avg - without):
        conc = [concs[i] for i in ok if concs[i] is not None]
        extra = f", {np.mean(conc):.3g} particles/mL" if conc and conc_avg is not None else ""
        return [f"the vendor's Average counts the videos without results as zeros (kept as printed); "
                f"over videos with results only: mean {without:.1f} nm{extra}"]
    return ["the vendor's Average leaves out the videos without results"]


def _check_complete(sections, blocks, n: int, path) -> None:
    """Refuse summaries that lost their results or size data (truncated or hand-edited)."""
    res = sections.get("results")
    if res is None or concentration_key(res) is None:
        raise FileFormatError(path, f"no '{CONCENTRATION_KEY}' row in [Results] (truncated file?)",
                              field="[Results]")
    size_blocks = [b for b in blocks if b.domain == "size"]
    if not size_blocks:
        raise FileFormatError(path, "no [Size Data] section (truncated file?)", field="[Size Data]")
    for block in blocks:
        if block.domain != "size":
            continue
        missing = [k for k in STAT_NAMES if k not in block.stats]
        if missing:
            raise FileFormatError(path, f"{block.weighting} weighting lacks the {', '.join(missing)} "
                                        "row(s) (truncated file?)", line=block.line, field="[Size Data]")
        for key in STAT_NAMES:
            cells, line = block.stats[key]
            if len(cells) < n:
                raise FileFormatError(path, f"row has {len(cells)} of {n} video columns "
                                            "(truncated file?)", line=line, field=key)
    for block in blocks:
        for table in (block.graph, block.percentiles):
            if table is None or len(table.lines) < 2:
                continue
            first_cells = len(split_row(table.lines[0]))
            if len(split_row(table.lines[-1])) < first_cells:
                raise FileFormatError(path, "last row of the table is incomplete (truncated file?)",
                                      line=table.line + len(table.lines), field=table.header[0].strip())


def _check_percentiles(blocks, data_included, path) -> None:
    """A size block announced 'With Percentiles' must carry the full 0-100 table (truncation)."""
    if not any("percentile" in k.lower() for k in data_included):
        return
    for block in blocks:
        if block.domain != "size" or block.graph is None:
            continue
        rows = 0 if block.percentiles is None else len(block.percentiles.lines)
        if rows != 101:
            line = block.graph.line if block.percentiles is None else block.percentiles.line
            raise FileFormatError(path, f"percentile table of the {block.weighting} weighting has "
                                        f"{rows} of 101 rows (truncated file?)", line=line,
                                  field="Percentile")


def read_nanosight_summary(path, *, instrument_timezone: tzinfo | None = None,
                           data: bytes | None = None) -> InstrumentResult:
    """Read a NanoSight NTA 3.0-3.4 ``ExperimentSummary.csv``.

    Parameters
    ----------
    path : str or os.PathLike
        The export.
    instrument_timezone : tzinfo, optional
        Time zone of the instrument PC's clock; UTC when not given.
    data : bytes, optional
        The file's bytes when already read (format detection reads them once).

    Returns
    -------
    InstrumentResult
        ``format="nanosight-summary"``. Summary values (``particles_per_ml``,
        ``mean_nm`` ... ``d90_nm``) are the ``Average`` column of the file, number
        weighting. ``extra`` holds ``experiment``, ``conditions``, ``settings``,
        ``results`` (per video, average, standard error), ``concentration_warnings``,
        ``information``, ``weightings`` (number / surface_area / volume statistics per
        video, average and standard error, nm), ``diffusion`` (same, m^2/s, converted
        from the file's 1e4 nm^2/s), ``distributions`` (1-nm Graph Data: bin centres,
        per video, average, standard error, particles/mL per bin), ``percentiles``
        (0-100 % per video) and ``zero_result_videos``.

    Notes
    -----
    Videos whose statistics are all zero or blank (failed videos) are reported with
    ``has_results=False`` and ``None`` statistics; the vendor's Average is kept as
    printed, whatever it included. With the dilution "Not recorded" the vendor applied
    no factor, so ``particles_per_ml`` equals ``measured_particles_per_ml`` and a
    warning says so.
    """
    raw = read_bytes(path) if data is None else data
    text = decode_text(raw, path)
    preamble, sections, headers, blocks = parse_sections(text, path)
    if not sections and not blocks:
        raise FileFormatError(path, "no NanoSight sections found (expected '[Experiment Details]', "
                                    "'[Results]', '[Size Data]')")
    names = video_names(sections, blocks, path)
    n = len(names)
    _check_complete(sections, blocks, n, path)
    _check_percentiles(blocks, sections.get("data_included", {}), path)
    warnings: list[str] = []

    # --- experiment details
    version = first_value(sections, "experiment", "Software Version")
    if not version or version.lower() == "unknown":
        created = next((p for p in preamble if p.startswith("Created with")), None)
        version = created[len("Created with"):].strip() if created else None
    sample = (first_value(sections, "experiment", "Sample Description")
              or first_value(sections, "experiment", "Sample Name")
              or first_value(sections, "experiment", "Experiment Name"))
    measured_at = None
    time_text = first_value(sections, "experiment", "Time Captured")
    if time_text:
        moment = parse_time(time_text)
        if moment is None:
            warnings.append(f"could not read Time Captured {time_text!r}")
        else:
            measured_at = with_timezone(moment, instrument_timezone)

    # --- conditions
    cond = sections.get("conditions", {})
    temps = numbers(cond.get("Temperature/C"), n, path, "Temperature/C")
    viscs = numbers(cond.get("Viscosity/cP"), n, path, "Viscosity/cP")
    for t in temps:
        if t is not None and not 0.0 < t < 100.0:
            raise FileFormatError(path, f"temperature {t} C is outside liquid water (0-100 C)",
                                  line=cond["Temperature/C"][1], field="Temperature/C")
    for v in viscs:
        if v is not None and v <= 0:
            raise FileFormatError(path, f"viscosity {v} cP must be positive",
                                  line=cond["Viscosity/cP"][1], field="Viscosity/cP")

    # --- results
    res = sections.get("results", {})
    avg_idx, se_idx = average_index(headers.get("[Results]"), n)
    conc_row = res.get(concentration_key(res) or CONCENTRATION_KEY)
    dil_key = next((k for k in res if k.startswith(DILUTION_PREFIX)), None)
    dils = dilutions(res.get(dil_key) if dil_key else None, n, path)
    concs = numbers(conc_row, n, path, CONCENTRATION_KEY)
    for c in concs:
        if c is not None and c < 0:
            raise FileFormatError(path, f"negative concentration {c}", line=conc_row[1],
                                  field=CONCENTRATION_KEY)
    conc_avg = value_at(conc_row, avg_idx, path, CONCENTRATION_KEY)
    if conc_avg is None and n == 1:
        conc_avg = concs[0]
    known = {d for d in dils if d is not None}
    if len(known) == 1 and all(d is not None for d in dils):
        dilution = known.pop()
        measured = None if conc_avg is None else conc_avg / dilution
    elif not known:
        dilution = None
        measured = conc_avg
        if conc_row is not None:
            warnings.append("dilution factor not recorded: concentrations are those of the measured "
                            "suspension; multiply by the sample's dilution for the original sample")
    else:
        dilution = None
        measured = None
        warnings.append("videos carry different or partly missing dilution factors; no single "
                        "dilution applies to the Average")

    results_extra: dict[str, Any] = {}
    for key, row in res.items():
        cells = cells_of(row, n)
        results_extra[key] = {
            "videos": [maybe_number(c) for c in cells],
            "average": maybe_number(row[0][avg_idx - 1]) if avg_idx - 1 < len(row[0]) else None,
            "standard_error": (maybe_number(row[0][se_idx - 1])
                               if se_idx is not None and se_idx - 1 < len(row[0]) else None),
        }

    # --- size and diffusion data
    weightings: dict[str, Any] = {}
    diffusion: dict[str, Any] = {}
    distributions: dict[str, Any] = {}
    percentiles: dict[str, Any] = {}
    for block in blocks:
        key = WEIGHTINGS.get(block.weighting.strip().lower(),
                              block.weighting.strip().lower().replace(" ", "_"))
        target = weightings if block.domain == "size" else diffusion
        target[key] = _block_summary(block, names, path)
        dist, pct = _block_tables(block, names, path)
        if dist is not None:
            distributions[f"{block.domain}_{key}"] = dist
        if pct is not None:
            percentiles[f"{block.domain}_{key}"] = pct
    number = weightings.get("number")
    if number is None:
        warnings.append("no number-weighted size data in the file")
        number = {"average": {}, "standard_error": {}, "videos": {}}

    # --- per-video records
    overall_warnings, video_warnings = _vendor_warnings(sections, names)
    nv = number["videos"]
    stat_keys = ("mean_nm", "mode_nm", "sd_nm", "d10_nm", "d50_nm", "d90_nm")
    videos: list[VideoResult] = []
    zero: list[str] = []
    for i, name in enumerate(names):
        stats = {k: (nv.get(k) or [None] * n)[i] for k in stat_keys}
        tracks = (nv.get("valid_tracks") or [None] * n)[i]
        has = not (all(v in (None, 0.0) for v in stats.values()) and tracks in (None, 0.0))
        if tracks == 0.0:
            has = False
        if not has:
            zero.append(name)
            stats = dict.fromkeys(stat_keys)
        c = concs[i]
        d = dils[i]
        videos.append(VideoResult(
            name=name, particles_per_ml=c,
            measured_particles_per_ml=(None if c is None else (c / d if d else c)),
            valid_tracks=tracks, has_results=has, warnings=tuple(video_warnings[i]), **stats,
        ))
    if zero:
        shown = ", ".join(zero[:6]) + (", ..." if len(zero) > 6 else "")
        warnings.append(f"{len(zero)} of {n} videos have no results (zero valid tracks): {shown}")
        warnings.extend(_average_note(number, concs, videos, conc_avg))
    warnings.extend(overall_warnings)

    avg = number["average"]
    extra: dict[str, Any] = {
        "video_names": names,
        "experiment": {k: " ".join(c.strip() for c in v[0] if c.strip()) for k, v in
                       sections.get("experiment", {}).items()},
        "conditions": {k: [maybe_number(c) for c in cells_of(v, n)] for k, v in cond.items()},
        "settings": {k: [maybe_number(c) for c in cells_of(v, n)]
                     for k, v in sections.get("settings", {}).items()},
        "results": results_extra,
        "concentration_warnings": {k: [c.strip() for c in cells_of(v, n)]
                                   for k, v in sections.get("concentration_warnings", {}).items()},
        "information": {k: [c.strip() for c in cells_of(v, n)]
                        for k, v in sections.get("information", {}).items()},
        "analysis_method": {k: (v[0][0].strip() if v[0] else None)
                            for k, v in sections.get("analysis", {}).items()},
        "weightings": weightings,
        "diffusion": diffusion,
        "distributions": distributions,
        "percentiles": percentiles,
        "zero_result_videos": zero,
        "method": "NTA",
        **_size_extras(distributions.get("size_number")),
        "measured_at_timezone": None if measured_at is None else str(measured_at.tzinfo),
    }
    return InstrumentResult(
        file=str(path), format="nanosight-summary", instrument="NanoSight",
        software_version=version, sample=sample, measured_at=measured_at,
        temperature_c=mean_of(temps), viscosity_cp=mean_of(viscs), dilution_factor=dilution,
        particles_per_ml=conc_avg, measured_particles_per_ml=measured,
        mean_nm=avg.get("mean_nm"), mode_nm=avg.get("mode_nm"), sd_nm=avg.get("sd_nm"),
        d10_nm=avg.get("d10_nm"), d50_nm=avg.get("d50_nm"), d90_nm=avg.get("d90_nm"),
        videos=tuple(videos), warnings=tuple(warnings), extra=extra,
    )
