"""The migrations create exactly the models' schema, with named constraints and PG triggers."""

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from exotrace.errors import ConfigurationError
from exotrace.records import (
    Base,
    current_revision,
    head_revision,
    make_engine,
    require_schema,
    unit_of_work,
)


def test_migrated_schema_matches_models(engine):
    assert current_revision(engine) == head_revision()
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn, opts={"compare_type": True}),
                                Base.metadata)
    assert diff == []


def test_constraints_follow_the_naming_convention(engine):
    insp = sa.inspect(engine)
    fks = {fk["name"] for fk in insp.get_foreign_keys("vial")}
    assert fks == {"fk_vial_lot_id_lot", "fk_vial_product_id_product"}
    uniques = {u["name"] for u in insp.get_unique_constraints("audit_entry")}
    assert "uq_audit_entry_prev_hash" in uniques
    indexes = {i["name"] for i in insp.get_indexes("lot_link")}
    assert {"ix_lot_link_parent_lot_id", "ix_lot_link_child_lot_id"} <= indexes


def test_empty_database_asks_for_upgrade(tmp_path):
    eng = make_engine(f"sqlite:///{tmp_path / 'empty.db'}")
    with pytest.raises(ConfigurationError, match="run exotrace db upgrade"):
        require_schema(eng)
    with pytest.raises(ConfigurationError, match="run exotrace db upgrade"):
        with unit_of_work(eng):
            pass
    eng.dispose()


def test_sqlite_pragmas(tmp_path):
    eng = make_engine(f"sqlite:///{tmp_path / 'p.db'}")
    with eng.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
    eng.dispose()


def test_bad_url_is_a_configuration_error():
    with pytest.raises(ConfigurationError, match="only sqlite"):
        make_engine("mysql://x@y/z")
    with pytest.raises(ConfigurationError, match="not valid"):
        make_engine("::not a url::")


def test_postgres_audit_table_is_append_only(session, record_users):
    if session.bind.dialect.name != "postgresql":
        pytest.skip("the append-only triggers exist on PostgreSQL only")
    # The application role has no UPDATE/DELETE/TRUNCATE right; the owner meets the
    # triggers (tests/records/test_records_attacks.py covers the owner).
    for sql in ("UPDATE audit_entry SET reason = 'x'", "DELETE FROM audit_entry",
                "TRUNCATE audit_entry"):
        with pytest.raises(sa.exc.DBAPIError, match="permission denied"):
            with session.begin_nested():
                session.connection().exec_driver_sql(sql)


def test_reading_a_missing_sqlite_file_creates_nothing(tmp_path):
    from exotrace.errors import ConfigurationError
    from exotrace.records import make_engine, unit_of_work

    path = tmp_path / "absent.db"
    engine = make_engine(f"sqlite:///{path}")
    with pytest.raises(ConfigurationError, match="does not exist; run exotrace db upgrade"):
        with unit_of_work(engine):
            pass
    engine.dispose()
    assert not path.exists()


def test_upgrade_to_0400_reaudits_existing_accounts(tmp_path, test_password_hash):
    """A database with users from before 0400: after the upgrade the accounts match the
    trail (sign-in works, verify is clean) and the old raw hash is hidden when read."""
    from datetime import UTC, datetime

    from _db_fixtures import TEST_PASSWORD
    from exotrace.records import (
        audit_entry_view,
        authenticate,
        upgrade_database,
        verify_records,
    )
    from exotrace.records import repositories as repo
    from exotrace.records._audit import append_audit_entries, canonical_json

    engine = make_engine(f"sqlite:///{tmp_path / 'old.db'}")
    try:
        upgrade_database(engine, "0200")
        created = datetime(2025, 1, 2, 3, 4, 5, 678901, tzinfo=UTC)
        row = {"id": 1, "username": "boss", "full_name": "B. Oss", "role": "admin",
               "password_hash": test_password_hash, "active": True}
        with engine.begin() as conn:
            conn.execute(sa.text(
                "INSERT INTO user_account (id, username, full_name, role, password_hash, "
                "active, created_at) VALUES (:id, :username, :full_name, :role, "
                ":password_hash, :active, :created_at)"),
                {**row, "created_at": created.replace(tzinfo=None)})
            # The image as the code before 0400 wrote it: the raw hash included.
            old_image = canonical_json({**row, "created_at": created.isoformat()})
            append_audit_entries(conn, [{"table_name": "user_account", "record_pk": "1",
                                         "action": "create", "before_json": None,
                                         "after_json": old_image}],
                                 actor_id=None, actor_name="bootstrap", reason=None)
        upgrade_database(engine)
        with unit_of_work(engine) as s:
            assert verify_records(s).ok
            assert authenticate(s, "boss", TEST_PASSWORD).username == "boss"
            entries = repo.audit_entries(s, table_name="user_account", record_pk="1")
            assert [e.actor_name for e in entries] == ["bootstrap", "schema upgrade 0400"]
            for e in entries:
                assert test_password_hash not in str(audit_entry_view(e))
            assert test_password_hash in entries[0].after_json  # stored as written, hashed
    finally:
        engine.dispose()
