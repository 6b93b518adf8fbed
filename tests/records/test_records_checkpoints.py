"""Audit checkpoints and the database-protection commands, through the CLI and the services."""

from __future__ import annotations

import io
import json
import os
import stat
from datetime import timedelta

import pytest

from _db_fixtures import owner_url
from exotrace.cli.main import main
from exotrace.records import (
    make_engine,
    unit_of_work,
    write_checkpoint_if_due,
)


@pytest.fixture
def cli(fresh_db_url, monkeypatch, capsys):
    from argon2 import PasswordHasher

    from exotrace.records import _auth

    monkeypatch.setattr(_auth, "_hasher", PasswordHasher(time_cost=1, memory_cost=1024,
                                                         parallelism=1))
    monkeypatch.setenv("EXOTRACE_DATABASE_URL", fresh_db_url)
    for var in ("EXOTRACE_USER", "EXOTRACE_TOKEN", "EXOTRACE_CHECKPOINT_KEY",
                "EXOTRACE_CHECKPOINT_DIR"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("EXOTRACE_PASSWORD", "chief-key-2049")
    monkeypatch.setenv("EXOTRACE_NEW_PASSWORD", "chief-key-2049")

    def run(*args):
        monkeypatch.setattr("sys.stdin", io.StringIO(""))
        capsys.readouterr()
        code = main([str(a) for a in args])
        out, err = capsys.readouterr()
        return code, out, err

    assert run("user", "add", "boss", "--role", "admin")[0] == 0
    return run


def test_keygen_writes_a_private_key_for_its_owner_only_and_never_overwrites(cli, tmp_path):
    key = tmp_path / "cp.key"
    code, out, _ = cli("audit", "keygen", "-o", key, "--json")
    assert code == 0 and json.loads(out)["public_key"] == f"{key}.pub"
    assert stat.S_IMODE(os.stat(key).st_mode) == 0o600
    assert b"PRIVATE KEY" in key.read_bytes() and b"PUBLIC KEY" in (tmp_path / "cp.key.pub"
                                                                     ).read_bytes()
    before = key.read_bytes()
    code, _, err = cli("audit", "keygen", "-o", key)
    assert code == 11 and "already exists; not overwritten" in err
    assert key.read_bytes() == before


def test_checkpoint_then_verify_and_tampered_or_foreign_checkpoints(cli, tmp_path):
    key, cps = tmp_path / "cp.key", tmp_path / "cps"
    cli("audit", "keygen", "-o", key)
    code, out, err = cli("audit", "checkpoint", "--key", key, "--out", cps, "--print", "--json")
    assert code == 0, err
    first = json.loads(out)
    assert first["seq"] >= 1
    assert f"entry #{first['seq']} hash {first['head_hash']}" in first["logbook"]
    cli("donor", "add", "D1", "--age-band", "30-39", "--sex", "male", "--user", "boss")
    code, out, _ = cli("audit", "checkpoint", "--key", key, "--out", cps, "--json")
    second = json.loads(out)
    assert second["seq"] > first["seq"] and second["file"] != first["file"]
    assert len(list(cps.glob("*.json"))) == 2
    code, out, _ = cli("audit", "checkpoint", "--key", key, "--out", cps, "--print")
    assert code == 0 and out.splitlines()[-1].startswith("exotrace checkpoint ")
    assert second["head_hash"] in out.splitlines()[-1]  # nothing written since: same head
    code, out, err = cli("audit", "verify", "--checkpoints", cps, "--public-key", f"{key}.pub",
                         "--json")
    assert code == 0, err
    assert json.loads(out)["checkpoints_checked"] == 3

    # Another key's public half: every checkpoint's signature fails.
    other = tmp_path / "other.key"
    cli("audit", "keygen", "-o", other)
    code, out, err = cli("audit", "verify", "--checkpoints", cps, "--public-key",
                         f"{other}.pub", "--json")
    assert code == 10
    assert [f["kind"] for f in json.loads(out)["findings"]] == ["checkpoint_signature"] * 3

    # Editing a checkpoint (to hide a truncation, say) breaks its signature.
    path = next(p for p in cps.glob("*.json") if json.loads(p.read_text())["seq"] ==
                second["seq"])
    doc = json.loads(path.read_text())
    doc["seq"] = first["seq"]
    path.write_text(json.dumps(doc))
    code, out, _ = cli("audit", "verify", "--checkpoints", cps, "--public-key", f"{key}.pub",
                       "--json")
    assert code == 10
    assert [f["kind"] for f in json.loads(out)["findings"]] == ["checkpoint_signature"]
    (cps / "junk.json").write_text("{not json")
    code, out, _ = cli("audit", "verify", "--checkpoints", cps, "--public-key", f"{key}.pub",
                       "--json")
    kinds = sorted(f["kind"] for f in json.loads(out)["findings"])
    assert code == 10 and kinds == ["checkpoint_invalid", "checkpoint_signature"]


def test_checkpoint_of_another_database_is_reported(cli, tmp_path, fresh_db_url, monkeypatch):
    key, cps = tmp_path / "cp.key", tmp_path / "cps"
    cli("audit", "keygen", "-o", key)
    cli("audit", "checkpoint", "--key", key, "--out", cps)
    other = f"sqlite:///{tmp_path / 'other.db'}"
    monkeypatch.setenv("EXOTRACE_DATABASE_URL", other)
    cli("db", "upgrade")
    cli("user", "add", "boss", "--role", "admin")
    code, out, _ = cli("audit", "verify", "--checkpoints", cps, "--public-key", f"{key}.pub",
                       "--json")
    assert code == 10
    assert [f["kind"] for f in json.loads(out)["findings"]] == ["checkpoint_database"]


def test_verify_with_checkpoints_needs_the_public_key(cli, tmp_path):
    code, _, err = cli("audit", "verify", "--checkpoints", tmp_path)
    assert code == 2 and "--public-key" in err


def test_write_commands_leave_a_checkpoint_when_due(cli, tmp_path, monkeypatch, fresh_db_url):
    key, cps = tmp_path / "cp.key", tmp_path / "cps"
    cli("audit", "keygen", "-o", key)
    monkeypatch.setenv("EXOTRACE_CHECKPOINT_KEY", str(key))
    monkeypatch.setenv("EXOTRACE_CHECKPOINT_DIR", str(cps))
    monkeypatch.setenv("EXOTRACE_CHECKPOINT_INTERVAL_S", "3600")
    code, _, err = cli("donor", "add", "D1", "--age-band", "30-39", "--sex", "male",
                       "--user", "boss")
    assert code == 0 and "checkpoint written" in err
    code, _, err = cli("donor", "add", "D2", "--age-band", "30-39", "--sex", "male",
                       "--user", "boss")
    assert code == 0 and "checkpoint written" not in err  # the first one is still fresh
    assert len(list(cps.glob("*.json"))) == 1
    engine = make_engine(fresh_db_url)
    try:
        with unit_of_work(engine) as s:
            # Interval boundary: due exactly when the newest is as old as the interval.
            newest = json.loads(next(cps.glob("*.json")).read_text())["created_at"]
            from datetime import datetime

            made = datetime.fromisoformat(newest)
            assert write_checkpoint_if_due(s, now=made + timedelta(seconds=3599)) is None
            assert write_checkpoint_if_due(s, now=made + timedelta(seconds=3600)) is not None
    finally:
        engine.dispose()
    assert len(list(cps.glob("*.json"))) == 2
    code, out, _ = cli("audit", "verify", "--checkpoints", cps, "--public-key", f"{key}.pub",
                       "--json")
    assert code == 0 and json.loads(out)["checkpoints_checked"] == 2


def test_db_status_and_roles(cli, fresh_db_url, monkeypatch):
    code, out, _ = cli("db", "status", "--json")
    status = json.loads(out)
    pg = fresh_db_url.startswith("postgresql")
    assert code == 0 and status["protection_problems"] == []
    assert status["protected"] is (True if pg else None)  # SQLite: nothing to report on
    if not pg:
        code, _, err = cli("db", "roles", "--owner", "o", "--app", "a")
        assert code == 11 and "PostgreSQL only" in err
        return
    monkeypatch.setenv("EXOTRACE_DATABASE_URL", owner_url(fresh_db_url))
    code, out, _ = cli("db", "status", "--json")
    problems = json.loads(out)["protection_problems"]
    assert json.loads(out)["protected"] is False
    assert any("owns audit_entry" in p for p in problems)
    code, out, _ = cli("db", "roles", "--owner", "exo_owner", "--app", "exo_app",
                       "--print-sql")
    assert code == 0
    assert 'GRANT SELECT, INSERT ON public."audit_entry" TO "exo_app"' in out
    assert 'GRANT SELECT, INSERT ON public."signature" TO "exo_app"' in out
    assert "UPDATE" not in [line for line in out.splitlines() if '"audit_entry" TO' in line][0]
    code, _, err = cli("db", "roles", "--owner", "x", "--app", "x")
    assert code == 2 and "must differ" in err
    code, _, err = cli("db", "roles", "--owner", "Robert'); DROP", "--app", "y")
    assert code == 2 and "role name" in err


def test_db_roles_applied_by_a_superuser_protects_the_trail(cli, fresh_db_url, monkeypatch):
    if not fresh_db_url.startswith("postgresql"):
        pytest.skip("roles exist on PostgreSQL only")
    import uuid

    import sqlalchemy as sa
    from sqlalchemy.engine import make_url

    from _db_fixtures import postgres_admin_url
    from exotrace.records import protection_findings

    db = make_url(fresh_db_url).database
    admin_url = make_url(postgres_admin_url()).set(database=db)
    tag = uuid.uuid4().hex[:10]
    owner, app = f"exotrace_o_{tag}", f"exotrace_a_{tag}"
    monkeypatch.setenv("EXOTRACE_DATABASE_URL", admin_url.render_as_string(hide_password=False))
    try:
        code, out, err = cli("db", "roles", "--owner", owner, "--app", app, "--json")
        assert code == 0, err
        assert json.loads(out)["applied"] is True
        eng = sa.create_engine(admin_url.set(username=app, password=None))
        try:
            with eng.connect() as conn:
                assert protection_findings(conn) == []
                with pytest.raises(sa.exc.ProgrammingError, match="permission denied"):
                    conn.exec_driver_sql("DELETE FROM signature")
        finally:
            eng.dispose()
    finally:
        admin = sa.create_engine(admin_url, isolation_level="AUTOCOMMIT")
        try:
            with admin.connect() as conn:
                for role in (owner, app):
                    exists = conn.exec_driver_sql(
                        "SELECT 1 FROM pg_roles WHERE rolname = %(r)s", {"r": role}).scalar()
                    if exists:
                        conn.exec_driver_sql(f"REASSIGN OWNED BY {role} TO CURRENT_USER")
                        conn.exec_driver_sql(f"DROP OWNED BY {role}")
                        conn.exec_driver_sql(f"DROP ROLE {role}")
        finally:
            admin.dispose()
