"""``exotrace serve --workers N``: several server processes on one database and one
upload folder; without a shared upload folder they are refused."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time

import httpx
import pytest

from web.upload_helpers import NANOSIGHT

_SERVE = [sys.executable, "-m", "exotrace.cli.main", "serve"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _env(web_db: str, **extra: str) -> dict:
    env = {k: v for k, v in os.environ.items() if k != "EXOTRACE_UPLOAD_DIR"}
    return {**env, "EXOTRACE_DATABASE_URL": web_db, **extra}


def test_several_processes_need_a_shared_upload_folder(web_db):
    done = subprocess.run([*_SERVE, "--workers", "2", "--port", str(_free_port())],
                          env=_env(web_db), capture_output=True, text=True, timeout=120)
    assert done.returncode != 0
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in done.stderr
    assert "--workers 2: set EXOTRACE_UPLOAD_DIR" in lines[0]


def test_two_processes_serve_one_database_and_one_upload_folder(web_db, bearer, tmp_path):
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    server = subprocess.Popen([*_SERVE, "--workers", "2", "--port", str(port)],
                              env=_env(web_db, EXOTRACE_UPLOAD_DIR=str(tmp_path / "uploads")),
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 90
        while True:
            try:
                if httpx.get(f"{base}/login", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert server.poll() is None, server.stderr.read()
            assert time.monotonic() < deadline, "the server did not start"
            time.sleep(0.3)
        headers = bearer("analyst1")
        with httpx.Client(base_url=base, headers=headers, timeout=30) as client:
            up = client.put("/api/v1/uploads", params={"filename": NANOSIGHT.name},
                            content=NANOSIGHT.read_bytes())
            assert up.status_code == 201, up.text
            # each new connection may land on either process: every one finds the upload
            for _ in range(12):
                with httpx.Client(base_url=base, headers=headers, timeout=30) as fresh:
                    seen = fresh.get(f"/api/v1/uploads/{up.json()['id']}")
                    assert seen.status_code == 200 and seen.json()["kind"] == "vendor"
            assert client.get("/api/v1/lots").status_code == 200
    finally:
        server.terminate()
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
            pytest.fail("the server did not stop on SIGTERM")
