"""``/api/v1/lots`` and ``/api/v1/trace``: lots (list, one lot) and traceability.

The answers are the JSON the CLI prints with ``--json`` for the same question
(``exotrace lot show``, ``exotrace trace back|forward``): the same view
functions build them.
"""

from __future__ import annotations

import json
import math
from datetime import date, datetime
from enum import Enum
from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query
from fastapi.responses import Response
from pydantic import BaseModel

from ..records import Permission
from ._context import Context, context

__all__ = ["json_response", "lot_list_query", "router"]

router = APIRouter(prefix="/api/v1", tags=["lots"])


def _plain(value):
    """JSON default for what the views hold besides JSON types (dates, enums)."""
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    if isinstance(value, Enum):
        return value.value
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def _finite(value):
    # Strict JSON (as the CLI's output): a non-finite float is null.
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_finite(v) for v in value]
    return value


def json_response(data) -> Response:
    """``data`` as JSON, serialised directly (a 10,000-vial trace would spend most of its
    time in FastAPI's generic encoder)."""
    try:
        body = json.dumps(data, default=_plain, allow_nan=False)
    except ValueError:
        body = json.dumps(_finite(data), default=_plain, allow_nan=False)
    return Response(body, media_type="application/json")


class LotRow(BaseModel):
    number: str
    status: str
    intended_use: str
    manufactured_on: date
    expires_on: date | None
    created_at: datetime | None
    volume_ml: float | None
    isolation_run: str | None
    parents: list[str]
    specification: str | None


class LotPage(BaseModel):
    items: list[LotRow]
    total: int
    page: int
    per_page: int
    pages: int
    status: str | None
    product: str | None
    number: str | None
    sort: str
    order: str


def lot_list_query(status: Annotated[str | None, Query(max_length=32, description=(
                    "in_process, awaiting_release, released, rejected, quarantined"))] = None,
                product: Annotated[str | None, Query(max_length=200, description=(
                    "Product type (or name) of the lot's specification in force"))] = None,
                number: Annotated[str | None, Query(max_length=64, description=(
                    "Part of the lot number"))] = None,
                sort: Annotated[str, Query(max_length=16, description=(
                    "number, created, expiry or status"))] = "number",
                order: Annotated[str, Query(pattern="^(asc|desc)$")] = "asc",
                page: Annotated[int, Query(ge=1, le=1_000_000)] = 1,
                per_page: Annotated[int, Query(ge=1, le=200)] = 50):
    """The lot list's query parameters (the API and the page share them)."""
    from ..records import LotListQuery

    return LotListQuery(status=status or None, product=product or None, number=number or None,
                        sort=sort, descending=order == "desc", page=page, per_page=per_page)


@router.get("/lots", response_model=LotPage)
def list_lots(query=Depends(lot_list_query),
              ctx: Context = Depends(context(Permission.VIEW))) -> LotPage:
    """Lots, filtered by status and product, sorted, one page at a time."""
    from ..records import lot_list

    return LotPage(**ctx.read(lambda s, _: lot_list(s, query)))


@router.get("/lots/{number}")
def get_lot(number: Annotated[str, Path(max_length=64)],
            ctx: Context = Depends(context(Permission.VIEW))) -> Response:
    """One lot with its genealogy, measurements and vial count (``exotrace lot show --json``)."""
    from ..records import lot_view

    return json_response(ctx.read(lambda s, _: lot_view(s, number)))


@router.get("/trace/back")
def trace_back_route(vial: Annotated[str, Query(min_length=1, max_length=64,
                                                description="Vial identifier")],
                     ctx: Context = Depends(context(Permission.VIEW))) -> Response:
    """From a vial back to its lots, isolation, collection, cell bank, donor and consent
    (``exotrace trace back --vial ID --json``)."""
    from ..records import trace_back

    return json_response(ctx.read(lambda s, _: trace_back(s, vial)))


@router.get("/trace/forward")
def trace_forward_route(
        donor: Annotated[str | None, Query(max_length=64, description="Donor code")] = None,
        cell_bank: Annotated[str | None, Query(max_length=64)] = None,
        lot: Annotated[str | None, Query(max_length=64)] = None,
        reagent_batch: Annotated[str | None, Query(max_length=64)] = None,
        ctx: Context = Depends(context(Permission.VIEW))) -> Response:
    """Every lot (through pools and splits), vial and subject reached from one source; give
    exactly one of ``donor``, ``cell_bank``, ``lot``, ``reagent_batch``
    (``exotrace trace forward --json``)."""
    from ..records import trace_forward

    return json_response(ctx.read(lambda s, _: trace_forward(
        s, donor_code=donor, cell_bank_code=cell_bank, lot_number=lot,
        reagent_code=reagent_batch)))
