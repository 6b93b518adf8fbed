"""Throw-away databases for the records benchmarks (SQLite file or PostgreSQL database)."""

from __future__ import annotations

import os
import tempfile
import uuid
from contextlib import contextmanager
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.engine import make_url

PG_ADMIN_URL = os.environ.get("EXOTRACE_TEST_POSTGRES_URL",
                              "postgresql+psycopg://postgres@127.0.0.1:5432/test")


def postgres_available() -> bool:
    try:
        eng = sa.create_engine(PG_ADMIN_URL)
        with eng.connect():
            pass
        eng.dispose()
        return True
    except Exception:  # noqa: BLE001 - just "not available"
        return False


@contextmanager
def throwaway_database(backend: str):
    """Yield the URL of a fresh, migrated database; remove it afterwards."""
    from exotrace.records import make_engine, upgrade_database

    if backend == "sqlite":
        with tempfile.TemporaryDirectory(prefix="exotrace-bench-") as tmp:
            url = f"sqlite:///{Path(tmp) / 'bench.db'}"
            eng = make_engine(url)
            upgrade_database(eng)
            eng.dispose()
            yield url
        return
    name = f"exotrace_b_{uuid.uuid4().hex[:10]}"
    admin = sa.create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    url = make_url(PG_ADMIN_URL).set(database=name).render_as_string(hide_password=False)
    try:
        eng = make_engine(url)
        upgrade_database(eng)
        eng.dispose()
        yield url
    finally:
        with admin.connect() as conn:
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.dispose()


@contextmanager
def cloned_database(template_url: str):
    """Yield a copy of the database at ``template_url`` (file copy / CREATE DATABASE TEMPLATE)."""
    import shutil

    url = make_url(template_url)
    if url.get_backend_name() == "sqlite":
        with tempfile.TemporaryDirectory(prefix="exotrace-clone-") as tmp:
            target = Path(tmp) / "clone.db"
            shutil.copyfile(url.database, target)
            yield f"sqlite:///{target}"
        return
    name = f"exotrace_b_{uuid.uuid4().hex[:10]}"
    admin = sa.create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.exec_driver_sql(f'CREATE DATABASE "{name}" TEMPLATE "{url.database}"')
    try:
        yield url.set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.dispose()
