"""``exotrace db``: create or migrate the database schema."""

from __future__ import annotations

import typer

from ._common import JsonOption, emit

__all__ = ["register"]


def register(app: typer.Typer) -> None:
    db = typer.Typer(help="Database schema (SQLite by default; EXOTRACE_DATABASE_URL).",
                     no_args_is_help=True)
    app.add_typer(db, name="db")

    @db.command("upgrade")
    def upgrade(as_json: JsonOption = False) -> None:
        """Create the schema or migrate it to the latest revision."""
        from ..records import make_engine, upgrade_database

        engine = make_engine()
        try:
            before, after = upgrade_database(engine)
        finally:
            engine.dispose()
        emit({"database": engine.url.render_as_string(hide_password=True),
              "from_revision": before, "to_revision": after}, as_json=as_json)

    @db.command("status")
    def status(as_json: JsonOption = False) -> None:
        """Show the database URL and its schema revision."""
        from ..records import current_revision, head_revision, make_engine

        engine = make_engine()
        try:
            current = current_revision(engine)
        finally:
            engine.dispose()
        emit({"database": engine.url.render_as_string(hide_password=True),
              "revision": current, "latest": head_revision(),
              "up_to_date": current == head_revision()}, as_json=as_json)
