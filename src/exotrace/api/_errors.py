"""Errors become answers: ``application/problem+json`` (RFC 9457) under ``/api``, an HTML
message for pages. One error tree (:mod:`exotrace.errors`) decides the status; bad input
is a 4xx, never a 500; an unexpected error is a 500 that names nothing internal."""

from __future__ import annotations

import logging
from urllib.parse import quote

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, RedirectResponse, Response
from sqlalchemy.exc import DataError
from starlette.exceptions import HTTPException as StarletteHTTPException

from ..errors import ExotraceError, http_status_for
from ._principal import LoginRequired

__all__ = ["install_error_handlers", "is_api", "problem"]

_log = logging.getLogger("exotrace.api")
PROBLEM_TYPE = "application/problem+json"
_TITLES = {400: "Bad request", 401: "Not signed in", 403: "Forbidden", 404: "Not found",
           405: "Method not allowed", 409: "Conflict", 413: "Content too large",
           415: "Unsupported media type", 422: "Invalid input", 423: "Locked",
           500: "Internal error", 503: "Service unavailable"}


def is_api(request: Request) -> bool:
    return request.url.path.startswith("/api/")


def problem(status: int, detail: str, *, title: str | None = None,
            headers: dict | None = None, **extra) -> JSONResponse:
    """An RFC 9457 problem document."""
    body = {"type": "about:blank", "title": title or _TITLES.get(status, "Error"),
            "status": status, "detail": detail, **extra}
    return JSONResponse(body, status_code=status, media_type=PROBLEM_TYPE, headers=headers)


def _one_line(text: str) -> str:
    return " ".join(str(text).split()) or "error"


def _page(request: Request, status: int, detail: str) -> Response:
    from ..web._render import render_error

    return render_error(request, status, detail)


def _answer(request: Request, status: int, detail: str) -> Response:
    return problem(status, detail) if is_api(request) else _page(request, status, detail)


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(LoginRequired)
    async def login_required(request: Request, exc: LoginRequired) -> Response:
        if is_api(request):
            return problem(401, _one_line(exc), headers={"WWW-Authenticate": "Bearer"})
        target = "/login?next=" + quote(request.url.path)
        if request.headers.get("hx-request"):
            return Response(status_code=401, headers={"HX-Redirect": target})
        return RedirectResponse(target, status_code=303)

    @app.exception_handler(ExotraceError)
    async def exotrace_error(request: Request, exc: ExotraceError) -> Response:
        return _answer(request, http_status_for(exc), _one_line(exc))

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError) -> Response:
        parts = []
        for err in exc.errors()[:5]:
            where = ".".join(str(p) for p in err.get("loc", ()) if p != "body")
            parts.append(f"{where}: {err.get('msg', 'invalid')}")
        return _answer(request, 422, _one_line("; ".join(parts) or "invalid request"))

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
        detail = exc.detail if isinstance(exc.detail, str) else _TITLES.get(exc.status_code, "")
        response = _answer(request, exc.status_code, _one_line(detail))
        for key, value in (exc.headers or {}).items():
            response.headers[key] = value
        return response

    @app.exception_handler(DataError)
    async def database_refused_value(request: Request, exc: DataError) -> Response:
        # A value the database cannot store or compare (a NUL character on PostgreSQL, a
        # number out of range): the request's input, not a server fault.
        return _answer(request, 422, "a value in the request cannot be stored or searched "
                                     "(control characters such as NUL are not allowed)")

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> Response:
        _log.exception("unexpected error on %s %s", request.method, request.url.path)
        return _answer(request, 500, "internal error (logged on the server)")
