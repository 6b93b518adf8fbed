"""Render a :class:`ChecklistReport` as JSON, Markdown or a self-contained HTML page."""

from __future__ import annotations

import json
import math
from dataclasses import fields, is_dataclass
from enum import Enum
from functools import lru_cache
from typing import Any

import jinja2

from ._checklist import ChecklistReport, ItemStatus

__all__ = ["report_to_dict", "report_to_html", "report_to_json", "report_to_markdown"]

_SYMBOL = {ItemStatus.MET: "met", ItemStatus.MISSING: "MISSING",
           ItemStatus.NOT_APPLICABLE: "n/a"}


def _plain(value: Any) -> Any:
    if is_dataclass(value) and not isinstance(value, type):
        return {f.name: _plain(getattr(value, f.name)) for f in fields(value)}
    if isinstance(value, Enum):
        return _plain(value.value)
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if value is None or isinstance(value, (str, int, bool)):
        return value
    return str(value)


def report_to_dict(report: ChecklistReport) -> dict[str, Any]:
    """The report as plain JSON types (enums as their values, nan as ``None``)."""
    out = _plain(report)
    out["missing_ids"] = list(report.missing_ids)
    return out


def report_to_json(report: ChecklistReport, *, indent: int = 2) -> str:
    """The report as a JSON document (strict JSON, no NaN)."""
    return json.dumps(report_to_dict(report), indent=indent, allow_nan=False,
                      ensure_ascii=False)


def _md_cell(text: str) -> str:
    return " ".join(str(text).split()).replace("|", "\\|")


def report_to_markdown(report: ChecklistReport) -> str:
    """The report as a Markdown document: summary, one table row per item, purity, notes."""
    lines = [
        f"# {report.guideline} checklist: {_md_cell(report.study_title or report.study_file)}",
        "",
        f"- Study file: `{report.study_file}`",
        f"- Completeness: **{report.score_percent:.1f} %** ({report.n_met} of "
        f"{report.n_applicable} applicable items met; {report.n_not_applicable} not applicable)",
    ]
    if report.missing_ids:
        lines.append(f"- Missing: {', '.join(report.missing_ids)}")
    lines += ["", "| Item | Section | Requirement | Status | Evidence / missing |",
              "|---|---|---|---|---|"]
    for it in report.items:
        if it.status is ItemStatus.MET:
            detail = "; ".join(it.evidence)
        elif it.status is ItemStatus.MISSING:
            detail = "needs: " + "; ".join(it.missing)
            if it.evidence:
                detail += " (have: " + "; ".join(it.evidence) + ")"
        else:
            detail = it.reason
        star = " *" if it.method_specific else ""
        lines.append(f"| `{it.id}`{star} | {it.section} | {_md_cell(it.title)} | "
                     f"{_SYMBOL[it.status]} | {_md_cell(detail)} |")
    lines += ["", "\\* method-specific item (EV-TRACK)", ""]
    if report.purity or report.reported_particles_per_ug is not None:
        lines += ["## Particle:protein ratio (Webber & Clayton 2013)", ""]
        for r in report.purity:
            lines.append(f"- {r.particles_per_ug:.3g} particles/ug protein: **{r.band.value}** "
                         f"({_md_cell(r.band_detail)}); particles {r.particles_per_ml:.3g}/mL "
                         f"by {_md_cell(r.particle_method)}, protein "
                         f"{r.protein_ug_per_ml:.4g} ug/mL by {_md_cell(r.protein_method)}")
        if report.reported_particles_per_ug is not None:
            lines.append(f"- Reported in the study file: {report.reported_particles_per_ug:.3g} "
                         f"particles/ug protein (**{report.reported_purity_band}**)")
        if report.purity:
            lines.append(f"- {report.purity[0].notes[0]}")
        lines.append("")
    lines += ["## Markers", "", "| Category | Detected | Tested, not detected |", "|---|---|---|"]
    for c in report.markers.categories:
        lines.append(f"| {c.category}: {c.title} | {', '.join(c.detected) or '-'} | "
                     f"{', '.join(c.not_detected) or '-'} |")
    lines.append("")
    if report.measurements:
        lines += ["## Measurements", ""]
        lines += [f"- {_md_cell(m.summary)}" for m in report.measurements]
        lines.append("")
    if report.notes:
        lines += ["## Notes", ""]
        lines += [f"- {_md_cell(n)}" for n in report.notes]
        lines.append("")
    return "\n".join(lines)


@lru_cache(maxsize=1)
def _template() -> jinja2.Template:
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("exotrace.characterization", "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    return env.get_template("misev_report.html.j2")


def report_to_html(report: ChecklistReport) -> str:
    """The report as one self-contained HTML page (inline CSS, no scripts, no external files)."""
    return _template().render(r=report, ItemStatus=ItemStatus, label=_SYMBOL)
