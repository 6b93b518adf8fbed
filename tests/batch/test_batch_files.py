"""Atomic writes: a crash between writing and renaming leaves the old file whole."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap

import pytest

from exotrace.batch import atomic_write_text, collect_jobs, run_batch, sha256_file
from exotrace.batch._files import TEMP_PREFIX

from .conftest import DEFAULTS


def test_sha256_file_matches_hashlib_and_names_missing_files(tmp_path):
    import hashlib

    data = os.urandom(3 * (1 << 20) + 17)  # more than one read block, not a multiple of it
    (tmp_path / "v.avi").write_bytes(data)
    assert sha256_file(tmp_path / "v.avi") == hashlib.sha256(data).hexdigest()
    with pytest.raises(Exception, match=r"gone.avi: file not found"):
        sha256_file(tmp_path / "gone.avi")


def test_a_failed_rename_keeps_the_old_file_and_leaves_no_temp_file(tmp_path, monkeypatch):
    target = tmp_path / "r.json"
    atomic_write_text(target, "old\n")

    def broken_replace(src, dst):
        raise OSError("disk gone")

    monkeypatch.setattr(os, "replace", broken_replace)
    with pytest.raises(OSError, match="disk gone"):
        atomic_write_text(target, "new\n" * 1000)
    assert target.read_text() == "old\n"
    assert [p.name for p in tmp_path.iterdir()] == ["r.json"]


def test_a_process_killed_before_the_rename_leaves_the_old_file_whole(tmp_path, videos):
    """SIGKILL between the fsync'd temp file and os.replace: no half-written result; the
    next run removes the orphaned temp file."""
    target = tmp_path / "out" / "summary.csv"
    target.parent.mkdir()
    atomic_write_text(target, "old summary\n")
    script = textwrap.dedent(f"""
        import os, signal
        from exotrace.batch import atomic_write_text
        def die(src, dst):
            os.kill(os.getpid(), signal.SIGKILL)
        os.replace = die
        atomic_write_text({str(target)!r}, "new summary, " * 100000)
    """)
    proc = subprocess.run([sys.executable, "-c", script], timeout=60)
    assert proc.returncode == -signal.SIGKILL
    assert target.read_text() == "old summary\n"
    orphans = list(target.parent.glob(TEMP_PREFIX + "*"))
    assert len(orphans) == 1 and orphans[0].stat().st_size == len("new summary, " * 100000)

    run_batch(collect_jobs([videos / "v1.avi"], DEFAULTS), target.parent, processes=False,
              workers=1)
    assert list(target.parent.glob(TEMP_PREFIX + "*")) == []
    assert target.read_text().startswith("row_type,group,sample")


def test_results_get_the_mode_of_any_file_the_user_writes(tmp_path):
    from exotrace.batch import _files

    path = atomic_write_text(tmp_path / "r.json", "{}")
    # mkstemp alone gives 0o600: a colleague could not read the results
    assert path.stat().st_mode & 0o777 == 0o666 & ~_files._UMASK
