"""Lot pages: the lot list (``/lots``) and one lot (``/lots/{number}``) with its genealogy
graph, measurements and size-distribution chart, specification evaluation, signatures,
history and certificate of analysis.

Read only: the release workflow's actions live on their own pages.
"""

from __future__ import annotations

import os
import tempfile
from datetime import UTC
from pathlib import Path

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response

from ..api._context import Context, context
from ..api.v1_lots import lot_list_query
from ..records import LotStatus, Permission
from ._genealogy_svg import genealogy_svg
from ._render import render

__all__ = ["router"]

router = APIRouter(include_in_schema=False)

_NO_MANUFACTURER = "manufacturer not configured (set EXOTRACE_MANUFACTURER)"
_SORT_LABELS = {"number": "Number", "created": "Created", "expiry": "Expiry", "status": "Status"}


def manufacturer() -> str:
    """The manufacturer printed on certificates (``EXOTRACE_MANUFACTURER``, as the CLI)."""
    return os.environ.get("EXOTRACE_MANUFACTURER") or _NO_MANUFACTURER


@router.get("/lots")
def lots_page(request: Request, query=Depends(lot_list_query),
              ctx: Context = Depends(context(Permission.VIEW))) -> Response:
    from ..records import lot_list, lot_product_types

    result, products = ctx.read(lambda s, _: (lot_list(s, query), lot_product_types(s)))
    base = {k: v for k, v in (("status", query.status), ("product", query.product),
                              ("number", query.number)) if v}
    return render(request, "lots/list.html", result=result, products=products,
                  statuses=[s.value for s in LotStatus], sort_labels=_SORT_LABELS, base=base)


def utc(moment) -> str:
    """``YYYY-MM-DD HH:MM:SS UTC`` (naive values are UTC already, as stored)."""
    if moment is None:
        return ""
    if getattr(moment, "tzinfo", None) is not None:
        moment = moment.astimezone(UTC)
    return moment.strftime("%Y-%m-%d %H:%M:%S") + " UTC"


# Columns a reader of the history does not need on a created row (ids, times, hashes).
_BOOKKEEPING = ("_id", "_at", "sha256", "_hash", "_json")


def _short(value) -> str:
    text = str(value)
    return text if len(text) <= 60 else text[:57] + "..."


def changes(entry: dict) -> str:
    """What an audit entry changed, in one line: ``field: old -> new`` per changed column."""
    before, after = entry.get("before") or {}, entry.get("after") or {}
    if before and after:
        keys = [k for k in after if before.get(k) != after.get(k)]
        return "; ".join(f"{k}: {_short(before.get(k))} -> {_short(after.get(k))}"
                         for k in keys[:8])
    shown = {k: v for k, v in (after or before).items()
             if v is not None and k != "id" and not k.endswith(_BOOKKEEPING)}
    return "; ".join(f"{k}: {_short(v)}" for k, v in list(shown.items())[:6])


@router.get("/lots/{number}")
def lot_page(request: Request, number: str,
             ctx: Context = Depends(context(Permission.VIEW))) -> Response:
    from ..records import lot_page

    data = ctx.read(lambda s, _: lot_page(s, number))
    return render(request, "lots/detail.html", graph=genealogy_svg(data["genealogy"]),
                  coa_offered=data["lot"]["status"] == LotStatus.RELEASED.value, utc=utc,
                  changes=changes, **data)


def _size_chart_svg(items) -> bytes:
    """SVG of the lot's size distributions: the method overlay of
    :func:`exotrace.quality.plot_method_comparison` (also for a single curve)."""
    from dataclasses import replace

    from ..quality import compare_methods, plot_method_comparison

    items = list(items)
    if len(items) > 1:
        comparison = compare_methods(items)
    else:  # the comparison needs two: compare the curve with itself, keep one row
        comparison = compare_methods([items[0], items[0]])
        comparison = replace(comparison, rows=comparison.rows[:1])
    with tempfile.TemporaryDirectory(prefix="exotrace-chart-") as folder:
        path = Path(folder) / "sizes.svg"
        plot_method_comparison(items, comparison, path, title="size distributions")
        return path.read_bytes()


@router.get("/lots/{number}/sizes.svg")
def lot_size_chart(number: str, ctx: Context = Depends(context(Permission.VIEW))) -> Response:
    from ..errors import NotFound
    from ..records import lot_size_distributions

    items = ctx.read(lambda s, _: lot_size_distributions(s, number))
    if not items:
        raise NotFound(f"lot {number} has no size distribution")
    return Response(_size_chart_svg(items), media_type="image/svg+xml")


@router.get("/lots/{number}/coa.pdf")
def lot_coa(number: str, ctx: Context = Depends(context(Permission.VIEW))) -> Response:
    from ..quality import render_coa_pdf
    from ..records import lot_certificate

    data = ctx.read(lambda s, _: lot_certificate(s, number, manufacturer=manufacturer()))
    pdf = render_coa_pdf(data)
    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in number)
    return Response(pdf, media_type="application/pdf",
                    headers={"Content-Disposition": f'inline; filename="CoA-{safe}.pdf"'})
