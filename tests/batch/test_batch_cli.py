"""``exotrace nta batch`` end to end: JSON, exit codes, one-line errors, progress bar."""

from __future__ import annotations

import io
import json

import pytest

from exotrace.cli.main import main

from .conftest import CLI_SETTINGS


def _run(capsys, *args):
    capsys.readouterr()
    code = main(["nta", "batch", *map(str, args)])
    out, err = capsys.readouterr()
    return code, out, err


def test_cli_on_a_cluster_then_resumed(videos, tmp_path, capsys, scheduler_address):
    args = [videos, "--out", tmp_path / "out", "--scheduler", scheduler_address, *CLI_SETTINGS,
            "--json"]
    code, out, err = _run(capsys, *args)
    assert code == 0, err
    data = json.loads(out)
    assert (data["videos"], data["analysed"], data["skipped"], data["failed"]) == (3, 3, 0, 0)
    assert data["scheduler"] == scheduler_address and data["workers"] == 1
    assert [g["group"] for g in data["groups"]] == ["plate1"]
    code, out, _ = _run(capsys, *args)
    assert code == 0 and json.loads(out)["skipped"] == 3


def test_cli_default_local_cluster_of_worker_processes(videos, tmp_path, capsys):
    code, out, err = _run(capsys, videos / "v2.avi", "--out", tmp_path / "out", "--workers", "1",
                          *CLI_SETTINGS, "--json")
    assert code == 0, err
    data = json.loads(out)
    assert data["analysed"] == 1 and data["workers"] == 1 and data["scheduler"] is None
    record = json.loads((tmp_path / "out" / data["results"][0]["result_file"]).read_text())
    host_pid = record["worker"].rsplit(":", 1)[1]
    import os

    assert int(host_pid) != os.getpid()  # analysed in a worker process, not here


def test_cli_failed_video_exits_1_after_the_others_are_done(videos, tmp_path, capsys,
                                                          scheduler_address):
    (videos / "broken.avi").write_bytes(b"\x00" * 4096)
    code, out, err = _run(capsys, videos, "--out", tmp_path / "out", "--scheduler",
                          scheduler_address, *CLI_SETTINGS, "--json")
    data = json.loads(out)
    assert code == 1 and (data["analysed"], data["failed"]) == (3, 1)
    assert err == (f"exotrace: error: 1 of 4 video(s) failed; see "
                   f"{tmp_path / 'out' / 'summary.csv'}\n")
    failed = next(r for r in data["results"] if r["state"] == "failed")
    assert failed["sample"] == "broken" and str(videos / "broken.avi") in failed["error"]


@pytest.mark.parametrize(("extra", "code", "message"), [
    (["--database", "sqlite:///x.db"], 2, "--database needs lots to store on"),
    (["--lot", "L1"], 11, "videos have lots but no database is given"),
    (["--workers", "0"], 2, "greater than or equal to 1"),
    (["--workers", "2", "--scheduler", "tcp://127.0.0.1:9"], 2, "--workers sizes the local"),
])
def test_cli_usage_errors_are_one_line(videos, tmp_path, capsys, monkeypatch, extra, code,
                                       message):
    monkeypatch.delenv("EXOTRACE_DATABASE_URL", raising=False)
    got, out, err = _run(capsys, videos, "--out", tmp_path / "out", *CLI_SETTINGS, *extra)
    assert got == code and message in err and err.count("\n") == 1
    assert not (tmp_path / "out").exists()  # refused before any work


def test_cli_unreachable_scheduler_is_a_configuration_error(videos, tmp_path, capsys,
                                                            monkeypatch):
    from exotrace.batch import _run as run_module

    monkeypatch.setattr(run_module, "CONNECT_TIMEOUT_S", 2)
    code, _, err = _run(capsys, videos, "--out", tmp_path / "out", "--scheduler",
                        "tcp://127.0.0.1:9", *CLI_SETTINGS)
    assert code == 11 and "cannot reach the Dask scheduler at tcp://127.0.0.1:9" in err
    assert err.count("\n") == 1


def test_progress_bar_shows_done_failed_and_rate(videos, tmp_path, capsys, monkeypatch,
                                                 scheduler_address):
    from rich.console import Console

    from exotrace.cli import nta_batch

    buf = io.StringIO()
    monkeypatch.setattr(nta_batch, "err_console", Console(file=buf, force_terminal=True,
                                                          width=200))
    (videos / "broken.avi").write_bytes(b"\x00" * 4096)
    code, out, _ = _run(capsys, videos, "--out", tmp_path / "out", "--scheduler",
                        scheduler_address, *CLI_SETTINGS)
    shown = buf.getvalue()
    assert code == 1
    assert "4/4" in shown and "3 analysed" in shown and "1 failed" in shown
    assert "videos/min" in shown
    assert "4 videos: 3 analysed, 0 reused, 1 failed" in out
