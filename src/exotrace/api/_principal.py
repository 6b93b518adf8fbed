"""Who is asking: a browser session (cookie + CSRF token) or a personal API token (Bearer).

Every route but sign-in, static files and the API description depends on
:func:`require` (directly or through :func:`exotrace.api.context`), which

* authenticates the request (401 when it cannot),
* for a cookie session, checks the CSRF token of every state-changing request
  (header ``X-CSRF-Token`` or form field ``csrf_token``; 403 without it), and
* checks the role's permission on the server (403), before the route runs.

The permission a route needs is kept on the dependency
(``exotrace_permission``), so the route x role matrix test reads it from the
app itself.
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass

import anyio
from fastapi import Depends, Request
from starlette.concurrency import run_in_threadpool

from ..errors import AuthError, PermissionDenied
from ..records import ROLE_PERMISSIONS, Permission, Role

__all__ = ["CSRF_FIELD", "CSRF_HEADER", "SESSION_COOKIE", "LoginRequired", "Principal",
           "principal", "request_session", "require"]

SESSION_COOKIE = "exotrace_session"
CSRF_HEADER = "x-csrf-token"
CSRF_FIELD = "csrf_token"
_SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


class LoginRequired(AuthError):
    """No valid session or token: pages redirect to the sign-in page, the API answers 401."""


class CsrfRefused(PermissionDenied):
    """A state-changing request without its session's CSRF token."""


@dataclass(frozen=True)
class Principal:
    """The signed-in user of one request (plain values: safe to use outside a session)."""

    user_id: int
    username: str
    full_name: str
    role: Role
    via_token: bool
    csrf_token: str | None = None
    session_id: str | None = None

    @property
    def permissions(self) -> frozenset[Permission]:
        return ROLE_PERMISSIONS[self.role]

    def can(self, permission: Permission | str) -> bool:
        return Permission(permission) in self.permissions


def _from_user(user, *, via_token: bool, csrf: str | None = None,
               sid: str | None = None) -> Principal:
    return Principal(user_id=user.id, username=user.username, full_name=user.full_name,
                     role=Role(user.role), via_token=via_token, csrf_token=csrf, session_id=sid)


def _resolve(session, resolve, *, keep_open: bool) -> Principal:
    """``resolve(session)`` in the request's session (see :func:`principal`).

    A refusal rolls back. A resolution that wrote (the session's last-seen time,
    every few minutes) is committed at once, so the route's own read or failed
    write cannot undo it; otherwise the transaction stays open for the route's
    read when ``keep_open`` (one transaction per request) and ends when not.
    """
    from sqlalchemy import event

    from ..records import transaction

    wrote: list[bool] = []

    def note_flush(*_) -> None:
        wrote.append(True)

    event.listen(session, "after_flush", note_flush)
    try:
        with transaction(session, commit=None):
            found = resolve(session)
            if wrote or not keep_open:
                session.commit()
            return found
    except AuthError as exc:
        raise LoginRequired(str(exc)) from None
    finally:
        event.remove(session, "after_flush", note_flush)


def _resolve_token(session, token: str, keep_open: bool) -> Principal:
    from ..records import authenticate_token

    return _resolve(session, lambda s: _from_user(authenticate_token(s, token), via_token=True),
                    keep_open=keep_open)


def _resolve_session(session, sid: str, idle, keep_open: bool) -> Principal:
    from ..records import resolve_web_session

    def resolve(s) -> Principal:
        user, row = resolve_web_session(s, sid, idle=idle)
        return _from_user(user, via_token=False, csrf=row.csrf_token, sid=sid)

    return _resolve(session, resolve, keep_open=keep_open)


def request_session(request: Request):
    """The records session of this request (opened by :func:`principal`), or None."""
    return getattr(request.state, "records_session", None)


async def _check_csrf(request: Request, expected: str) -> None:
    sent = request.headers.get(CSRF_HEADER)
    if sent is None:
        content_type = request.headers.get("content-type", "")
        if content_type.startswith(("application/x-www-form-urlencoded", "multipart/form-data")):
            # Starlette caches the parsed form: the route reads the same one.
            sent = (await request.form()).get(CSRF_FIELD)
    if not isinstance(sent, str) or not hmac.compare_digest(sent.encode(), expected.encode()):
        raise CsrfRefused("missing or wrong CSRF token: reload the page and try again; "
                          "nothing was changed")


async def principal(request: Request):
    """The authenticated caller; raises LoginRequired (401) or CsrfRefused (403).

    The caller's account is read in the session the route then reads and writes
    with (:class:`~exotrace.api.Context`), one connection checkout per request;
    for a read (GET, on PostgreSQL) the route continues the same transaction. A state-changing
    request ends it before the CSRF token is read (a form or an upload may take
    its time to arrive: no transaction, no SQLite write lock, is held meanwhile)
    and writes in a transaction of its own. The session is closed when the
    request ends.
    """
    from ..records import open_session

    state = request.app.state
    authorization = request.headers.get("authorization")
    safe = request.method in _SAFE_METHODS
    # SQLite begins every transaction with the write lock (BEGIN IMMEDIATE): there a
    # transaction is never left open between the dependency and the route.
    keep_open = safe and state.engine.dialect.name != "sqlite"
    if authorization:
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise LoginRequired("Authorization header: give 'Bearer TOKEN'")
        resolve, args = _resolve_token, (token.strip(), keep_open)
    else:
        sid = request.cookies.get(SESSION_COOKIE)
        if not sid:
            raise LoginRequired("not signed in")
        resolve, args = _resolve_session, (sid, state.settings.session_idle, keep_open)
    session = open_session(state.engine)
    request.state.records_session = session
    try:
        found = await run_in_threadpool(resolve, session, *args)
        if not authorization and not safe:
            await _check_csrf(request, found.csrf_token)
        request.state.principal = found
        yield found
    finally:
        request.state.records_session = None
        # Shielded: a client that disconnects must not leave the connection checked out.
        with anyio.CancelScope(shield=True):
            await run_in_threadpool(session.close)


def require(permission: Permission | None = None):
    """Dependency: the caller, who must hold ``permission`` (None: any signed-in user)."""

    async def dependency(caller: Principal = Depends(principal)) -> Principal:
        if permission is not None and not caller.can(permission):
            raise PermissionDenied(
                f"your role ({caller.role.value}) may not do this "
                f"(needs permission {permission.value})")
        return caller

    dependency.exotrace_permission = permission
    return dependency
