"""Rendering pages: one Jinja2 environment (autoescaped), the layout's navigation by
permission, and error pages."""

from __future__ import annotations

import functools
from importlib import resources

from fastapi import Request
from fastapi.responses import HTMLResponse
from jinja2 import Environment, FileSystemLoader, select_autoescape

from ..records import Permission

__all__ = ["NAVIGATION", "environment", "render", "render_error"]

#: (label, path, permission needed to see the entry; None: every signed-in user).
NAVIGATION: list[tuple[str, str, Permission | None]] = [
    ("Home", "/", None),
    ("Lots", "/lots", Permission.VIEW),
    ("Upload", "/upload", Permission.ENTER_RESULTS),
    ("Quality", "/quality", Permission.VIEW),
    ("Clinic", "/clinic", Permission.VIEW),
    ("Audit", "/audit", Permission.VIEW),
    ("Users", "/admin/users", Permission.MANAGE_USERS),
]


@functools.cache
def environment() -> Environment:
    folder = resources.files("exotrace.web").joinpath("templates")
    env = Environment(loader=FileSystemLoader(str(folder)),
                      autoescape=select_autoescape(default=True, default_for_string=True),
                      trim_blocks=True, lstrip_blocks=True)
    return env


def _navigation(principal) -> list[dict]:
    if principal is None:
        return []
    return [{"label": label, "path": path} for label, path, permission in NAVIGATION
            if permission is None or principal.can(permission)]


def render(request: Request, template: str, *, status: int = 200, headers: dict | None = None,
           **context) -> HTMLResponse:
    """Render ``template`` for the signed-in user of ``request`` (if any).

    Every page gets ``principal``, ``csrf_token`` (put it in each form as
    ``<input type="hidden" name="csrf_token" value="{{ csrf_token }}">``; htmx
    requests send it as a header from the layout), ``navigation`` and ``path``.
    """
    principal = getattr(request.state, "principal", None)
    html = environment().get_template(template).render(
        request=request, principal=principal,
        csrf_token=principal.csrf_token if principal is not None else None,
        navigation=_navigation(principal), path=request.url.path, **context)
    return HTMLResponse(html, status_code=status, headers=headers)


def render_error(request: Request, status: int, detail: str) -> HTMLResponse:
    """The message of a refused or failed request: a fragment for htmx, a page otherwise."""
    template = "_error_fragment.html" if request.headers.get("hx-request") else "error.html"
    return render(request, template, status=status, status_code=status, detail=detail)
