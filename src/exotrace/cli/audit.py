"""``exotrace audit``: verify the audit trail and read it."""

from __future__ import annotations

from pathlib import Path
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

    @audit.command("keygen")
    def keygen(
        out: Annotated[Path, typer.Option("-o", "--out", help="Private key file to write "
                                          "(mode 0600); the public key goes to OUT.pub.")],
        as_json: JsonOption = False,
    ) -> None:
        """Make an Ed25519 key pair for signing audit checkpoints.

        Keep the private key where the database writer cannot read it; give the
        public key to whoever verifies.
        """
        from ..records import generate_checkpoint_keys

        private, public = generate_checkpoint_keys(out)
        emit({"private_key": str(private), "public_key": str(public)}, as_json=as_json)

    @audit.command("checkpoint")
    def checkpoint(
        key: Annotated[Path, typer.Option("--key", help="Ed25519 private key (audit keygen).")],
        out: Annotated[Path, typer.Option("--out", help="Directory of checkpoints (a new file "
                                          "each time; never overwritten).")],
        print_line: Annotated[bool, typer.Option(
            "--print", help="Also print one line to copy into a logbook.")] = False,
        as_json: JsonOption = False,
    ) -> None:
        """Sign the audit chain's head (entry number, hash, time, database identity) and
        write it to a new file in OUT."""
        from ..records import checkpoint_now, logbook_line

        with records_session(None, write=False) as (session, _):
            path, cp = checkpoint_now(session, key, out)
        result = {"file": str(path), "database_id": cp["database_id"], "seq": cp["seq"],
                  "head_hash": cp["head_hash"], "created_at": cp["created_at"]}
        if print_line and as_json:
            result["logbook"] = logbook_line(cp)
        emit(result, as_json=as_json)
        if print_line and not as_json:
            typer.echo(logbook_line(cp))  # whole, on its own line, to copy by hand

    @audit.command("verify")
    def verify(
        checkpoints: Annotated[Path | None, typer.Option(
            "--checkpoints", help="Directory of signed checkpoints to check the chain against.")
        ] = None,
        public_key: Annotated[Path | None, typer.Option(
            "--public-key", help="The checkpoint key's public half (KEYFILE.pub).")] = None,
        as_json: JsonOption = False,
    ) -> None:
        """Check the hash chain, every record against its last audited image, every signature's
        keyed hash, the PostgreSQL protections and, with --checkpoints, the signed checkpoints.

        Exits with code 10 (IntegrityFailure) when anything does not match.
        """
        from ..errors import IntegrityFailure
        from ..records import verify_records

        with records_session(None, write=False) as (session, _):
            report = verify_records(session, checkpoint_dir=checkpoints, public_key=public_key)
        result = {"ok": report.ok, "entries_checked": report.entries_checked,
                  "records_checked": report.records_checked, "head_seq": report.head_seq,
                  "head_hash": report.head_hash,
                  "checkpoints_checked": report.checkpoints_checked,
                  "findings": report.findings}
        if as_json:
            emit(result, as_json=True)
        elif report.ok:
            extra = (f", {report.checkpoints_checked} checkpoints confirmed"
                     if checkpoints is not None else "")
            console.print(f"audit trail intact: {report.entries_checked} entries, "
                          f"{report.records_checked} records match their last audited image, "
                          f"signatures valid{extra}")
        else:
            print_table(report.view()["findings"], title="findings")
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
