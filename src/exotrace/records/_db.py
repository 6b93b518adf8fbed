"""Engines, sessions, the unit of work and schema migrations.

SQLite connections get WAL journaling, foreign keys ON and a busy timeout,
and open transactions with ``BEGIN IMMEDIATE`` so two writers never interleave
reads and writes of the audit chain head. PostgreSQL uses psycopg 3
(``postgresql+psycopg://``).
"""

from __future__ import annotations

import functools
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import event
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session

from ..errors import ConfigurationError, StorageError
from ._context import set_actor
from ._settings import get_settings

__all__ = [
    "MIGRATIONS_DIR",
    "alembic_config",
    "current_revision",
    "head_revision",
    "make_engine",
    "require_schema",
    "storage_errors",
    "unit_of_work",
    "upgrade_database",
]

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"
_SQLITE_BUSY_TIMEOUT_MS = 30_000  # writers queue behind each other instead of failing at once


def _safe(url: str | sa.URL) -> str:
    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # noqa: BLE001 - only for messages
        return "<unparsable URL>"


# Driver messages (SQLite, psycopg) that say why the database refused, lower case.
_UNREACHABLE = ("connection refused", "could not connect", "connection failed",
                "unable to open database file", "server closed the connection",
                "connection timeout", "timeout expired", "name or service not known",
                "the database system is", "terminating connection")
_FULL = ("database or disk is full", "no space left", "disk full", "file too large",
         "could not extend file")
_READ_ONLY = ("readonly database", "read-only", "read only")
_IO = ("disk i/o error", "input/output error")


def _sqlite_not_writable(url) -> bool:
    """An existing SQLite file that cannot be written, or whose folder cannot (journal, WAL)."""
    url = make_url(url)
    if url.get_backend_name() != "sqlite" or url.database in (None, "", ":memory:"):
        return False
    path = Path(url.database).expanduser()
    return path.exists() and not (os.access(path, os.W_OK) and os.access(path.parent, os.W_OK))


def _storage_error(exc: sa.exc.DBAPIError, url) -> StorageError | None:
    """The :class:`StorageError` for a driver failure; None if it is not about storage."""
    lines = str(exc.orig).strip().splitlines() or [type(exc.orig).__name__]
    detail = lines[0].strip().rstrip(".")
    low = str(exc.orig).lower()
    where = f"database {_safe(url)}"
    if any(k in low for k in _READ_ONLY) or _sqlite_not_writable(url):
        return StorageError(f"{where} is read-only ({detail}); the transaction was rolled back, "
                            "nothing was written")
    if any(k in low for k in _FULL):
        return StorageError(f"{where} is out of space ({detail}); the transaction was rolled "
                            "back, nothing was written")
    if any(k in low for k in _IO):
        return StorageError(f"{where}: the disk refused a write ({detail}: full, file too large "
                            "or failing); the transaction was rolled back, nothing was written")
    if any(k in low for k in _UNREACHABLE):
        return StorageError(f"cannot reach {where} ({detail}); check EXOTRACE_DATABASE_URL, that "
                            "the server runs, or that the file and its folder are accessible")
    if isinstance(exc, sa.exc.OperationalError):
        return StorageError(f"{where} failed ({detail}); the transaction was rolled back")
    return None


@contextmanager
def storage_errors(url) -> Iterator[None]:
    """Turn the driver's storage failures (down, full, read-only, I/O) into StorageError.

    The one place where SQLAlchemy's OperationalError (and a read-only
    transaction's InternalError) enter the error tree; constraint violations
    and programming errors pass through unchanged.
    """
    try:
        yield
    except (sa.exc.OperationalError, sa.exc.InternalError) as exc:
        mapped = _storage_error(exc, url)
        if mapped is None:
            raise
        raise mapped from None


def _configure_sqlite(engine: sa.Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn, _record):
        # Let SQLAlchemy (not the driver) emit BEGIN, so we can make it IMMEDIATE
        # and savepoints work.
        dbapi_conn.isolation_level = None
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA foreign_keys=ON")
        cur.execute(f"PRAGMA busy_timeout={_SQLITE_BUSY_TIMEOUT_MS}")
        if engine.url.database not in (None, "", ":memory:"):
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=NORMAL")
        cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn):
        conn.exec_driver_sql("BEGIN IMMEDIATE")


def make_engine(url: str | None = None, **kwargs) -> sa.Engine:
    """An engine for ``url`` (default: ``EXOTRACE_DATABASE_URL`` or the SQLite file).

    Raises
    ------
    ConfigurationError
        The URL cannot be parsed or its driver is not installed.
    """
    url = url or get_settings().resolved_database_url
    try:
        parsed = make_url(url)
    except Exception as exc:  # noqa: BLE001
        raise ConfigurationError(f"database URL {url!r} is not valid: {exc}") from None
    if parsed.drivername in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+psycopg")  # the driver exotrace ships with
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).expanduser().parent.mkdir(parents=True, exist_ok=True)
        kwargs.setdefault("connect_args", {}).setdefault("timeout", _SQLITE_BUSY_TIMEOUT_MS / 1000)
    elif parsed.get_backend_name() == "postgresql":
        kwargs.setdefault("pool_pre_ping", True)
        # The web server holds one connection per request in flight (up to its
        # threadpool's 40): keep 20 open rather than close and reopen (a new
        # server process each, ~5-10 ms) every connection beyond the default 5.
        kwargs.setdefault("pool_size", 20)
        kwargs.setdefault("max_overflow", 20)
        # JIT compilation costs tens of ms per query and is triggered by the large
        # row estimates of recursive CTEs; short OLTP queries never gain from it.
        if "options" not in parsed.query:
            kwargs.setdefault("connect_args", {}).setdefault("options", "-c jit=off")
    else:
        raise ConfigurationError(
            f"database URL {_safe(parsed)}: only sqlite:/// and postgresql+psycopg:// are supported")
    # Errors must never echo bound values (a password hash in a too-long row, say).
    kwargs.setdefault("hide_parameters", True)
    try:
        engine = sa.create_engine(parsed, **kwargs)
    except Exception as exc:  # noqa: BLE001
        raise ConfigurationError(f"cannot use database {_safe(parsed)}: {exc}") from None
    if parsed.get_backend_name() == "sqlite":
        _configure_sqlite(engine)
    return engine


def alembic_config(connection: sa.Connection | None = None) -> Config:
    """Alembic configuration pointing at the migrations shipped inside the package."""
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    if connection is not None:
        cfg.attributes["connection"] = connection
    return cfg


@functools.cache
def head_revision() -> str:
    """Latest revision shipped with this installation (cached: the scripts do not change)."""
    return ScriptDirectory.from_config(alembic_config()).get_current_head()


def current_revision(engine: sa.Engine) -> str | None:
    """The schema revision stored in the database, None for an empty database."""
    with storage_errors(engine.url), engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def _create_private_sqlite_file(url: sa.URL) -> None:
    """A new SQLite database file is readable and writable by its owner only (0600).

    SQLite gives its -wal and -shm files the main file's permissions.
    """
    if url.get_backend_name() != "sqlite" or url.database in (None, "", ":memory:") \
            or url.database.startswith("file:"):
        return
    path = Path(url.database).expanduser()
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))


def upgrade_database(engine: sa.Engine, revision: str = "head") -> tuple[str | None, str]:
    """Create or migrate the schema; returns (revision before, revision after)."""
    _create_private_sqlite_file(engine.url)
    before = current_revision(engine)
    with storage_errors(engine.url), engine.begin() as conn:
        command.upgrade(alembic_config(conn), revision)
    return before, current_revision(engine)


def require_schema(engine: sa.Engine) -> None:
    """Raise ConfigurationError unless the database schema is at the latest revision."""
    url = engine.url
    if (url.get_backend_name() == "sqlite" and url.database not in (None, "", ":memory:")
            and not url.database.startswith("file:") and not os.path.exists(url.database)):
        # Checked before connecting: SQLite would create an empty file, and a
        # reading command must not leave one behind.
        raise ConfigurationError(
            f"database file {url.database} does not exist; run exotrace db upgrade")
    current = current_revision(engine)
    head = head_revision()
    if current is None:
        raise ConfigurationError(
            f"database {_safe(engine.url)} has no exotrace schema; run exotrace db upgrade")
    if current != head:
        raise ConfigurationError(
            f"database {_safe(engine.url)} is at schema {current}, this exotrace needs {head}; "
            "run exotrace db upgrade")


@contextmanager
def unit_of_work(engine: sa.Engine, *, actor=None, check_schema: bool = True) -> Iterator[Session]:
    """A session whose transaction commits on success and rolls back on any error.

    Parameters
    ----------
    engine : Engine
        From :func:`make_engine`.
    actor : User or Actor, optional
        The user the writes are attributed to (can also be set later with
        :func:`exotrace.records.set_actor`).
    check_schema : bool
        Refuse (ConfigurationError) a database without the current schema.
    """
    if check_schema:
        require_schema(engine)
    session = Session(engine, expire_on_commit=False)
    if actor is not None:
        set_actor(session, actor)
    try:
        with storage_errors(engine.url):
            try:
                yield session
                session.commit()
            except BaseException:
                _rollback_quietly(session)
                raise
    finally:
        session.close()


def open_session(engine: sa.Engine) -> Session:
    """A session for the transactions of one web request (see :func:`transaction`); close it
    when the request ends. It checks out a connection once, at its first statement."""
    return Session(engine, expire_on_commit=False)


@contextmanager
def transaction(session: Session, *, commit: bool | None = True) -> Iterator[Session]:
    """One transaction on an open ``session``: on success committed (``commit`` True),
    rolled back (False: reads) or left open for the caller to continue (None); rolled
    back on any error. The session stays open.

    A transaction the session already began (reading the caller's account, say)
    is the one continued here.
    """
    with storage_errors(session.get_bind().url):
        try:
            yield session
            if commit:
                session.commit()
            elif commit is not None:
                session.rollback()
        except BaseException:
            _rollback_quietly(session)
            raise


def _rollback_quietly(session: Session) -> None:
    # A connection that died (server down, disk gone) cannot roll back either;
    # the server discards the transaction, and the first error is the one to report.
    try:
        session.rollback()
    except sa.exc.DBAPIError:
        pass
