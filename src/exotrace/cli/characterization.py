"""``exotrace purity`` and ``exotrace misev check``: EV characterization commands."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

from ..characterization import (
    ChecklistReport,
    ItemStatus,
    PurityResult,
    check_study,
    example_study_path,
    load_study,
    purity_ratio,
    report_to_dict,
    report_to_html,
    report_to_json,
    report_to_markdown,
)
from ..errors import (
    ConfigurationError,
    ExotraceError,
    FileFormatError,
    InvalidInput,
    RuleViolation,
)
from ._common import JsonOption, console, emit, print_table

__all__ = ["register"]


class ReportFormat(StrEnum):
    """Output formats of ``misev check``."""

    json = "json"
    md = "md"
    html = "html"


_SUFFIX_FORMAT = {".json": ReportFormat.json, ".md": ReportFormat.md,
                  ".markdown": ReportFormat.md, ".html": ReportFormat.html,
                  ".htm": ReportFormat.html}


def _purity_human(result: PurityResult) -> None:
    console.print(f"[bold]{result.particles_per_ug:.3g}[/bold] particles/ug protein: "
                  f"[bold]{result.band.value}[/bold]"
                  + ("" if result.band_detail.startswith(result.band.value)
                     else f" - {result.band_detail}"))
    print_table([
        {"field": "particles_per_ml", "value": f"{result.particles_per_ml:.4g}"},
        {"field": "protein_ug_per_ml", "value": f"{result.protein_ug_per_ml:.4g}"},
        {"field": "particle_method", "value": result.particle_method},
        {"field": "protein_method", "value": result.protein_method},
    ])
    for note in result.notes:
        console.print(f"note: {note}", soft_wrap=True)


def purity(
    particles_per_ml: Annotated[float, typer.Option(
        "--particles-per-ml", help="Particle concentration of the preparation, particles/mL.")],
    protein_ug_per_ml: Annotated[float, typer.Option(
        "--protein-ug-per-ml", help="Protein concentration of the same preparation, ug/mL.")],
    particle_method: Annotated[str | None, typer.Option(
        "--particle-method", help="How particles were counted (e.g. NTA).")] = None,
    protein_method: Annotated[str | None, typer.Option(
        "--protein-method", help="How protein was measured (e.g. micro-BCA).")] = None,
    as_json: JsonOption = False,
) -> None:
    """Particle:protein ratio and its Webber & Clayton purity band."""
    result = purity_ratio(particles_per_ml, protein_ug_per_ml,
                          particle_method=particle_method, protein_method=protein_method)
    emit(result, as_json=as_json, human=_purity_human)


def _read_measurements(paths: list[Path]) -> list[object]:
    if not paths:
        return []
    try:
        from ..instruments import read_file
    except ImportError as exc:  # the readers live in another part of the package
        raise ConfigurationError(
            f"instrument readers are not available (exotrace.instruments.read_file): {exc}"
        ) from None
    results: list[object] = []
    for path in paths:
        try:
            value = read_file(path)
        except ExotraceError as exc:
            if str(path) in str(exc):
                raise
            raise FileFormatError(path, f"cannot read measurement file: {exc}") from None
        except Exception as exc:  # noqa: BLE001 - one line naming the file, never a traceback
            raise FileFormatError(
                path, f"cannot read measurement file ({type(exc).__name__}: {exc})"
            ) from None
        if isinstance(value, (list, tuple)):
            results.extend(value)
        else:
            results.append(value)
    return results


def _render(report: ChecklistReport, fmt: ReportFormat) -> str:
    if fmt is ReportFormat.json:
        return report_to_json(report) + "\n"
    if fmt is ReportFormat.md:
        return report_to_markdown(report)
    return report_to_html(report)


def _checklist_human(report: ChecklistReport) -> None:
    rows = []
    for it in report.items:
        if it.status is ItemStatus.MET:
            detail = "; ".join(it.evidence)
        elif it.status is ItemStatus.MISSING:
            detail = "needs " + "; ".join(it.missing)
        else:
            detail = it.reason
        rows.append({"item": it.id, "status": it.status.value,
                     "evidence / missing": detail if len(detail) < 110 else detail[:107] + "..."})
    print_table(rows, title=f"{report.guideline} checklist: "
                            f"{report.study_title or report.study_file}")
    for r in report.purity:
        console.print(f"particle:protein {r.particles_per_ug:.3g} particles/ug: {r.band.value}")
    console.print(f"[bold]completeness {report.score_percent:.1f} %[/bold] "
                  f"({report.n_met} of {report.n_applicable} applicable items met, "
                  f"{report.n_not_applicable} not applicable)")


def misev_check(
    study: Annotated[Path, typer.Argument(help="Study description YAML file.")],
    measurement_files: Annotated[list[Path] | None, typer.Argument(
        help="Instrument files (NanoSight, ZetaView, FCS, BCA plate), read by content.",
        show_default=False)] = None,
    report_format: Annotated[ReportFormat | None, typer.Option(
        "--format", help="Report format; printed, or written to -o.")] = None,
    output: Annotated[Path | None, typer.Option(
        "-o", "--output", help="Write the report here (format from --format or the suffix).")
    ] = None,
    min_score: Annotated[float | None, typer.Option(
        "--min-score", help="Exit with an error when completeness is below this percent.")
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Judge a study against the MISEV2023 checklist (met / missing / not applicable)."""
    if min_score is not None and not 0 <= min_score <= 100:  # NaN fails too
        raise InvalidInput(f"--min-score must be a percent from 0 to 100, got {min_score:g}")
    doc = load_study(study)
    measurements = _read_measurements(list(measurement_files or []))
    report = check_study(doc, measurements)
    if output is not None:
        fmt = report_format or _SUFFIX_FORMAT.get(output.suffix.lower(), ReportFormat.md)
        try:
            output.write_text(_render(report, fmt), encoding="utf-8")
        except OSError as exc:
            raise FileFormatError(output, f"cannot write the report: {exc.strerror or exc}") \
                from None
        summary = {"output": str(output), "format": fmt.value,
                   "score_percent": report.score_percent, "n_met": report.n_met,
                   "n_applicable": report.n_applicable, "missing": list(report.missing_ids)}
        if as_json:
            emit(summary, as_json=True)
        else:
            console.print(f"wrote {output} ({fmt.value}); completeness "
                          f"{report.score_percent:.1f} % ({report.n_met} of "
                          f"{report.n_applicable} applicable items met)")
    elif as_json or report_format is ReportFormat.json:
        emit(report_to_dict(report), as_json=True)
    elif report_format is not None:
        typer.echo(_render(report, report_format), nl=False)
    else:
        _checklist_human(report)
    if min_score is not None and report.score_percent < min_score:
        raise RuleViolation(f"{study}: completeness {report.score_percent:.1f} % is below "
                            f"--min-score {min_score:g} % (missing: "
                            f"{', '.join(report.missing_ids)})")


def misev_example(
    output: Annotated[Path | None, typer.Option(
        "-o", "--output", help="Write the example here instead of printing it.")] = None,
    as_json: JsonOption = False,
) -> None:
    """Print (or write) a complete example study description to start from."""
    text = example_study_path().read_text(encoding="utf-8")
    if output is None:
        if as_json:
            emit({"example": str(example_study_path()), "yaml": text}, as_json=True)
        else:
            typer.echo(text, nl=False)
        return
    if output.exists():
        raise FileFormatError(output, "already exists; choose another name")
    try:
        output.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise FileFormatError(output, f"cannot write: {exc.strerror or exc}") from None
    emit({"output": str(output)}, as_json=as_json,
         human=lambda r: console.print(f"wrote {r['output']}"))


def register(app: typer.Typer) -> None:
    """Add ``purity`` and the ``misev`` group to the ``exotrace`` app."""
    app.command("purity")(purity)
    misev = typer.Typer(help="MISEV2023 reporting checklist.", no_args_is_help=True)
    misev.command("check")(misev_check)
    misev.command("example")(misev_example)
    app.add_typer(misev, name="misev")
