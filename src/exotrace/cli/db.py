"""``exotrace db``: create or migrate the database schema; back it up and restore it."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated

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

    _register_backup(db)

    @db.command("status")
    def status(as_json: JsonOption = False) -> None:
        """Show the database URL, its schema revision and, on PostgreSQL, whether the
        append-only triggers are in place and the connected role cannot bypass them."""
        from ..records import current_revision, head_revision, make_engine, protection_findings

        engine = make_engine()
        try:
            current = current_revision(engine)
            with engine.connect() as conn:
                problems = [f.message for f in protection_findings(conn)] if current else []
        finally:
            engine.dispose()
        emit({"database": engine.url.render_as_string(hide_password=True),
              "revision": current, "latest": head_revision(),
              "up_to_date": current == head_revision(),
              # SQLite has no roles or triggers: file permissions and checkpoints protect it.
              "protected": (not problems) if engine.dialect.name == "postgresql" else None,
              "protection_problems": problems}, as_json=as_json)

    @db.command("roles")
    def roles(
        owner: Annotated[str, typer.Option("--owner", help="Role that owns the tables and "
                                           "runs migrations (created if missing).")],
        app_role: Annotated[str, typer.Option("--app", help="Role the application connects "
                                              "as (created if missing).")],
        print_sql: Annotated[bool, typer.Option(
            "--print-sql", help="Only print the SQL, change nothing.")] = False,
        as_json: JsonOption = False,
    ) -> None:
        """PostgreSQL: give the tables to OWNER and let APP append to the audit trail and
        signatures only (no UPDATE, DELETE, TRUNCATE; cannot disable the triggers).

        Run it as a superuser (EXOTRACE_DATABASE_URL) after exotrace db upgrade, then
        connect the application as APP and run later upgrades as OWNER.
        """
        from ..errors import ConfigurationError
        from ..records import make_engine, require_schema, role_statements

        engine = make_engine()
        try:
            if engine.dialect.name != "postgresql":
                raise ConfigurationError("database roles exist on PostgreSQL only; SQLite "
                                         "relies on file permissions and checkpoints")
            require_schema(engine)
            with engine.begin() as conn:
                sql = role_statements(conn, owner, app_role)
                if not print_sql:
                    for statement in sql:
                        conn.exec_driver_sql(statement)
        finally:
            engine.dispose()
        if print_sql and not as_json:
            typer.echo(";\n".join(sql) + ";")
            return
        emit({"database": engine.url.render_as_string(hide_password=True), "owner": owner,
              "app": app_role, "applied": not print_sql, "statements": sql}, as_json=as_json)


@contextmanager
def _database() -> Iterator:
    """An engine on EXOTRACE_DATABASE_URL for one command, disposed at its end."""
    from ..records import make_engine

    engine = make_engine()
    try:
        yield engine
    finally:
        engine.dispose()


def _register_backup(db: typer.Typer) -> None:
    """``db backup`` and ``db restore`` (exotrace.records._backup does the work)."""

    @db.command("backup")
    def backup(
        out: Annotated[Path, typer.Option("-o", "--output", help="Backup file to write.")],
        force: Annotated[bool, typer.Option("--force", help="Replace an existing file.")] = False,
        as_json: JsonOption = False,
    ) -> None:
        """Back up the whole database (SQLite online backup; PostgreSQL pg_dump -Fc)."""
        from ..records._backup import backup_database

        with _database() as engine:
            result = backup_database(engine, out, force=force)
        result["rows"] = sum(result["rows"].values())
        emit(result, as_json=as_json)

    @db.command("restore")
    def restore(
        source: Annotated[Path, typer.Argument(help="Backup file written by exotrace db backup.")],
        force: Annotated[bool, typer.Option(
            "--force", help="Replace a database that already holds records.")] = False,
        as_json: JsonOption = False,
    ) -> None:
        """Replace the database with a backup; then verify the audit chain and signatures."""
        from ..errors import IntegrityFailure
        from ..records._backup import restore_database

        with _database() as engine:
            result = restore_database(engine, source, force=force)
        result["rows"] = sum(result["rows"].values())
        emit(result, as_json=as_json)
        if not result["audit_ok"] or result["signatures_not_matching"]:
            raise IntegrityFailure(
                f"restored {source}, but the audit chain or signatures do not verify: "
                f"{(result['audit_findings'] or ['signatures'])[0]}; "
                f"signatures not matching: {result['signatures_not_matching'][:5]}")
