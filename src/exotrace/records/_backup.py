"""Backup and restore of a whole exotrace database.

SQLite: the online backup API (``sqlite3.Connection.backup``) copies a
consistent snapshot while writers go on; the backup is a plain SQLite file.
PostgreSQL: ``pg_dump -Fc`` (custom format) and ``pg_restore``; the restore
runs as ONE transaction through ``psql --single-transaction``, so a failed
restore leaves the target as it was.

A restore refuses a target that holds any row unless ``force``; it checks
the backup before touching the target (format, integrity, schema revision)
and, afterwards, the audit chain and every electronic signature.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import sqlite3
import subprocess
import tempfile
from contextlib import closing
from pathlib import Path

import sqlalchemy as sa

from ..errors import ConfigurationError, Conflict, FileFormatError, StorageError
from ._db import _safe, head_revision, storage_errors, upgrade_database

__all__ = ["backup_database", "restore_database", "table_row_counts", "verify_restored"]

_SQLITE_MAGIC = b"SQLite format 3\x00"
_PG_MAGIC = b"PGDMP"
_CHUNK = 1 << 20


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(_CHUNK), b""):
            h.update(block)
    return h.hexdigest()


def table_row_counts(engine: sa.Engine) -> dict[str, int]:
    """Rows per table (every table of the database, alembic's included)."""
    with storage_errors(engine.url), engine.connect() as conn:
        names = sa.inspect(conn).get_table_names()
        return {n: conn.execute(sa.text(f'SELECT count(*) FROM "{n}"')).scalar_one()
                for n in sorted(names)}


def _refuse_non_empty(engine: sa.Engine, force: bool) -> None:
    counts = {k: v for k, v in table_row_counts(engine).items()
              if v and k != "alembic_version"}
    if counts and not force:
        raise Conflict(f"database {_safe(engine.url)} is not empty ({sum(counts.values())} rows "
                       f"in {len(counts)} tables); restore replaces everything in it: give "
                       "--force to do so")


def _write_atomically(out: Path, produce) -> None:
    """Run ``produce(tmp_path)`` and rename the result to ``out`` (no half-written backup)."""
    out.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{out.name}.", suffix=".part", dir=out.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        produce(tmp_path)
        os.replace(tmp_path, out)
    except OSError as exc:
        raise StorageError(f"cannot write backup {out}: {exc.strerror or exc}; "
                           "no backup file was left") from None
    finally:
        tmp_path.unlink(missing_ok=True)


# ----------------------------------------------------------------------------- SQLite

def _sqlite_call(engine: sa.Engine, what: str, fn) -> None:
    """Run ``fn()``; the sqlite3 module's own failures go through the storage-error mapping."""
    with storage_errors(engine.url):
        try:
            fn()
        except sqlite3.OperationalError as exc:
            raise sa.exc.OperationalError(what, {}, exc) from None


def _sqlite_backup(engine: sa.Engine, out: Path) -> None:
    def produce(tmp: Path) -> None:
        raw = engine.raw_connection()
        try:
            with closing(sqlite3.connect(tmp)) as dst:
                _sqlite_call(engine, "backup", lambda: raw.driver_connection.backup(dst))
                # One self-contained file: no -wal/-shm next to the backup.
                dst.execute("PRAGMA journal_mode=DELETE")
        finally:
            raw.close()
    _write_atomically(out, produce)


def _sqlite_check_backup(source: Path) -> str:
    """Schema revision of a SQLite backup; FileFormatError if it is not a sound one."""
    with source.open("rb") as f:
        head = f.read(100)
    if not head.startswith(_SQLITE_MAGIC):
        what = "a PostgreSQL backup" if head.startswith(_PG_MAGIC) else "not a SQLite database"
        raise FileFormatError(source, f"{what}; the target database is SQLite", offset=0)
    page_size = int.from_bytes(head[16:18], "big") or 65536
    pages = int.from_bytes(head[28:32], "big")
    if pages and source.stat().st_size < page_size * pages:
        raise FileFormatError(source, f"truncated: {source.stat().st_size} bytes, the header "
                                      f"announces {pages} pages of {page_size} bytes")
    try:
        with closing(sqlite3.connect(f"file:{source}?mode=ro", uri=True)) as conn:
            problems = [r[0] for r in conn.execute("PRAGMA quick_check(5)")]
            if problems != ["ok"]:
                raise FileFormatError(source, f"corrupt SQLite file: {problems[0]}")
            row = conn.execute("SELECT version_num FROM alembic_version").fetchone()
    except sqlite3.DatabaseError as exc:
        raise FileFormatError(source, f"not a usable exotrace backup: {exc}") from None
    if row is None:
        raise FileFormatError(source, "not an exotrace backup: no schema revision recorded")
    return row[0]


def _sqlite_restore(engine: sa.Engine, source: Path) -> None:
    raw = engine.raw_connection()
    try:
        with closing(sqlite3.connect(f"file:{source}?mode=ro", uri=True)) as src:
            # The backup API replaces the target's pages in one step under its lock.
            _sqlite_call(engine, "restore", lambda: src.backup(raw.driver_connection))
    finally:
        raw.close()


# ----------------------------------------------------------------------------- PostgreSQL

def _pg_tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        raise ConfigurationError(f"{name} is not installed; install the PostgreSQL client "
                                 "(Debian: apt-get install postgresql-client)")
    return path


def _pg_env_and_uri(url: sa.URL) -> tuple[dict, str]:
    """libpq URI without the password (which goes through PGPASSWORD, not argv)."""
    env = dict(os.environ)
    if url.password:
        env["PGPASSWORD"] = url.password
    plain = url.set(drivername="postgresql", password=None)
    return env, plain.render_as_string(hide_password=False)


def _run(args: list[str], env: dict, what: str) -> subprocess.CompletedProcess:
    proc = subprocess.run(args, env=env, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        lines = [ln.strip() for ln in proc.stderr.splitlines() if ln.strip()]
        detail = next((ln for ln in lines if "error" in ln.lower()), lines[0] if lines else
                      f"exit code {proc.returncode}")
        raise StorageError(f"{what} failed: {detail}")
    return proc


def _pg_backup(engine: sa.Engine, out: Path) -> None:
    env, uri = _pg_env_and_uri(engine.url)
    tool = _pg_tool("pg_dump")
    _write_atomically(out, lambda tmp: _run(
        [tool, "--format=custom", "--no-owner", "--no-acl", f"--file={tmp}", f"--dbname={uri}"],
        env, f"pg_dump of {_safe(engine.url)}"))


def _pg_check_backup(source: Path) -> str:
    with source.open("rb") as f:
        head = f.read(16)
    if not head.startswith(_PG_MAGIC):
        what = "a SQLite backup" if head.startswith(_SQLITE_MAGIC[:6]) else \
            "not a pg_dump custom-format file"
        raise FileFormatError(source, f"{what}; the target database is PostgreSQL", offset=0)
    proc = subprocess.run([_pg_tool("pg_restore"), "--data-only", "--table=alembic_version",
                           "--file=-", str(source)], capture_output=True, text=True, check=False)
    lines = proc.stdout.splitlines()
    if proc.returncode != 0 or not any(ln.startswith("COPY ") for ln in lines):
        err = next((ln.strip() for ln in proc.stderr.splitlines() if ln.strip()),
                   "no schema revision in it")
        raise FileFormatError(source, f"not a readable exotrace backup: {err}")
    i = next(i for i, ln in enumerate(lines) if ln.startswith("COPY "))
    return lines[i + 1].strip()


def _pg_restore(engine: sa.Engine, source: Path) -> None:
    env, uri = _pg_env_and_uri(engine.url)
    with tempfile.TemporaryDirectory(prefix="exotrace-restore-") as tmp:
        script = Path(tmp) / "restore.sql"
        proc = subprocess.run([_pg_tool("pg_restore"), "--no-owner", "--no-acl", "--file=-",
                               str(source)], env=env, capture_output=True, check=False)
        if proc.returncode != 0:
            err = proc.stderr.decode(errors="replace").strip().splitlines()
            raise FileFormatError(source, f"pg_restore cannot read it: "
                                          f"{err[0] if err else proc.returncode}")
        # Replacing the public schema and loading the dump in ONE transaction: a
        # failure half-way leaves the target exactly as it was.
        with script.open("wb") as f:
            f.write(b"DROP SCHEMA IF EXISTS public CASCADE;\nCREATE SCHEMA public;\n")
            f.write(proc.stdout)
        _run([_pg_tool("psql"), "-X", "-q", "-v", "ON_ERROR_STOP=1", "--single-transaction",
              f"--file={script}", f"--dbname={uri}"], env, f"restore into {_safe(engine.url)}")


# ----------------------------------------------------------------------------- public

def backup_database(engine: sa.Engine, out: str | os.PathLike, *, force: bool = False) -> dict:
    """Write a consistent backup of the database at ``engine`` to ``out``.

    Parameters
    ----------
    engine : Engine
        The database to back up (SQLite or PostgreSQL).
    out : path
        The backup file; written to a temporary name and renamed when complete.
    force : bool
        Replace ``out`` if it exists (refused otherwise: Conflict).

    Returns
    -------
    dict
        ``database``, ``backend``, ``file``, ``bytes``, ``sha256``, ``revision``,
        ``rows`` (per table, counted before the copy: writers may add more).
    """
    out = Path(out)
    if out.exists() and not force:
        raise Conflict(f"backup file {out} exists; give --force to replace it")
    if out.is_dir():
        raise Conflict(f"backup file {out} is a directory")
    backend = engine.url.get_backend_name()
    db_file = engine.url.database if backend == "sqlite" else None
    if db_file and db_file != ":memory:" and not Path(db_file).exists():
        # Checked before connecting: SQLite would create an empty file.
        raise ConfigurationError(f"database file {db_file} does not exist; nothing to back up")
    rows = table_row_counts(engine)
    if not rows.get("alembic_version"):
        raise ConfigurationError(f"database {_safe(engine.url)} has no exotrace schema; "
                                 "nothing to back up")
    with storage_errors(engine.url), engine.connect() as conn:
        revision = conn.execute(sa.text("SELECT version_num FROM alembic_version")).scalar_one()
    (_sqlite_backup if backend == "sqlite" else _pg_backup)(engine, out)
    return {"database": _safe(engine.url), "backend": backend, "file": str(out),
            "bytes": out.stat().st_size, "sha256": _sha256(out), "revision": revision,
            "rows": {k: v for k, v in rows.items() if k != "alembic_version"}}


def verify_restored(engine: sa.Engine) -> dict:
    """Audit chain and every signature of a (restored) database.

    Returns
    -------
    dict
        ``audit_ok``, ``audit_entries``, ``signatures`` (checked) and
        ``signatures_not_matching`` (ids whose record no longer matches).
    """
    from sqlalchemy.orm import Session

    from ._audit import verify_audit_trail
    from ._auth import signature_is_current
    from ._base import Base
    from ._models_auth import Signature

    models = {m.class_.__tablename__: m.class_ for m in Base.registry.mappers
              if hasattr(m.class_, "__tablename__")}
    with storage_errors(engine.url), Session(engine) as session:
        report = verify_audit_trail(session)
        bad, n = [], 0
        for sig in session.scalars(sa.select(Signature).order_by(Signature.id)):
            n += 1
            model = models.get(sig.table_name)
            record = session.get(model, sig.record_id) if model is not None else None
            if record is None or not signature_is_current(session, sig, record):
                bad.append(sig.id)
    return {"audit_ok": report.ok, "audit_entries": report.entries_checked,
            "audit_findings": [f.message for f in report.findings[:3]],
            "signatures": n, "signatures_not_matching": bad}


def restore_database(engine: sa.Engine, source: str | os.PathLike, *,
                     force: bool = False) -> dict:
    """Replace the database at ``engine`` with the backup ``source``.

    The backup is checked first (format for this backend, integrity, an
    exotrace schema no newer than this installation); a target holding any
    row is refused unless ``force``. A backup from an older schema is
    migrated after the restore. Afterwards the audit chain and every signature
    are verified and reported.

    Raises
    ------
    FileFormatError
        Missing, truncated, corrupt or foreign backup file, or one for the other backend.
    Conflict
        The target holds rows and ``force`` is not given.
    StorageError
        The target cannot be reached or written.
    """
    source = Path(source)
    if not source.is_file():
        raise FileFormatError(source, "no such backup file" if not source.exists()
                              else "not a regular file")
    backend = engine.url.get_backend_name()
    revision = (_sqlite_check_backup if backend == "sqlite" else _pg_check_backup)(source)
    from alembic.script import ScriptDirectory

    from ._db import alembic_config

    known = {s.revision for s in ScriptDirectory.from_config(alembic_config()).walk_revisions()}
    if revision not in known:
        raise FileFormatError(source, f"backup has schema revision {revision!r}, unknown to this "
                                      f"exotrace (latest {head_revision()}); restore it with the "
                                      "exotrace version that wrote it")
    _refuse_non_empty(engine, force)
    (_sqlite_restore if backend == "sqlite" else _pg_restore)(engine, source)
    engine.dispose()  # pooled connections saw the old schema
    migrated = None
    if revision != head_revision():
        migrated = upgrade_database(engine)
    check = verify_restored(engine)
    rows = {k: v for k, v in table_row_counts(engine).items() if k != "alembic_version"}
    return {"database": _safe(engine.url), "backend": backend, "file": str(source),
            "sha256": _sha256(source), "revision": revision,
            "migrated_to": migrated[1] if migrated else None, "rows": rows, **check}
