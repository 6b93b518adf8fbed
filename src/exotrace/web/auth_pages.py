"""Sign-in, sign-out and own-password pages.

A failed sign-in says "Invalid username or password" whatever the reason
(unknown user, wrong password, locked or inactive account), so the page does
not tell who has an account. Wrong passwords count towards the lock-out
(:data:`exotrace.records.MAX_FAILED_SIGN_INS` within
:data:`exotrace.records.FAILURE_WINDOW`), recorded on the account row (audited).
The sign-in and password forms are protected against cross-site posting by a
double-submit token (cookie + form field), since no session exists yet.
"""

from __future__ import annotations

import functools
import hmac
import secrets
from typing import Annotated

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from ..api._principal import SESSION_COOKIE, Principal, require
from ..errors import AuthError, ExotraceError
from ..records import MIN_PASSWORD_LENGTH
from ._render import render

__all__ = ["router"]

router = APIRouter(include_in_schema=False)

LOGIN_CSRF_COOKIE = "exotrace_login_csrf"
FAILED_SIGN_IN = "Invalid username or password"


def _secure(request: Request) -> bool:
    forced = request.app.state.settings.cookie_secure
    return forced if forced is not None else request.url.scheme == "https"


def _safe_next(value: str | None) -> str:
    # Only a path on this site: never "//host" or "https://..." (open redirect).
    if value and value.startswith("/") and not value.startswith("//") and "\\" not in value:
        return value
    return "/"


def _form_page(request: Request, template: str, *, status: int = 200, **context) -> Response:
    token = secrets.token_urlsafe(24)
    response = render(request, template, status=status, login_csrf=token,
                      min_length=MIN_PASSWORD_LENGTH, **context)
    response.set_cookie(LOGIN_CSRF_COOKIE, token, httponly=True, samesite="strict",
                        secure=_secure(request), path="/")
    return response


def _login_csrf_ok(request: Request, sent: str) -> bool:
    cookie = request.cookies.get(LOGIN_CSRF_COOKIE, "")
    return bool(cookie) and hmac.compare_digest(cookie.encode(), (sent or "").encode())


@functools.cache
def _stand_in_hash() -> str:
    from ..records import hash_password

    return hash_password(secrets.token_urlsafe(24))


def _spend_a_password_check(password: str) -> None:
    """Check ``password`` against a hash no one knows: a refusal for an unknown, inactive
    or locked account then takes as long as a wrong password (the time of the answer does
    not tell who has an account). argon2 reads its cost from the hash itself."""
    from argon2 import PasswordHasher
    from argon2.exceptions import VerificationError

    try:
        PasswordHasher().verify(_stand_in_hash(), password)
    except VerificationError:
        pass


def _sign_in(engine, username: str, password: str, idle, previous_sid: str | None
             ) -> tuple[str | None, bool]:
    """(session id, must change password); raises AuthError on any refusal.

    A successful sign-in ends the session whose cookie the browser sent
    (``previous_sid``): its cookie is being replaced, and a copy of it must not
    stay valid until it idles out."""
    from ..records import (
        SignInFailed,
        authenticate,
        close_web_session,
        note_failed_sign_in,
        open_web_session,
        unit_of_work,
    )

    try:
        with unit_of_work(engine, check_schema=False) as session:
            user = authenticate(session, username, password, allow_password_change=True)
            if user.must_change_password:
                return None, True
            if previous_sid:
                close_web_session(session, previous_sid)
            sid, _ = open_web_session(session, user, idle=idle)
            return sid, False
    except SignInFailed as exc:
        with unit_of_work(engine, check_schema=False) as session:
            note_failed_sign_in(session, exc.username)
        raise
    except AuthError:  # refused before the password was checked
        _spend_a_password_check(password)
        raise


@router.get("/login")
def login_page(request: Request, next: str = "/") -> Response:
    return _form_page(request, "login.html", next_path=_safe_next(next))


@router.post("/login")
async def login(request: Request, username: Annotated[str, Form(max_length=64)] = "",
                password: Annotated[str, Form(max_length=1024)] = "",
                login_csrf: Annotated[str, Form(max_length=200)] = "",
                next: Annotated[str, Form(max_length=2000)] = "/") -> Response:
    if not _login_csrf_ok(request, login_csrf):
        return _form_page(request, "login.html", status=403, next_path=_safe_next(next),
                          error="The sign-in form expired; please sign in again.")
    state = request.app.state
    try:
        sid, must_change = await run_in_threadpool(_sign_in, state.engine, username.strip(),
                                                   password, state.settings.session_idle,
                                                   request.cookies.get(SESSION_COOKIE))
    except AuthError:
        return _form_page(request, "login.html", status=401, next_path=_safe_next(next),
                          error=FAILED_SIGN_IN, username=username)
    if must_change:
        return _form_page(request, "password.html", username=username,
                          message="Set your own password before your first sign-in.")
    response = RedirectResponse(_safe_next(next), status_code=303)
    # A new session id at every sign-in (no fixation); the old one was ended above.
    response.set_cookie(SESSION_COOKIE, sid, httponly=True, samesite="strict",
                        secure=_secure(request), path="/")
    response.delete_cookie(LOGIN_CSRF_COOKIE, path="/")
    return response


def _close(engine, sid: str) -> None:
    from ..records import close_web_session, unit_of_work

    with unit_of_work(engine, check_schema=False) as session:
        close_web_session(session, sid)


@router.post("/logout")
async def logout(request: Request, caller: Principal = Depends(require())) -> Response:
    if caller.session_id:
        await run_in_threadpool(_close, request.app.state.engine, caller.session_id)
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response


@router.get("/password")
def password_page(request: Request) -> Response:
    return _form_page(request, "password.html")


def _change(engine, username: str, old: str, new: str) -> None:
    from ..records import SignInFailed, change_password, note_failed_sign_in, unit_of_work

    try:
        with unit_of_work(engine, check_schema=False) as session:
            change_password(session, username, old, new)
    except SignInFailed as exc:
        with unit_of_work(engine, check_schema=False) as session:
            note_failed_sign_in(session, exc.username)
        raise
    except AuthError:  # refused before the password was checked
        _spend_a_password_check(old)
        raise


@router.post("/password")
async def change_own_password(
        request: Request, username: Annotated[str, Form(max_length=64)] = "",
        old_password: Annotated[str, Form(max_length=1024)] = "",
        new_password: Annotated[str, Form(max_length=1024)] = "",
        confirm_password: Annotated[str, Form(max_length=1024)] = "",
        login_csrf: Annotated[str, Form(max_length=200)] = "") -> Response:
    if not _login_csrf_ok(request, login_csrf):
        return _form_page(request, "password.html", status=403, username=username,
                          error="The form expired; please try again.")
    if new_password != confirm_password:
        return _form_page(request, "password.html", status=422, username=username,
                          error="The two new passwords differ.")
    try:
        await run_in_threadpool(_change, request.app.state.engine, username.strip(),
                                old_password, new_password)
    except AuthError:
        return _form_page(request, "password.html", status=401, username=username,
                          error=FAILED_SIGN_IN)
    except ExotraceError as exc:  # the password policy, named (the password is never echoed)
        return _form_page(request, "password.html", status=422, username=username,
                          error=str(exc))
    return _form_page(request, "login.html", next_path="/",
                      message="Password changed. Sign in with your new password.")
