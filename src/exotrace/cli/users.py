"""``exotrace user``: accounts and roles."""

from __future__ import annotations

import os
from typing import Annotated

import typer

from ._common import JsonOption, emit
from ._records import (
    PasswordStdinOption,
    UserOption,
    password_from_env_or_prompt,
    read_secret,
    records_session,
)

__all__ = ["register"]


def register(app: typer.Typer) -> None:
    users = typer.Typer(help="User accounts and roles.", no_args_is_help=True)
    app.add_typer(users, name="user")

    @users.command("add")
    def add(
        name: Annotated[str, typer.Argument(help="User name (lower case).")],
        role: Annotated[str, typer.Option("--role", help="admin, analyst, reviewer, qa, "
                                          "clinician or viewer.")],
        full_name: Annotated[str | None, typer.Option("--full-name")] = None,
        user: UserOption = None,
        as_json: JsonOption = False,
    ) -> None:
        """Add a user. The first user of an empty database (an admin) needs no --user.

        The new user's password comes from EXOTRACE_NEW_PASSWORD, else (when no
        acting user is given) EXOTRACE_PASSWORD, else a prompt. Policy: at least 12
        characters, not a common password, not containing the user name. A user an
        admin adds must set their own password at the first sign-in (user password).
        """
        from ..records import add_user, user_view

        new_pw = os.environ.get("EXOTRACE_NEW_PASSWORD") or (
            None if user else os.environ.get("EXOTRACE_PASSWORD"))
        with records_session(user, write=False) as (session, acting):
            password = new_pw or password_from_env_or_prompt(name, env="EXOTRACE_NEW_PASSWORD",
                                                             confirm=True)
            created = add_user(session, name, role, password=password, full_name=full_name,
                               acting=acting)
            result = user_view(created)
        emit(result, as_json=as_json)

    @users.command("password")
    def password(
        user: UserOption = None,
        password_stdin: PasswordStdinOption = False,
        as_json: JsonOption = False,
    ) -> None:
        """Set your own password: the old one, then the new one (twice at a prompt).

        From standard input (--password-stdin, or when it is not a terminal): the
        old password on the first line, the new one on the second. Otherwise the
        old one may come from EXOTRACE_PASSWORD and the new one from
        EXOTRACE_NEW_PASSWORD. Five wrong old passwords in 15 minutes lock the account.
        """
        from ..errors import AuthError
        from ..records import change_password, user_view

        if not user:
            raise AuthError("give --user NAME (or set EXOTRACE_USER): whose password changes")
        if password_stdin:
            old = read_secret(f"Current password of {user}", from_stdin=True)
            new = read_secret(f"New password of {user}", from_stdin=True)
        else:
            old = password_from_env_or_prompt(user)
            new = os.environ.get("EXOTRACE_NEW_PASSWORD") or read_secret(
                f"New password of {user}", confirm=True)
        with records_session(None, write=False) as (session, _):
            result = user_view(change_password(session, user, old, new))
        emit(result, as_json=as_json)

    @users.command("list")
    def list_(as_json: JsonOption = False) -> None:
        """List user accounts."""
        from ..records import User, repositories, user_view

        with records_session(None, write=False) as (session, _):
            result = [user_view(u) for u in repositories.list_all(session, User)]
        emit(result, as_json=as_json)

    @users.command("deactivate")
    def deactivate(name: str, user: UserOption = None, as_json: JsonOption = False) -> None:
        """Deactivate an account (accounts are never deleted)."""
        from ..records import set_user_active, user_view

        with records_session(user) as (session, acting):
            result = user_view(set_user_active(session, acting, name, False))
        emit(result, as_json=as_json)
