"""Database fixtures every test that touches the records layer uses.

* ``db_url`` (session scope) is parametrized over ``sqlite`` (a temporary
  file) and ``postgresql``. PostgreSQL runs when ``EXOTRACE_TEST_POSTGRES_URL``
  is set or a server answers at 127.0.0.1:5432; without either it is skipped,
  but when ``EXOTRACE_TEST_POSTGRES_URL`` is set and the server cannot be
  reached the tests fail (CI must not pass by skipping). A fresh throw-away
  database ``exotrace_t_<random>`` is created on that server for the test
  session with the production two-role setup: roles ``exotrace_o_<random>``
  (owner: runs the migrations) and ``exotrace_a_<random>`` (application:
  append-only on the audit trail and signatures, see ``exotrace db roles``);
  ``db_url`` connects as the application role, :func:`owner_url` gives the
  owner's URL. Database and roles are dropped at the end. Tables are never
  created in the server's ``test`` database itself.
* ``signing_key_file`` (session, autouse): ``EXOTRACE_SIGNING_KEY_FILE`` points
  at a per-session key in a temporary directory, never the user's own key.
* ``engine``: an engine on ``db_url``.
* ``session``: each test runs in a transaction that is rolled back at the end
  (SQLAlchemy's "join an external transaction" recipe with
  ``join_transaction_mode="create_savepoint"``), so ``session.commit()`` in
  code under test only releases a savepoint.
* ``fresh_db_url``: an empty, migrated database of the same backend for one
  test that must really commit (CLI runs, concurrency).
* ``record_users``: one user per role, created through the services
  (``users["analyst"]`` ...), all with password :data:`TEST_PASSWORD`, which
  they have already set as their own (no forced change pending).

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
    "owner_url",
    "postgres_admin_url",
    "record_users",
    "session",
    "settle_first_passwords",
    "signing_key_file",
    "test_password_hash",
]

TEST_PASSWORD = "correct-horse-42"
_PG_DEFAULT = "postgresql+psycopg://postgres@127.0.0.1:5432/test"


#: Application-role URL -> owner-role URL of the PostgreSQL test databases.
_OWNER_URLS: dict[str, str] = {}


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


def _unusable_postgres(reason: str) -> None:
    """Skip when nobody asked for PostgreSQL; fail when EXOTRACE_TEST_POSTGRES_URL asks for it."""
    if os.environ.get("EXOTRACE_TEST_POSTGRES_URL"):
        pytest.fail(f"EXOTRACE_TEST_POSTGRES_URL is set but PostgreSQL is not usable: {reason}",
                    pytrace=False)
    pytest.skip(f"no PostgreSQL server (set EXOTRACE_TEST_POSTGRES_URL): {reason}")


def owner_url(url: str) -> str:
    """The URL that connects to the test database ``url`` as its owner role.

    SQLite has no roles: the same URL.
    """
    return _OWNER_URLS.get(url, url)


def _role_url(admin_url: str, database: str, role: str) -> str:
    return make_url(admin_url).set(database=database, username=role, password=None) \
        .render_as_string(hide_password=False)


def _create_postgres(admin_url: str, name: str) -> tuple[str, str, callable, callable]:
    """Database ``name`` owned by a fresh owner role, with a fresh application role."""
    from exotrace.records import grant_roles

    tag = uuid.uuid4().hex[:12]
    owner, app = f"exotrace_o_{tag}", f"exotrace_a_{tag}"
    admin = sa.create_engine(admin_url, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.exec_driver_sql(f"CREATE ROLE {owner} LOGIN")
            conn.exec_driver_sql(f"CREATE ROLE {app} LOGIN")
            conn.exec_driver_sql(f'CREATE DATABASE "{name}" OWNER {owner}')
    except sa.exc.OperationalError as exc:
        admin.dispose()
        _unusable_postgres(str(exc.orig).strip().splitlines()[0])

    def drop() -> None:
        with admin.connect() as conn:
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            conn.exec_driver_sql(f"DROP ROLE IF EXISTS {app}")
            conn.exec_driver_sql(f"DROP ROLE IF EXISTS {owner}")
        admin.dispose()

    def grant() -> None:
        # As the server admin on the new database, exactly as `exotrace db roles` does.
        eng = sa.create_engine(make_url(admin_url).set(database=name),
                               isolation_level="AUTOCOMMIT")
        try:
            with eng.connect() as conn:
                grant_roles(conn, owner, app)
        finally:
            eng.dispose()

    return _role_url(admin_url, name, owner), _role_url(admin_url, name, app), drop, grant


def _create_database(kind: str, tmp_path_factory) -> tuple[str, callable]:
    """Create and migrate an empty database; returns (url, drop function).

    On PostgreSQL the migrations run as the owner role and the URL returned
    connects as the application role.
    """
    from exotrace.records import make_engine, upgrade_database

    grant = None
    if kind == "sqlite":
        path = tmp_path_factory.mktemp("db") / "exotrace.db"
        url = migrate_url = f"sqlite:///{path}"
        drop = lambda: None  # noqa: E731 - the tmp dir goes with pytest's cleanup
    else:
        admin_url = postgres_admin_url()
        if admin_url is None:
            _unusable_postgres("nothing answers at 127.0.0.1:5432")
        name = f"exotrace_t_{uuid.uuid4().hex[:12]}"
        migrate_url, url, drop, grant = _create_postgres(admin_url, name)
        _OWNER_URLS[url] = migrate_url

    engine = make_engine(migrate_url)
    try:
        upgrade_database(engine)  # migrations run in the tests, on a fresh database
    finally:
        engine.dispose()
    if grant is not None:
        grant()
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
    owner = make_url(owner_url(fresh_db_template)).username
    admin = sa.create_engine(postgres_admin_url(), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        # The copy keeps the template's owner, grants and default privileges.
        conn.exec_driver_sql(
            f'CREATE DATABASE "{name}" TEMPLATE "{template.database}" OWNER {owner}')
    url = template.set(database=name).render_as_string(hide_password=False)
    _OWNER_URLS[url] = make_url(owner_url(fresh_db_template)).set(database=name) \
        .render_as_string(hide_password=False)
    try:
        yield url
    finally:
        _OWNER_URLS.pop(url, None)
        with admin.connect() as conn:
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.dispose()


@pytest.fixture(scope="session", autouse=True)
def signing_key_file(tmp_path_factory) -> Iterator[str]:
    """A per-session signing key (EXOTRACE_SIGNING_KEY_FILE), created at the first signature."""
    path = tmp_path_factory.mktemp("keys") / "signing.key"
    previous = os.environ.get("EXOTRACE_SIGNING_KEY_FILE")
    os.environ["EXOTRACE_SIGNING_KEY_FILE"] = str(path)
    yield str(path)
    if previous is None:
        os.environ.pop("EXOTRACE_SIGNING_KEY_FILE", None)
    else:
        os.environ["EXOTRACE_SIGNING_KEY_FILE"] = previous


@pytest.fixture(scope="session")
def test_password_hash() -> str:
    """argon2id hash of TEST_PASSWORD at a low cost (tests only: argon2 is slow on purpose
    and verification cost is read from the hash, so each login stays ~1 ms)."""
    from argon2 import PasswordHasher

    return PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1).hash(TEST_PASSWORD)


@pytest.fixture
def record_users(session, test_password_hash) -> dict:
    """One active user per role (admin1 bootstraps, then adds the others).

    Accounts an admin creates must change their password at the first
    sign-in; here each user has done so (written as that user, audited), the
    way :func:`exotrace.records.change_password` leaves an account.
    """
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
    settle_first_passwords(session, users.values())
    return users


def settle_first_passwords(session, users) -> None:
    """Leave each account as :func:`exotrace.records.change_password` would.

    Accounts an admin creates must change their password at the first sign-in;
    tests that are not about that flow mark it done (written as that user,
    audited), so the account row still matches its last audited image.
    """
    from exotrace.records import acting_as

    for user in users:
        if user.must_change_password:
            with acting_as(session, user):
                user.must_change_password = False
                session.flush()
