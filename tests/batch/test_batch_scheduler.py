"""``--scheduler`` against a real cluster: ``dask scheduler`` and ``dask worker`` processes."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from exotrace.cli.main import main

from .conftest import CLI_SETTINGS

_START_TIMEOUT_S = 60


def _dask_command() -> str:
    exe = Path(sys.executable).parent / "dask"
    if not exe.exists():
        found = shutil.which("dask")
        if found is None:
            pytest.skip("the dask command is not installed")
        return found
    return str(exe)


def _stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)


@pytest.fixture
def dask_cluster(tmp_path):
    """A scheduler on a free port and one single-threaded worker process (killed after)."""
    dask = _dask_command()
    info = tmp_path / "scheduler.json"
    log = (tmp_path / "dask.log").open("w")
    procs = []
    try:
        procs.append(subprocess.Popen(
            [dask, "scheduler", "--host", "127.0.0.1", "--port", "0", "--no-dashboard",
             "--scheduler-file", str(info)], stdout=log, stderr=log, start_new_session=True))
        deadline = time.monotonic() + _START_TIMEOUT_S
        while not info.exists() or not info.read_text().strip():
            if time.monotonic() > deadline or procs[0].poll() is not None:
                pytest.fail(f"dask scheduler did not start: {(tmp_path / 'dask.log').read_text()}")
            time.sleep(0.2)
        address = json.loads(info.read_text())["address"]
        procs.append(subprocess.Popen(
            [dask, "worker", address, "--nthreads", "1", "--nworkers", "1", "--no-dashboard",
             "--name", "exotrace-test-worker"], stdout=log, stderr=log,
            start_new_session=True))
        yield address
    finally:
        for proc in reversed(procs):
            _stop(proc)
        log.close()


def test_batch_runs_on_a_dask_scheduler_and_worker_started_apart(dask_cluster, videos, tmp_path,
                                                                capsys):
    capsys.readouterr()
    code = main(["nta", "batch", str(videos), "--out", str(tmp_path / "out"), "--scheduler",
                 dask_cluster, *CLI_SETTINGS, "--json"])
    out, err = capsys.readouterr()
    assert code == 0, err
    data = json.loads(out)
    assert (data["analysed"], data["failed"], data["workers"]) == (3, 0, 1)
    workers = {json.loads((tmp_path / "out" / r["result_file"]).read_text())["worker"]
               for r in data["results"]}
    # all three on the one worker process, which is not this process
    assert len(workers) == 1 and not workers.pop().endswith(f":{os.getpid()}")
