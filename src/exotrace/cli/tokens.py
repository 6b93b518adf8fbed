"""``exotrace token``: personal API tokens (for scripts and the API; they never sign)."""

from __future__ import annotations

from typing import Annotated

import typer

from ._common import JsonOption, emit
from ._records import _VIA_TOKEN, PasswordStdinOption, UserOption, records_session

__all__ = ["register"]


def register(app: typer.Typer) -> None:
    tokens = typer.Typer(help="Personal API tokens (act with your role; cannot sign).",
                         no_args_is_help=True)
    app.add_typer(tokens, name="token")

    @tokens.command("create")
    def create(
        name: Annotated[str, typer.Option("--name", help="What the token is for.")] = "api",
        user: UserOption = None,
        password_stdin: PasswordStdinOption = False,
        as_json: JsonOption = False,
    ) -> None:
        """Create a token for --user (signed in with the password). The token is shown
        once: only its hash is stored."""
        from ..errors import AuthError
        from ..records import create_token, token_view

        if not user:
            raise AuthError("give --user NAME: the token acts as that user")
        with records_session(user, password_stdin=password_stdin) as (session, acting):
            if session.info.get(_VIA_TOKEN):
                raise AuthError("a token cannot create tokens; sign in with the password")
            token, row = create_token(session, acting, name)
            result = {"token": token, **token_view(session, row)}
        emit(result, as_json=as_json)

    @tokens.command("list")
    def list_(user: UserOption = None, as_json: JsonOption = False) -> None:
        """Your tokens (an admin sees all); never the tokens themselves."""
        from ..records import list_tokens, token_view

        with records_session(user) as (session, acting):
            result = [token_view(session, t) for t in list_tokens(session, acting)]
        emit(result, as_json=as_json)

    @tokens.command("revoke")
    def revoke(token_id: Annotated[int, typer.Argument(help="Token id (token list).")],
               user: UserOption = None, as_json: JsonOption = False) -> None:
        """Revoke a token (its owner or an admin); it stops working at once."""
        from ..records import revoke_token, token_view

        with records_session(user) as (session, acting):
            result = token_view(session, revoke_token(session, acting, token_id))
        emit(result, as_json=as_json)
