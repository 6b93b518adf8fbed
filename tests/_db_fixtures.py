"""Database fixtures every test that touches the records layer uses.

* ``db_url`` (session scope) is parametrized over ``sqlite`` (a temporary
  file) and ``postgresql``. PostgreSQL runs when ``EXOTRACE_TEST_POSTGRES_URL``
  is set or a server answers at 127.0.0.1:5432 (skipped otherwise): a fresh
  throw-away database ``exotrace_t_<random>`` is created on that server for
  the test session, migrated with Alembic, and dropped at the end. Tables are
  never created in the server's ``test`` database itself.
* ``engine``: an engine on ``db_url``.
* ``session``: each test runs in a transaction that is rolled back at the end
  (SQLAlchemy's "join an external transaction" recipe with
  ``join_transaction_mode="create_savepoint"``), so ``session.commit()`` in
  code under test only releases a savepoint.
* ``fresh_db_url``: an empty, migrated database of the same backend for one
  test that must really commit (CLI runs, concurrency).
* ``record_users``: one user per role, created through the services
  (``users["analyst"]`` ...), all with password :data:`TEST_PASSWORD`.

Use them from any test module; every test using ``session`` runs on both
backends.
"""

from __future__ import annotations

import os
import shutil
import socket
import uuid
from collections.abc import Iterator

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session

__all__ = [
    "TEST_PASSWORD",
    "db_url",
    "engine",
    "fresh_db_template",
    "fresh_db_url",
    "postgres_admin_url",
    "record_users",
    "session",
    "test_password_hash",
]

TEST_PASSWORD = "correct-horse-42"
_PG_DEFAULT = "postgresql+psycopg://postgres@127.0.0.1:5432/test"


def postgres_admin_url() -> str | None:
    """URL of the PostgreSQL server used to create throw-away databases, or None."""
    url = os.environ.get("EXOTRACE_TEST_POSTGRES_URL")
    if url:
        return url
    try:
        socket.create_connection(("127.0.0.1", 5432), timeout=0.5).close()
    except OSError:
        return None
    return _PG_DEFAULT


def _create_database(kind: str, tmp_path_factory) -> tuple[str, callable]:
    """Create and migrate an empty database; returns (url, drop function)."""
    from exotrace.records import make_engine, upgrade_database

    if kind == "sqlite":
        path = tmp_path_factory.mktemp("db") / "exotrace.db"
        url = f"sqlite:///{path}"
        drop = lambda: None  # noqa: E731 - the tmp dir goes with pytest's cleanup
    else:
        admin_url = postgres_admin_url()
        if admin_url is None:
            pytest.skip("no PostgreSQL server (set EXOTRACE_TEST_POSTGRES_URL)")
        name = f"exotrace_t_{uuid.uuid4().hex[:12]}"
        admin = sa.create_engine(admin_url, isolation_level="AUTOCOMMIT")
        try:
            with admin.connect() as conn:
                conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
        except sa.exc.OperationalError as exc:
            admin.dispose()
            pytest.skip(f"PostgreSQL not usable: {str(exc.orig).splitlines()[0]}")
        url = make_url(admin_url).set(database=name).render_as_string(hide_password=False)

        def drop() -> None:
            with admin.connect() as conn:
                conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            admin.dispose()

    engine = make_engine(url)
    try:
        upgrade_database(engine)  # migrations run in the tests, on a fresh database
    finally:
        engine.dispose()
    return url, drop


@pytest.fixture(scope="session", params=["sqlite", "postgresql"])
def db_url(request, tmp_path_factory) -> Iterator[str]:
    url, drop = _create_database(request.param, tmp_path_factory)
    yield url
    drop()


@pytest.fixture(scope="session")
def engine(db_url) -> Iterator[sa.Engine]:
    from exotrace.records import make_engine

    eng = make_engine(db_url)
    yield eng
    eng.dispose()


@pytest.fixture
def session(engine) -> Iterator[Session]:
    conn = engine.connect()
    outer = conn.begin()
    s = Session(bind=conn, join_transaction_mode="create_savepoint", expire_on_commit=False)
    try:
        yield s
    finally:
        s.close()
        outer.rollback()
        conn.close()


@pytest.fixture(scope="session")
def fresh_db_template(db_url, tmp_path_factory) -> Iterator[str]:
    """A migrated, never-used database that fresh databases are copied from."""
    kind = make_url(db_url).get_backend_name()
    url, drop = _create_database("sqlite" if kind == "sqlite" else "postgresql", tmp_path_factory)
    yield url
    drop()


@pytest.fixture
def fresh_db_url(fresh_db_template, tmp_path) -> Iterator[str]:
    """An empty, migrated database for one test (a copy of the template: fast)."""
    template = make_url(fresh_db_template)
    if template.get_backend_name() == "sqlite":
        target = tmp_path / "fresh.db"
        shutil.copyfile(template.database, target)
        yield f"sqlite:///{target}"
        return
    name = f"exotrace_t_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(postgres_admin_url(), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.exec_driver_sql(f'CREATE DATABASE "{name}" TEMPLATE "{template.database}"')
    try:
        yield template.set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.dispose()


@pytest.fixture(scope="session")
def test_password_hash() -> str:
    """argon2id hash of TEST_PASSWORD at a low cost (tests only: argon2 is slow on purpose
    and verification cost is read from the hash, so each login stays ~1 ms)."""
    from argon2 import PasswordHasher

    return PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1).hash(TEST_PASSWORD)


@pytest.fixture
def record_users(session, test_password_hash) -> dict:
    """One active user per role (admin1 bootstraps, then adds the others)."""
    from exotrace.records import Role, add_user

    admin = add_user(session, "admin1", Role.ADMIN, password_hash=test_password_hash,
                     full_name="Ada Admin")
    users = {"admin": admin}
    for role in Role:
        if role is not Role.ADMIN:
            users[role.value] = add_user(session, f"{role.value}1", role,
                                         password_hash=test_password_hash,
                                         full_name=f"{role.value.title()} One", acting=admin)
    users["analyst2"] = add_user(session, "analyst2", Role.ANALYST,
                                 password_hash=test_password_hash, acting=admin)
    users["qa2"] = add_user(session, "qa2", Role.QA, password_hash=test_password_hash,
                            acting=admin)
    return users
