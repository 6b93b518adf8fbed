"""Users and roles administration (admins only): add accounts, (de)activate, unlock,
give a temporary password. Accounts are never deleted."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import RedirectResponse, Response

from ..api._context import Context, context
from ..errors import ExotraceError
from ..records import Permission, Role
from ._render import render

__all__ = ["router"]

router = APIRouter(include_in_schema=False)
_ADMIN = Permission.MANAGE_USERS


def _page(request: Request, ctx: Context, *, status: int = 200, **values) -> Response:
    from ..records import list_user_views

    users = ctx.read(lambda session, _: list_user_views(session))
    return render(request, "admin/users.html", status=status, users=users,
                  roles=[r.value for r in Role], **values)


@router.get("/admin/users")
def users_page(request: Request, ctx: Context = Depends(context(_ADMIN))) -> Response:
    return _page(request, ctx)


def _act(request: Request, ctx: Context, action, done: str) -> Response:
    try:
        ctx.write(action)
    except ExotraceError as exc:
        return _page(request, ctx, status=exc.http_status, error=str(exc))
    return _page(request, ctx, message=done)


@router.post("/admin/users")
def add_account(request: Request, ctx: Context = Depends(context(_ADMIN)),
                username: Annotated[str, Form(max_length=64)] = "",
                full_name: Annotated[str, Form(max_length=300)] = "",
                role: Annotated[str, Form(max_length=32)] = "",
                temporary_password: Annotated[str, Form(max_length=1024)] = "") -> Response:
    from ..records import add_user

    return _act(request, ctx, lambda session, user: add_user(
        session, username.strip(), role, password=temporary_password,
        full_name=full_name.strip() or None, acting=user),
        f"Account {username.strip()} added; it must set its own password at the first sign-in.")


@router.post("/admin/users/{username}/active")
def set_active(request: Request, username: str, ctx: Context = Depends(context(_ADMIN)),
               active: Annotated[bool, Form()] = False) -> Response:
    from ..records import set_user_active

    return _act(request, ctx, lambda session, user: set_user_active(
        session, user, username, active),
        f"Account {username} {'activated' if active else 'deactivated'}.")


@router.post("/admin/users/{username}/unlock")
def unlock(request: Request, username: str, ctx: Context = Depends(context(_ADMIN)),
           reason: Annotated[str, Form(max_length=500)] = "") -> Response:
    from ..records import unlock_user

    return _act(request, ctx, lambda session, user: unlock_user(
        session, user, username, reason=reason), f"Account {username} unlocked.")


@router.post("/admin/users/{username}/password")
def reset_password(request: Request, username: str, ctx: Context = Depends(context(_ADMIN)),
                   temporary_password: Annotated[str, Form(max_length=1024)] = "",
                   reason: Annotated[str, Form(max_length=500)] = "") -> Response:
    from ..records import reset_user_password

    return _act(request, ctx, lambda session, user: reset_user_password(
        session, user, username, temporary_password, reason=reason),
        f"Account {username} has a temporary password, to be changed at the next sign-in.")


@router.get("/admin")
def admin_home(ctx: Context = Depends(context(_ADMIN))) -> Response:
    return RedirectResponse("/admin/users", status_code=303)
