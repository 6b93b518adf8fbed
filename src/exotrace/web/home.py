"""The home page: what needs the signed-in user's attention, by role."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response

from ..api._context import Context, context
from ._render import render

__all__ = ["router"]

router = APIRouter(include_in_schema=False)


@router.get("/")
def home(request: Request, ctx: Context = Depends(context())) -> Response:
    from ..records import attention_lists

    lists = ctx.read(lambda session, user: attention_lists(session, user))
    return render(request, "home.html", lists=lists)
