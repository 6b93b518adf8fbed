"""``exotrace audit``: verify the audit trail and read it."""

from __future__ import annotations

from typing import Annotated

import typer

from ._common import JsonOption, console, emit, print_table
from ._records import records_session

__all__ = ["register"]

# Business keys accepted in ``audit log TABLE:KEY`` besides the numeric id.
_KEYS = {"lot": "number", "donor": "code", "cell_bank": "code", "collection": "code",
         "isolation_run": "code", "reagent_batch": "code", "product": "code",
         "vial": "identifier", "user_account": "username"}


def _resolve(session, record: str) -> tuple[str, str]:
    from ..errors import InvalidInput, NotFound
    from ..records import audited_tables

    table, sep, key = record.partition(":")
    tables = {t.name: t for t in audited_tables()}
    if not sep or table not in tables:
        raise InvalidInput(f"record {record!r}: write TABLE:ID or TABLE:KEY with TABLE one of "
                           f"{', '.join(sorted(tables))}")
    if key.isdigit():
        return table, key
    column = _KEYS.get(table)
    if column is None:
        raise InvalidInput(f"record {record!r}: {table} records are named by numeric id")
    t = tables[table]
    import sqlalchemy as sa

    pk = session.execute(sa.select(t.c.id).where(t.c[column] == key)).scalar()
    if pk is None:
        # A deleted record is still in the trail: search its last image.
        raise NotFound(f"no {table} with {column} {key!r} (use TABLE:ID for deleted records)")
    return table, str(pk)


def register(app: typer.Typer) -> None:
    audit = typer.Typer(help="The audit trail (hash chain).", no_args_is_help=True)
    app.add_typer(audit, name="audit")

    @audit.command("verify")
    def verify(as_json: JsonOption = False) -> None:
        """Check the hash chain and compare every record with its last audited image.

        Exits with code 10 (IntegrityFailure) when anything does not match.
        """
        from ..errors import IntegrityFailure
        from ..records import verify_audit_trail

        with records_session(None, write=False) as (session, _):
            report = verify_audit_trail(session)
        result = {"ok": report.ok, "entries_checked": report.entries_checked,
                  "records_checked": report.records_checked, "head_hash": report.head_hash,
                  "findings": report.findings}
        if as_json:
            emit(result, as_json=True)
        elif report.ok:
            console.print(f"audit trail intact: {report.entries_checked} entries, "
                          f"{report.records_checked} records match their last audited image")
        else:
            print_table([{"kind": f.kind, "table": f.table, "record": f.record, "entry": f.seq,
                          "problem": f.message} for f in report.findings], title="findings")
        if not report.ok:
            first = report.findings[0]
            raise IntegrityFailure(f"audit verification failed with {len(report.findings)} "
                                   f"finding(s); first: {first.message}")

    @audit.command("log")
    def log(
        record: Annotated[str | None, typer.Argument(
            help="TABLE:ID or TABLE:KEY, e.g. lot:L-2025-001 or vial:17.")] = None,
        limit: Annotated[int, typer.Option("--limit", help="Most recent entries shown.")] = 50,
        as_json: JsonOption = False,
    ) -> None:
        """Show audit entries (of one record, or the most recent)."""
        from ..records import audit_entry_view, repositories

        with records_session(None, write=False) as (session, _):
            if record:
                table, pk = _resolve(session, record)
                entries = repositories.audit_entries(session, table_name=table, record_pk=pk)
            else:
                entries = repositories.audit_entries(session, limit=limit)
            rows = [audit_entry_view(e) for e in entries]
        if as_json:
            emit(rows, as_json=True)
            return
        print_table([{"seq": r["seq"], "at": r["at"], "actor": r["actor"], "action": r["action"],
                      "record": f"{r['table']}:{r['record']}", "reason": r["reason"] or ""}
                     for r in rows], title="audit trail")
