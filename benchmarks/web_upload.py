"""Memory of the web server while a large upload streams to disk.

Starts ``exotrace serve`` (uvicorn) in a subprocess on a throw-away SQLite
database, then PUTs a file of ``--gib`` GiB (a real simulated AVI followed by
zeros, generated on the fly: the client holds one 1 MiB block at a time) to
``/api/v1/uploads`` with an analyst's API token, sampling the server process's
resident memory (``/proc/PID/status`` VmRSS, every 50 ms) throughout. Reports the
RSS before the upload (after a small warm-up upload), the peak during it, the
kernel's high-water mark (VmHWM), the throughput, and checks the stored file's
size and SHA-256.

Usage::

    .venv/bin/python benchmarks/web_upload.py [--gib 2] [--json]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx

_BLOCK = 1 << 20


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _status_kib(pid: int, field: str) -> int:
    with open(f"/proc/{pid}/status", encoding="ascii") as fh:
        for line in fh:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise RuntimeError(f"{field} not in /proc/{pid}/status")


def _prepare(folder: Path) -> tuple[str, str, Path]:
    """Database at head with an analyst and a token; a short simulated AVI."""
    from argon2 import PasswordHasher

    from exotrace.nta.simulate import simulate
    from exotrace.records import (
        Role,
        acting_as,
        add_user,
        create_token,
        make_engine,
        unit_of_work,
        upgrade_database,
    )

    url = f"sqlite:///{folder / 'bench.db'}"
    engine = make_engine(url)
    upgrade_database(engine)
    password_hash = PasswordHasher().hash("bench-password-42")
    with unit_of_work(engine) as s:
        admin = add_user(s, "admin1", Role.ADMIN, password_hash=password_hash)
        analyst = add_user(s, "analyst1", Role.ANALYST, password_hash=password_hash,
                           acting=admin)
        with acting_as(s, analyst):
            analyst.must_change_password = False
            s.flush()
        token, _ = create_token(s, analyst, "benchmark")
    engine.dispose()
    video = folder / "head.avi"
    simulate(video, diameters_nm=(100.0,), n_frames=20, width_px=128, height_px=96, seed=1)
    return url, token, video


def _body(total: int, head: bytes, digest):
    sent = 0
    while sent < total:
        n = min(_BLOCK, total - sent)
        block = head[:n] + bytes(n - len(head[:n]))
        head = head[n:]
        digest.update(block)
        sent += n
        yield block


def run(gib: float) -> dict:
    total = int(gib * 1024 ** 3)
    with tempfile.TemporaryDirectory(prefix="exotrace-bench-upload-") as tmp:
        folder = Path(tmp)
        url, token, video = _prepare(folder)
        uploads = folder / "uploads"
        port = _free_port()
        env = {**os.environ, "EXOTRACE_DATABASE_URL": url, "EXOTRACE_UPLOAD_DIR": str(uploads),
               "EXOTRACE_UPLOAD_MAX_BYTES": str(total + _BLOCK)}
        exotrace = Path(sys.executable).with_name("exotrace")
        server = subprocess.Popen([str(exotrace), "serve", "--port", str(port)], env=env, stdout=subprocess.DEVNULL,
                                  stderr=subprocess.PIPE)
        base = f"http://127.0.0.1:{port}"
        headers = {"Authorization": f"Bearer {token}"}
        try:
            deadline = time.monotonic() + 60
            while True:
                try:
                    if httpx.get(f"{base}/api/v1/me", headers=headers).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                if time.monotonic() > deadline or server.poll() is not None:
                    raise RuntimeError("server did not start: "
                                       + (server.stderr.read() or b"").decode()[-500:])
                time.sleep(0.2)
            head = video.read_bytes()
            with httpx.Client(base_url=base, headers=headers, timeout=600) as client:
                warm = client.put("/api/v1/uploads", params={"filename": "warm.avi"},
                                  content=head)
                assert warm.status_code == 201, warm.text
                time.sleep(0.5)
                before = _status_kib(server.pid, "VmRSS")
                peak = [before]
                stop = threading.Event()

                def sample() -> None:
                    while not stop.is_set():
                        peak[0] = max(peak[0], _status_kib(server.pid, "VmRSS"))
                        time.sleep(0.05)

                sampler = threading.Thread(target=sample, daemon=True)
                sampler.start()
                digest = hashlib.sha256()
                t0 = time.perf_counter()
                response = client.put("/api/v1/uploads", params={"filename": "big.avi"},
                                      content=_body(total, head, digest))
                seconds = time.perf_counter() - t0
                stop.set()
                sampler.join()
            assert response.status_code == 201, response.text
            up = response.json()
            hwm = _status_kib(server.pid, "VmHWM")
            stored = next(p for p in uploads.rglob("big.avi"))
            return {
                "bytes": total, "seconds": round(seconds, 2),
                "mib_per_s": round(total / 1024 ** 2 / seconds, 1),
                "rss_before_mib": round(before / 1024, 1),
                "rss_peak_mib": round(peak[0] / 1024, 1),
                "rss_growth_mib": round((peak[0] - before) / 1024, 1),
                "vm_hwm_mib": round(hwm / 1024, 1),
                "stored_bytes": stored.stat().st_size,
                "sha256_matches": up["sha256"] == digest.hexdigest(),
            }
        finally:
            server.terminate()
            server.wait(timeout=30)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--gib", type=float, default=2.0, help="upload size, GiB")
    parser.add_argument("--json", action="store_true", help="print JSON only")
    args = parser.parse_args()
    result = run(args.gib)
    if args.json:
        print(json.dumps(result))
        return
    for key, value in result.items():
        print(f"{key:>16}: {value}")


if __name__ == "__main__":
    main()
