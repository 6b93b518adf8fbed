"""Quality pages: ``/quality`` (I-MR chart with Nelson signals of an attribute across
lots), ``/quality/compare`` (comparability of two lot groups, TOST) and
``/quality/stability`` (ICH Q1E shelf life from a stability CSV file).

Charts are drawn server-side by the same matplotlib functions as the CLI's
``--plot``: the I-MR chart at ``/quality/imr.svg`` and ``/quality/imr.png``; the
stability chart, computed from an uploaded file that is not stored, inline as a
``data:`` image of the result page.
"""

from __future__ import annotations

import base64
import math
import tempfile
from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, Depends, File, Form, Request, UploadFile
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from ..api._context import Context, context
from ..errors import ExotraceError, FileFormatError, InvalidInput, http_status_for
from ..records import Permission
from ._render import render

__all__ = ["router"]

router = APIRouter(include_in_schema=False)

#: Largest stability file accepted (a study has tens to hundreds of rows).
STABILITY_MAX_BYTES = 1024 * 1024

def _optional_number(text: str, name: str, kind=float):
    text = (text or "").strip()
    if not text:
        return None
    try:
        value = kind(text)
    except ValueError:
        raise InvalidInput(f"{name}: {text!r} is not a{'n integer' if kind is int else ' number'}"
                           ) from None
    if kind is float and not math.isfinite(value):
        raise InvalidInput(f"{name}: must be a finite number")
    return value


def _trend(ctx: Context, attribute: str, product: str, baseline: str):
    from ..records import spc_lots

    base = _optional_number(baseline, "baseline", int)
    return ctx.read(lambda s, user: spc_lots(s, attribute.strip(),
                                             product=product.strip() or None, baseline=base))


def _choices(ctx: Context) -> dict:
    from ..records import quality_choices

    return ctx.read(lambda s, user: quality_choices(s))


@router.get("/quality")
def imr_page(request: Request, attribute: str = "", product: str = "", baseline: str = "",
             ctx: Context = Depends(context(Permission.VIEW))) -> Response:
    from ..quality import NELSON_RULES

    values = {"attribute": attribute[:64], "product": product[:200], "baseline": baseline[:12]}
    trend, error, status = None, None, 200
    if attribute.strip():
        try:
            trend = _trend(ctx, attribute[:64], product[:200], baseline[:12]).to_dict()
        except ExotraceError as exc:
            error, status = str(exc), http_status_for(exc)
    return render(request, "release/quality_imr.html", status=status, trend=trend, error=error,
                  rules=NELSON_RULES, chart_query=values, **values, **_choices(ctx))


def _chart(ctx: Context, attribute: str, product: str, baseline: str, suffix: str) -> bytes:
    from ..quality import plot_imr

    trend = _trend(ctx, attribute[:64], product[:200], baseline[:12])
    with tempfile.TemporaryDirectory(prefix="exotrace-chart-") as folder:
        path = Path(folder) / f"imr{suffix}"
        plot_imr(trend.values, trend.limits, trend.violations, path,
                 title=f"{trend.attribute} by lot (I-MR)", unit=trend.unit or "")
        return path.read_bytes()


@router.get("/quality/imr.svg")
def imr_svg(attribute: str, product: str = "", baseline: str = "",
            ctx: Context = Depends(context(Permission.VIEW))) -> Response:
    return Response(_chart(ctx, attribute, product, baseline, ".svg"),
                    media_type="image/svg+xml")


@router.get("/quality/imr.png")
def imr_png(attribute: str, product: str = "", baseline: str = "",
            ctx: Context = Depends(context(Permission.VIEW))) -> Response:
    return Response(_chart(ctx, attribute, product, baseline, ".png"), media_type="image/png")


def _lot_list(text: str, name: str) -> list[str]:
    lots = [x for x in text.replace(",", " ").split() if x]
    odd = next((x for x in lots if not x.isprintable()), None)
    if odd is not None:
        raise InvalidInput(f"{name}: lot number {odd!r} contains a control character")
    if not lots:
        raise InvalidInput(f"{name}: give at least one lot number")
    if len(lots) > 200:
        raise InvalidInput(f"{name}: at most 200 lots")
    return lots


@router.get("/quality/compare")
def compare_page(request: Request, group_a: str = "", group_b: str = "", margins: str = "",
                 ctx: Context = Depends(context(Permission.VIEW))) -> Response:
    from ..records import compare_lots, parse_margins

    values = {"group_a": group_a[:4000], "group_b": group_b[:4000], "margins": margins[:2000]}
    report, error, status = None, None, 200
    if group_a.strip() or group_b.strip():
        try:
            a = _lot_list(values["group_a"], "group A")
            b = _lot_list(values["group_b"], "group B")
            parsed = parse_margins([m.strip() for m in values["margins"].splitlines()
                                    if m.strip()])
            report = ctx.read(lambda s, user: compare_lots(s, a, b, parsed))
        except ExotraceError as exc:
            error, status = str(exc), http_status_for(exc)
    return render(request, "release/quality_compare.html", status=status, report=report,
                  error=error, **values, **_choices(ctx))


@router.get("/quality/stability")
def stability_form(request: Request, ctx: Context = Depends(context(Permission.VIEW))
                   ) -> Response:
    return render(request, "release/quality_stability.html", result=None,
                  time_column="time_months", value_column="", batch_column="batch",
                  lower_limit="", upper_limit="", max_bytes=STABILITY_MAX_BYTES)


def _shelf_life(raw: bytes, name: str, time_column: str, value_column: str,
                batch_column: str, lower: float | None, upper: float | None) -> dict:
    """Shelf life and its chart (SVG, base64) from the uploaded CSV text."""
    from ..cli.quality import read_csv_columns
    from ..quality import plot_stability, shelf_life

    if lower is None and upper is None:
        raise InvalidInput("give a lower limit, an upper limit or both")
    with tempfile.TemporaryDirectory(prefix="exotrace-stability-") as folder:
        # A fixed name on disk: the client's name ("..", 300 characters, ...) never
        # becomes a path; messages name the client's file, not the server's folder.
        path = Path(folder) / "stability.csv"
        path.write_bytes(raw)
        try:
            cols, _ = read_csv_columns(path, [time_column, value_column],
                                       [batch_column] if batch_column else [])
        except FileFormatError as exc:
            raise FileFormatError(name, exc.problem, line=exc.line, field=exc.field,
                                  offset=exc.offset) from None
        t, y = cols[time_column], cols[value_column]
        b = cols[batch_column] if batch_column else None
        if any(v < 0 for v in t):
            raise FileFormatError(name, "time must not be negative", field=time_column)
        res = shelf_life(t, y, b, lower_limit=lower, upper_limit=upper)
        chart = Path(folder) / "stability.svg"
        plot_stability(t, y, b, res, chart, time_unit=time_column, value_unit=value_column)
        svg = base64.b64encode(chart.read_bytes()).decode("ascii")
    return {"shelf_life": res.shelf_life, "model": res.model, "p_slopes": res.p_slopes,
            "p_intercepts": res.p_intercepts, "confidence": res.confidence, "sided": res.sided,
            "limiting_batch": res.limiting_batch, "crossing": res.crossing,
            "capped": res.capped, "batches": res.batches, "warnings": res.warnings,
            "rows": len(t), "chart_svg_base64": svg}


@router.post("/quality/stability")
async def stability(request: Request,
                    file: Annotated[UploadFile, File(description="Stability CSV file")],
                    time_column: Annotated[str, Form(min_length=1, max_length=100)],
                    value_column: Annotated[str, Form(min_length=1, max_length=100)],
                    batch_column: Annotated[str, Form(max_length=100)] = "",
                    lower_limit: Annotated[str, Form(max_length=40)] = "",
                    upper_limit: Annotated[str, Form(max_length=40)] = "",
                    ctx: Context = Depends(context(Permission.VIEW))) -> Response:
    values = {"time_column": time_column, "value_column": value_column,
              "batch_column": batch_column, "lower_limit": lower_limit,
              "upper_limit": upper_limit}
    result, error, status = None, None, 200
    try:
        raw = await file.read(STABILITY_MAX_BYTES + 1)
        if len(raw) > STABILITY_MAX_BYTES:
            raise InvalidInput(f"{file.filename}: larger than {STABILITY_MAX_BYTES} bytes; "
                               "a stability file is a small CSV table")
        lower = _optional_number(lower_limit, "lower limit")
        upper = _optional_number(upper_limit, "upper limit")
        result = await run_in_threadpool(_shelf_life, raw, file.filename or "stability.csv",
                                         time_column.strip(), value_column.strip(),
                                         batch_column.strip(), lower, upper)
    except ExotraceError as exc:
        error, status = str(exc), http_status_for(exc)
    return render(request, "release/quality_stability.html", status=status, result=result,
                  error=error, file_name=file.filename, max_bytes=STABILITY_MAX_BYTES,
                  **values)
