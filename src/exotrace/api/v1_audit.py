"""``/api/v1/audit`` (the trail, filtered and paged), ``/api/v1/audit/verify`` and
``/api/v1/users`` (admins); and the interactive API documentation at ``/api/docs``."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query
from fastapi.responses import HTMLResponse
from pydantic import BaseModel

from ..records import MAX_AUDIT_PAGE, Permission
from ._context import Context, context

__all__ = ["router"]

router = APIRouter(tags=["audit"])


class AuditPage(BaseModel):
    entries: list[dict[str, Any]]
    total: int
    page: int
    per_page: int
    pages: int


class AuditVerification(BaseModel):
    ok: bool
    entries_checked: int
    records_checked: int
    head_seq: int | None
    head_hash: str | None
    findings: list[dict[str, Any]]


@router.get("/api/v1/audit", response_model=AuditPage)
def audit_trail(ctx: Context = Depends(context(Permission.VIEW)),
                table: Annotated[str | None, Query(max_length=64)] = None,
                record: Annotated[str | None, Query(max_length=64)] = None,
                user: Annotated[str | None, Query(max_length=64)] = None,
                since: Annotated[str | None, Query(max_length=40)] = None,
                until: Annotated[str | None, Query(max_length=40)] = None,
                page: Annotated[int, Query(ge=1, le=10_000_000)] = 1,
                per_page: Annotated[int, Query(ge=1, le=MAX_AUDIT_PAGE)] = 50) -> dict:
    """Audit entries, newest first, filtered by table, record, user and time (ISO, UTC)."""
    from ..records import audit_page
    from ..web.audit import parse_time

    start, end = parse_time(since, "since"), parse_time(until, "until")
    return ctx.read(lambda session, _: audit_page(
        session, table=table, record=record, actor=user, since=start, until=end, page=page,
        per_page=per_page))


@router.post("/api/v1/audit/verify", response_model=AuditVerification)
def verify(ctx: Context = Depends(context(Permission.VIEW))) -> dict:
    """The integrity report of ``exotrace audit verify`` (chain, records, signatures,
    database protections); ``ok`` is false when anything does not match."""
    from ..records import verify_records

    return ctx.read(lambda session, _: verify_records(session).view())


@router.get("/api/v1/users", tags=["account"])
def users(ctx: Context = Depends(context(Permission.MANAGE_USERS))) -> list[dict[str, Any]]:
    """Every account (admins only)."""
    from ..records import list_user_views

    return ctx.read(lambda session, _: list_user_views(session))


_DOCS = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>exotrace API</title>
<link rel="stylesheet" href="/static/swagger/swagger-ui.css"></head>
<body><div id="swagger-ui"></div>
<script src="/static/swagger/swagger-ui-bundle.js"></script>
<script src="/static/swagger/init.js"></script></body></html>
"""


@router.get("/api/docs", include_in_schema=False)
def docs() -> HTMLResponse:
    """Swagger UI, shipped in the package (works offline)."""
    return HTMLResponse(_DOCS)
