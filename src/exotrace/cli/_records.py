"""Shared plumbing of the records commands: database, acting user, transaction.

A command opens one unit of work: it commits when the command succeeds and
rolls back on any error. The acting user comes from ``--user`` (or
``EXOTRACE_USER``) and the password from ``EXOTRACE_PASSWORD`` or a hidden
prompt. Reading commands work without a user; writing commands need one.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date
from typing import Annotated

import typer

from ..errors import AuthError, InvalidInput

__all__ = ["ReasonOption", "UserOption", "parse_date", "password_from_env_or_prompt",
           "records_session"]

UserOption = Annotated[str | None, typer.Option(
    "--user", envvar="EXOTRACE_USER", show_envvar=True,
    help="Acting user (password from EXOTRACE_PASSWORD or a prompt).")]
ReasonOption = Annotated[str | None, typer.Option(
    "--reason", help="Why the record changes (required for changes to GMP records).")]


def password_from_env_or_prompt(username: str, *, env: str = "EXOTRACE_PASSWORD",
                                confirm: bool = False) -> str:
    password = os.environ.get(env)
    if password:
        return password
    return typer.prompt(f"Password for {username}", hide_input=True,
                        confirmation_prompt=confirm)


def parse_date(value: str | None, option: str) -> date | None:
    if value is None:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise InvalidInput(f"{option} {value!r}: give a date as YYYY-MM-DD") from None


@contextmanager
def records_session(user: str | None, *, write: bool = True, check_schema: bool = True
                    ) -> Iterator[tuple]:
    """Yield ``(session, acting_user_or_None)`` inside a unit of work."""
    from ..records import authenticate, make_engine, set_actor, unit_of_work

    engine = make_engine()
    try:
        with unit_of_work(engine, check_schema=check_schema) as session:
            acting = None
            if user:
                acting = authenticate(session, user, password_from_env_or_prompt(user))
                set_actor(session, acting)
            elif write:
                raise AuthError("this command writes records and needs an acting user: "
                                "give --user NAME (or set EXOTRACE_USER)")
            yield session, acting
    finally:
        engine.dispose()
