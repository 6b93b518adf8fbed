"""The audit trail: filtered, paged, newest first; and the "Verify chain" action."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import Response

from ..api._context import Context, context
from ..errors import InvalidInput
from ..records import Permission
from ._render import render

__all__ = ["parse_time", "router"]

router = APIRouter(include_in_schema=False)


def parse_time(value: str | None, name: str) -> datetime | None:
    """An ISO date or date-time from a filter field (UTC when no offset is given)."""
    from datetime import UTC

    if not value:
        return None
    try:
        moment = datetime.fromisoformat(value.strip())
        # In UTC now: 9999-12-31T23:59-14:00 is past the last datetime, found here rather
        # than as an OverflowError inside the query.
        return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).astimezone(UTC)
    except (ValueError, OverflowError):
        raise InvalidInput(f"{name} {value!r}: give a date (YYYY-MM-DD) or a date and time "
                           "(YYYY-MM-DDTHH:MM) between the years 1 and 9999") from None


@router.get("/audit")
def audit_trail(request: Request, ctx: Context = Depends(context(Permission.VIEW)),
                table: Annotated[str, Query(max_length=64)] = "",
                record: Annotated[str, Query(max_length=64)] = "",
                user: Annotated[str, Query(max_length=64)] = "",
                since: Annotated[str, Query(max_length=40)] = "",
                until: Annotated[str, Query(max_length=40)] = "",
                page: Annotated[int, Query(ge=1, le=10_000_000)] = 1) -> Response:
    from ..records import audit_page

    filters = {"table": table, "record": record, "user": user, "since": since, "until": until}
    start, end = parse_time(since, "since"), parse_time(until, "until")
    result = ctx.read(lambda session, _: audit_page(
        session, table=table or None, record=record or None, actor=user or None,
        since=start, until=end, page=page, per_page=50))
    return render(request, "audit/trail.html", result=result, filters=filters)


@router.post("/audit/verify")
def verify_chain(request: Request, ctx: Context = Depends(context(Permission.VIEW))) -> Response:
    """Check the chain, the records against their images, the signatures and the database
    protections (read-only; POST because it can take a while and must not be prefetched)."""
    from ..records import verify_records

    report = ctx.read(lambda session, _: verify_records(session).view(max_findings=100))
    return render(request, "audit/_verify.html", report=report)
