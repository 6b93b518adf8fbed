"""Account security: password policy, own-password changes, lock-out, database identity.

Rules
-----
* A password has at least :data:`MIN_PASSWORD_LENGTH` characters, is not in
  the shipped list of common passwords and does not contain the user name.
* An account an administrator created must set its own password at its first
  sign-in (``must_change_password``); demo accounts (password ``demo``) are
  exempt and are refused in any database not created as a demo database.
* :data:`MAX_FAILED_SIGN_INS` failed sign-ins within :data:`FAILURE_WINDOW`
  lock the account for :data:`LOCK_DURATION`; while locked even the correct
  password is refused. Failures and locks are written to the account row,
  so they are audited.
"""

from __future__ import annotations

import functools
import json
import uuid
from datetime import timedelta
from importlib import resources

from sqlalchemy.orm import Session

from ..errors import AuthError, Conflict, InvalidInput
from . import _repositories as repo
from ._base import utcnow
from ._context import Actor, acting_as
from ._models_auth import DatabaseIdentity, User

__all__ = [
    "FAILURE_WINDOW",
    "LOCK_DURATION",
    "MAX_FAILED_SIGN_INS",
    "MIN_PASSWORD_LENGTH",
    "SignInFailed",
    "check_password_policy",
    "database_identity",
    "note_failed_sign_in",
    "reset_failed_sign_ins",
]

MIN_PASSWORD_LENGTH = 12
MAX_FAILED_SIGN_INS = 5
FAILURE_WINDOW = timedelta(minutes=15)
LOCK_DURATION = timedelta(minutes=15)
#: Writes of the lock-out counters are attributed to this actor (no user acted).
SIGN_IN_GUARD = Actor(None, "sign-in guard")


class SignInFailed(AuthError):
    """A wrong password: the interface records it with :func:`note_failed_sign_in`.

    Raised inside a transaction that the interface rolls back, so the failure
    is recorded afterwards in a transaction of its own.
    """

    def __init__(self, message: str, username: str) -> None:
        super().__init__(message)
        self.username = username


@functools.cache
def _common_passwords() -> frozenset[str]:
    text = resources.files("exotrace.records").joinpath("data/common_passwords.json").read_text(
        encoding="utf-8")
    return frozenset(json.loads(text)["passwords"])


def check_password_policy(password: str, username: str) -> None:
    """Raise InvalidInput naming the rule ``password`` breaks (the password is never echoed)."""
    if len(password) < MIN_PASSWORD_LENGTH:
        raise InvalidInput(f"password must have at least {MIN_PASSWORD_LENGTH} characters "
                           f"(it has {len(password)})")
    if password.lower() in _common_passwords():
        raise InvalidInput("password is in the list of common passwords; choose another")
    if username and username.lower() in password.lower():
        raise InvalidInput("password must not contain the user name")


def note_failed_sign_in(session: Session, username: str) -> User | None:
    """Count a failed sign-in of ``username``; the fifth in the window locks the account.

    Returns the account (None for an unknown user name: nothing to count).
    """
    user = repo.find_by(session, User, username=username)
    if user is None:
        return None
    now = utcnow()
    with acting_as(session, SIGN_IN_GUARD):
        if user.failed_since is None or now - user.failed_since > FAILURE_WINDOW:
            user.failed_sign_ins, user.failed_since = 1, now
        else:
            user.failed_sign_ins += 1
        if user.failed_sign_ins >= MAX_FAILED_SIGN_INS:
            user.locked_until = now + LOCK_DURATION
            user.failed_sign_ins, user.failed_since = 0, None
        session.flush()
    return user


def reset_failed_sign_ins(session: Session, user: User) -> None:
    """After a successful sign-in, forget earlier failures (written only when there were any)."""
    if user.failed_sign_ins or user.failed_since is not None:
        with acting_as(session, SIGN_IN_GUARD):
            user.failed_sign_ins, user.failed_since = 0, None
            session.flush()


def check_not_locked(user: User) -> None:
    if user.locked_until is not None and user.locked_until > utcnow():
        raise AuthError(f"user {user.username} is locked after {MAX_FAILED_SIGN_INS} failed "
                        f"sign-ins until {user.locked_until:%Y-%m-%d %H:%M} UTC")


def database_identity(session: Session, *, create: bool = True,
                      demo: bool = False) -> DatabaseIdentity | None:
    """The database's identity row, created (with ``demo``) by the first caller that writes.

    Raises
    ------
    Conflict
        ``demo`` is asked for a database that was created as a real one.
    """
    ident = session.get(DatabaseIdentity, 1)
    if ident is None and create:
        ident = DatabaseIdentity(id=1, database_id=str(uuid.uuid4()), demo=demo)
        session.add(ident)
        session.flush()
    if ident is not None and demo and not ident.demo:
        raise Conflict("this database was created as a real (not demo) database; demo accounts "
                       "and demo data are refused here")
    return ident


def check_demo_allowed(session: Session, user: User) -> None:
    """A demo account signs in only in a demo database."""
    if user.demo:
        ident = database_identity(session, create=False)
        if ident is None or not ident.demo:
            raise AuthError(f"user {user.username} is a demo account; demo accounts are refused "
                            "outside a demo database")
