"""Database down, disk full, read-only database: one line, exit code 12, nothing half-written.

Each fault hits a writing command run as its own process (the way a user
meets it); afterwards the audit chain verifies and no table gained or lost a
row. Disk full is simulated with ``RLIMIT_FSIZE`` (writes beyond the limit fail
with EFBIG) everywhere, and with a real full tmpfs when the tests run as root;
read-only is a read-only mount (root) or file modes (other users), and
PostgreSQL's ``default_transaction_read_only``.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
from contextlib import contextmanager
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import make_url

from _db_fixtures import TEST_PASSWORD, owner_url
from exotrace.cli.main import main
from exotrace.errors import StorageError
from exotrace.records import make_engine, unit_of_work, verify_audit_trail
from exotrace.records._backup import table_row_counts

LOT = "L-D-001-1"  # the lot of the ``populated`` fixture
_RUN_CLI = ("import resource, signal, sys\n"
            "limit = int(sys.argv[1])\n"
            "if limit:\n"
            "    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # EFBIG instead of a kill\n"
            "    resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))\n"
            "from exotrace.cli.main import main\n"
            "sys.exit(main(sys.argv[2:]))\n")


def _cli_process(url: str, *args: str, fsize_limit: int = 0) -> subprocess.CompletedProcess:
    env = {**os.environ, "EXOTRACE_DATABASE_URL": url, "EXOTRACE_PASSWORD": TEST_PASSWORD,
           "EXOTRACE_USER": "analyst1"}
    env.pop("EXOTRACE_DEBUG", None)
    return subprocess.run([sys.executable, "-c", _RUN_CLI, str(fsize_limit), *args], env=env,
                          capture_output=True, text=True, timeout=300, check=False)


def _state(url: str) -> tuple[dict, bool, int]:
    """(rows per table, audit chain ok, audit entries) of the database at ``url``."""
    engine = make_engine(url)
    counts = table_row_counts(engine)
    with unit_of_work(engine) as s:
        report = verify_audit_trail(s)
    engine.dispose()
    return counts, report.ok, report.entries_checked


def _assert_one_line_refusal(proc: subprocess.CompletedProcess, *words: str) -> None:
    assert proc.returncode == StorageError.exit_code, proc.stderr
    assert proc.stderr.count("\n") == 1 and "Traceback" not in proc.stderr, proc.stderr
    assert proc.stderr.startswith("exotrace: error: ")
    assert any(w in proc.stderr for w in words), proc.stderr


def _sqlite_only(url: str) -> Path:
    if make_url(url).get_backend_name() != "sqlite":
        pytest.skip("a file-system fault of SQLite")
    return Path(make_url(url).database)


@contextmanager
def _tmpfs(path: Path, size_kib: int):
    """A tmpfs of ``size_kib`` at ``path`` (root only; skips where mounting is refused)."""
    path.mkdir(parents=True, exist_ok=True)
    if os.geteuid() != 0 or shutil.which("mount") is None:
        pytest.skip("mounting a tmpfs needs root")
    made = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size_kib}k", "tmpfs",
                           str(path)], capture_output=True, check=False)
    if made.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs: {made.stderr.decode().strip()}")
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], check=False)


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]  # free once the socket closes: nothing listens there


@pytest.mark.parametrize("args", [
    ["donor", "add", "DX", "--age-band", "30-39", "--sex", "male", "--user", "analyst1"],
    ["lot", "list"],
    ["audit", "verify"],
    ["db", "upgrade"],
])
def test_database_down_is_one_line_and_exit_12(args, monkeypatch, capsys):
    url = f"postgresql+psycopg://postgres@127.0.0.1:{_closed_port()}/exotrace"
    monkeypatch.setenv("EXOTRACE_DATABASE_URL", url)
    monkeypatch.setenv("EXOTRACE_PASSWORD", TEST_PASSWORD)
    assert main(args) == StorageError.exit_code
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Connection refused" in err
    assert err.startswith(f"exotrace: error: cannot reach database {url}")


def test_disk_full_by_file_size_limit_writes_nothing(populated):
    _sqlite_only(populated)
    before = _state(populated)
    # 64 KiB: far below what 2000 audited vials need in the write-ahead log, so a
    # write fails with EFBIG part-way through the transaction.
    proc = _cli_process(populated, "vial", "create", "--lot", LOT, "--count", "2000",
                        fsize_limit=64 * 1024)
    _assert_one_line_refusal(proc, "the disk refused a write", "out of space")
    assert "nothing was written" in proc.stderr
    after = _state(populated)
    assert after == before and after[1] is True
    # Without the limit the same command works: the database was left usable.
    ok = _cli_process(populated, "vial", "create", "--lot", LOT, "--count", "2000")
    assert ok.returncode == 0, ok.stderr
    assert _state(populated)[0]["vial"] == before[0]["vial"] + 2000


def test_disk_full_on_a_full_tmpfs_writes_nothing(populated, tmp_path):
    source = _sqlite_only(populated)
    size_kib = source.stat().st_size // 1024 + 512
    with _tmpfs(tmp_path / "small", size_kib) as mnt:
        db = mnt / "exotrace.db"
        shutil.copyfile(source, db)
        url = f"sqlite:///{db}"
        before = _state(url)
        # Leave ~48 KiB free: room to open the database, not for 2000 audited vials.
        free = os.statvfs(mnt).f_bavail * os.statvfs(mnt).f_frsize
        (mnt / "filler").write_bytes(b"\0" * max(0, free - 48 * 1024))
        proc = _cli_process(url, "vial", "create", "--lot", LOT, "--count", "2000")
        _assert_one_line_refusal(proc, "out of space", "the disk refused a write")
        (mnt / "filler").unlink()
        after = _state(url)
        assert after == before and after[1] is True


def test_read_only_sqlite_database_writes_nothing(populated, tmp_path):
    source = _sqlite_only(populated)
    if os.geteuid() == 0:  # file modes do not stop root: a read-only mount does
        with _tmpfs(tmp_path / "ro", source.stat().st_size // 1024 + 1024) as mnt:
            shutil.copyfile(source, mnt / "exotrace.db")
            before = _state(f"sqlite:///{mnt / 'exotrace.db'}")
            subprocess.run(["mount", "-o", "remount,ro", str(mnt)], check=True)
            proc = _cli_process(f"sqlite:///{mnt / 'exotrace.db'}", "donor", "add", "DX",
                                "--age-band", "30-39", "--sex", "male")
            subprocess.run(["mount", "-o", "remount,rw", str(mnt)], check=True)
            after = _state(f"sqlite:///{mnt / 'exotrace.db'}")
    else:
        before = _state(populated)
        source.chmod(0o444)
        source.parent.chmod(0o555)
        try:
            proc = _cli_process(populated, "donor", "add", "DX", "--age-band", "30-39",
                                "--sex", "male")
        finally:
            source.parent.chmod(0o755)
            source.chmod(0o644)
        after = _state(populated)
    _assert_one_line_refusal(proc, "is read-only")
    assert after == before and after[1] is True


def test_read_only_postgres_database_writes_nothing(populated):
    url = make_url(populated)
    if url.get_backend_name() != "postgresql":
        pytest.skip("PostgreSQL's default_transaction_read_only")
    before = _state(populated)
    # Setting a database read-only is the database owner's act, not the application's.
    engine = sa.create_engine(owner_url(populated), isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.exec_driver_sql(f'ALTER DATABASE "{url.database}" SET '
                             "default_transaction_read_only = on")
    try:
        proc = _cli_process(populated, "vial", "create", "--lot", LOT, "--count", "10")
    finally:
        with engine.connect() as conn:
            conn.exec_driver_sql(f'ALTER DATABASE "{url.database}" RESET '
                                 "default_transaction_read_only")
        engine.dispose()
    _assert_one_line_refusal(proc, "is read-only")
    assert "read-only transaction" in proc.stderr
    after = _state(populated)
    assert after == before and after[1] is True
