"""``summary.csv``: one row per video and one per sample group.

Group rows aggregate the videos of a group that were analysed: the mean of
their values, the sample standard deviation (n - 1) of D50 and of the
concentration, and the concentration's coefficient of variation.
"""

from __future__ import annotations

import csv
import io
import math
import statistics
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ._files import atomic_write_text

__all__ = ["SUMMARY_COLUMNS", "SUMMARY_NAME", "summary_rows", "write_summary"]

SUMMARY_NAME = "summary.csv"
SUMMARY_COLUMNS = (
    "row_type", "group", "sample", "video", "lot", "state", "error", "n_videos", "n_failed",
    "n_tracks", "mean_nm", "mode_nm", "d10_nm", "d50_nm", "d50_nm_sd", "d90_nm",
    "particles_per_ml", "particles_per_ml_sd", "particles_per_ml_cv_percent",
    "particles_per_frame", "seconds", "video_sha256", "settings_sha256", "result_file",
)
_STATS = ("mean_nm", "mode_nm", "d10_nm", "d50_nm", "d90_nm", "particles_per_ml",
          "particles_per_frame")
_TEXT = ("group", "sample", "video", "lot", "error")


def _finite(v: Any) -> float | None:
    return float(v) if isinstance(v, (int, float)) and math.isfinite(v) else None


def _video_row(r: dict[str, Any]) -> dict[str, Any]:
    res = r.get("result") or {}
    row = {"row_type": "video", "group": r["group"], "sample": r["sample"], "video": r["video"],
           "lot": r.get("lot"), "state": r["state"], "error": r.get("error"),
           "n_tracks": res.get("n_tracks"), "seconds": _finite(r.get("seconds")),
           "video_sha256": r.get("video_sha256"), "settings_sha256": r.get("settings_sha256"),
           "result_file": r.get("result_file")}
    row.update({k: _finite(res.get(k)) for k in _STATS})
    return row


def _mean(values: list[float]) -> float | None:
    return statistics.fmean(values) if values else None


def _sd(values: list[float]) -> float | None:
    return statistics.stdev(values) if len(values) >= 2 else None


def _group_row(group: str, videos: list[dict[str, Any]]) -> dict[str, Any]:
    ok = [v for v in videos if v["state"] == "ok"]
    row: dict[str, Any] = {"row_type": "group", "group": group, "state":
                           "ok" if ok else "failed", "n_videos": len(ok),
                           "n_failed": len(videos) - len(ok),
                           "n_tracks": sum(int(v["n_tracks"] or 0) for v in ok),
                           "seconds": sum(v["seconds"] or 0.0 for v in videos)}
    for k in _STATS:
        row[k] = _mean([v[k] for v in ok if v[k] is not None])
    d50 = [v["d50_nm"] for v in ok if v["d50_nm"] is not None]
    conc = [v["particles_per_ml"] for v in ok if v["particles_per_ml"] is not None]
    row["d50_nm_sd"] = _sd(d50)
    row["particles_per_ml_sd"] = _sd(conc)
    mean_conc = row["particles_per_ml"]
    row["particles_per_ml_cv_percent"] = (100.0 * row["particles_per_ml_sd"] / mean_conc
                                          if row["particles_per_ml_sd"] is not None and mean_conc
                                          else None)
    return row


def summary_rows(records: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Video rows (in record order), then one row per non-empty group (first-seen order)."""
    videos = [_video_row(r) for r in records]
    groups: dict[str, list[dict[str, Any]]] = {}
    for v in videos:
        if v["group"]:
            groups.setdefault(v["group"], []).append(v)
    return videos + [_group_row(g, vs) for g, vs in groups.items()]


def _cell(column: str, value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return format(value, ".7g")
    text = str(value)
    # a spreadsheet would run a sample name such as "=HYPERLINK(...)" as a formula
    if column in _TEXT and text[:1] in ("=", "+", "-", "@"):
        return "'" + text
    return text


def write_summary(path: str | Path, records: Sequence[dict[str, Any]]) -> Path:
    """Write ``summary.csv`` (columns :data:`SUMMARY_COLUMNS`) atomically; returns the path."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(SUMMARY_COLUMNS)
    for row in summary_rows(records):
        writer.writerow([_cell(c, row.get(c)) for c in SUMMARY_COLUMNS])
    return atomic_write_text(path, buf.getvalue())
