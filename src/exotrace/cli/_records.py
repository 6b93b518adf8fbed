"""Shared plumbing of the records commands: database, acting user, transaction.

A command opens one unit of work: it commits when the command succeeds and
rolls back on any error. The acting user comes from ``--user`` (or
``EXOTRACE_USER``) and signs in with ``EXOTRACE_TOKEN`` (a personal API
token), ``EXOTRACE_PASSWORD`` or a hidden prompt. Reading commands work
without a user; writing commands need one.

Signatures never take the password from the environment or a token
(21 CFR 11.200): :func:`signing_password` asks for it at every signing, from
the terminal, or from standard input when that is not a terminal (scripts
pipe it: ``echo "$PW" | exotrace lot release ...``).

A failed sign-in is recorded (lock-out counter) in a transaction of its own,
after the command's transaction rolled back. After a write command commits, a
checkpoint is written when one is due (``EXOTRACE_CHECKPOINT_KEY`` and
``EXOTRACE_CHECKPOINT_DIR``).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date
from typing import Annotated

import typer

from ..errors import AuthError, ExotraceError, InvalidInput

__all__ = ["PasswordStdinOption", "ReasonOption", "UserOption", "parse_date",
           "password_from_env_or_prompt", "read_secret", "records_session", "signing_password"]

UserOption = Annotated[str | None, typer.Option(
    "--user", envvar="EXOTRACE_USER", show_envvar=True,
    help="Acting user (signs in with EXOTRACE_TOKEN, EXOTRACE_PASSWORD or a prompt).")]
ReasonOption = Annotated[str | None, typer.Option(
    "--reason", help="Why the record changes (required for changes to GMP records).")]
PasswordStdinOption = Annotated[bool, typer.Option(
    "--password-stdin", help="Read the password from standard input (one line).")]

_VIA_TOKEN = "exotrace.signed_in_with_token"


def read_secret(prompt: str, *, from_stdin: bool = False, confirm: bool = False) -> str:
    """One secret: a line of standard input when asked to or when it is not a terminal,
    otherwise a hidden prompt."""
    stream = sys.stdin
    if from_stdin or (stream is not None and not stream.isatty()):
        line = stream.readline() if stream is not None else ""
        if not line:
            raise AuthError(f"{prompt}: nothing on standard input")
        return line.rstrip("\r\n")
    return typer.prompt(prompt, hide_input=True, confirmation_prompt=confirm)


def password_from_env_or_prompt(username: str, *, env: str = "EXOTRACE_PASSWORD",
                                confirm: bool = False) -> str:
    """A sign-in password (never used for signatures: see :func:`signing_password`)."""
    password = os.environ.get(env)
    if password:
        return password
    return read_secret(f"Password for {username}", confirm=confirm)


def signing_password(session, username: str) -> str:
    """The password re-entered for a signature (never from the environment or a token)."""
    if session.info.get(_VIA_TOKEN):
        raise AuthError("an API token cannot sign; sign in with your password to sign")
    return read_secret(f"Password of {username} to sign")


def parse_date(value: str | None, option: str) -> date | None:
    if value is None:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise InvalidInput(f"{option} {value!r}: give a date as YYYY-MM-DD") from None


def _sign_in(session, user: str, *, password_stdin: bool):
    from ..records import authenticate, authenticate_token

    token = os.environ.get("EXOTRACE_TOKEN")
    if token and not password_stdin:
        acting = authenticate_token(session, token)
        if acting.username != user:
            raise AuthError(f"EXOTRACE_TOKEN belongs to {acting.username}, not {user}")
        session.info[_VIA_TOKEN] = True
        return acting
    password = (read_secret(f"Password for {user}", from_stdin=True) if password_stdin
                else password_from_env_or_prompt(user))
    return authenticate(session, user, password)


def _note_failure(engine, username: str) -> None:
    from ..records import note_failed_sign_in, unit_of_work

    with unit_of_work(engine) as session:
        note_failed_sign_in(session, username)


def _checkpoint_if_due(engine) -> None:
    from ..records import unit_of_work, write_checkpoint_if_due

    try:
        with unit_of_work(engine) as session:
            path = write_checkpoint_if_due(session)
    except ExotraceError as exc:
        # The command's own transaction is committed; say so rather than fail it.
        typer.echo(f"exotrace: warning: checkpoint not written: {exc}", err=True)
        return
    if path is not None:
        typer.echo(f"exotrace: checkpoint written: {path}", err=True)


@contextmanager
def records_session(user: str | None, *, write: bool = True, check_schema: bool = True,
                    password_stdin: bool = False) -> Iterator[tuple]:
    """Yield ``(session, acting_user_or_None)`` inside a unit of work."""
    from ..records import SignInFailed, make_engine, set_actor, unit_of_work

    engine = make_engine()
    try:
        try:
            with unit_of_work(engine, check_schema=check_schema) as session:
                acting = None
                if user:
                    acting = _sign_in(session, user, password_stdin=password_stdin)
                    set_actor(session, acting)
                elif write:
                    raise AuthError("this command writes records and needs an acting user: "
                                    "give --user NAME (or set EXOTRACE_USER)")
                yield session, acting
        except SignInFailed as exc:
            _note_failure(engine, exc.username)
            raise
        if user:
            _checkpoint_if_due(engine)
    finally:
        engine.dispose()
