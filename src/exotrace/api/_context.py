"""The one way a route reaches the records: a read or a write in a unit of work,
as the signed-in user.

Routes stay thin::

    @router.post("/lots/{number}/verify")
    def verify(number: str, ctx: Context = Depends(context(Permission.REVIEW)), ...):
        result = ctx.write(lambda s, user: verify_lot(s, user, password, number))

``write`` commits on success and rolls back on any error (nothing half
written); the signed-in user is the actor of every audit entry it leaves. A
wrong password given to sign is counted towards the lock-out in a
transaction of its own, as in the CLI. (Audit checkpoints are written by the
server's background thread, not per request: see :mod:`exotrace.api._app`.)
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from fastapi import Depends, Request

from ..records import Permission
from ._principal import Principal, request_session, require

__all__ = ["Context", "context"]

T = TypeVar("T")


class Context:
    """Records access for one request, as ``principal``."""

    def __init__(self, request: Request, principal: Principal) -> None:
        self.request = request
        self.principal = principal
        self.engine = request.app.state.engine

    def _session(self):
        # The request's session, in which the caller was authenticated: the account
        # row read then is in its identity map, and a read continues that transaction.
        session = request_session(self.request)
        if session is None:
            raise RuntimeError("Context used outside the request that authenticated it")
        return session

    def read(self, fn: Callable[..., T]) -> T:
        """``fn(session, user)`` in a transaction that is rolled back (reads only)."""
        from ..records import User, transaction

        session = self._session()
        with transaction(session, commit=False):
            return fn(session, session.get(User, self.principal.user_id))

    def write(self, fn: Callable[..., T], *, reason: str | None = None) -> T:
        """``fn(session, user)`` in one transaction, audited as the signed-in user."""
        from ..records import SignInFailed, User, acting_as, change_reason, transaction

        session = self._session()
        try:
            with transaction(session, commit=True):
                user = session.get(User, self.principal.user_id)
                if self.principal.via_token:
                    session.info["exotrace.signed_in_with_token"] = True
                try:
                    with acting_as(session, user), change_reason(session, reason):
                        result = fn(session, user)
                finally:  # a later read of this request writes as nobody, as before
                    session.info.pop("exotrace.signed_in_with_token", None)
        except SignInFailed as exc:
            self._note_failure(exc.username)
            raise
        return result

    def require_can_sign(self) -> None:
        """Refuse a signature asked for with an API token (21 CFR 11.200: a signature is
        given with the password, at the time of signing)."""
        from ..errors import AuthError

        if self.principal.via_token:
            raise AuthError("an API token cannot sign; sign in with your password to sign")

    def _note_failure(self, username: str) -> None:
        from ..records import note_failed_sign_in, unit_of_work

        with unit_of_work(self.engine, check_schema=False) as session:
            note_failed_sign_in(session, username)


def context(permission: Permission | None = None):
    """Dependency giving a :class:`Context` for a caller who holds ``permission``."""
    guard = require(permission)

    def dependency(request: Request, caller: Principal = Depends(guard)) -> Context:
        return Context(request, caller)

    dependency.exotrace_permission = permission
    return dependency
