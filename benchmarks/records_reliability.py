"""Reliability of the records layer: killed imports and concurrent writers.

1. Kill test (``--trials``, default 50): a child process imports 12 instrument
   files (one transaction each, as ``exotrace measurement import`` retried file
   by file would) and fills 3 x 1000 vials (one transaction each) for a lot; the
   parent SIGKILLs it at a random moment. Then: the audit chain and every
   record verify, no import is half-written (each stored file has all its
   measurements, vials come in whole batches), and a retry of the same job
   completes, storing each file exactly once.
2. Concurrent writers (``--writers``, default 20; ``--duration`` seconds,
   default 10, use 60 for the full run) on PostgreSQL (and SQLite): each
   thread commits donors as fast as it can; afterwards every acknowledged
   donor is stored exactly once, nothing unacknowledged is stored, and the
   chain is intact with one entry per donor.

Usage::

    python benchmarks/records_reliability.py [--trials 50] [--duration 60] [--backend both]
"""

from __future__ import annotations

import argparse
import json
import random
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from datetime import date
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _records_bench_db import (  # noqa: E402
    cloned_database,
    postgres_available,
    throwaway_database,
)

N_FILES = 12
VIAL_BATCHES, VIAL_BATCH = 3, 1000
MEASUREMENTS_PER_FILE = 4


def _hash() -> str:
    from argon2 import PasswordHasher

    return PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1).hash("bench-password")


def setup_lot(url: str) -> None:
    from exotrace.records import (
        Role,
        add_cell_bank,
        add_collection,
        add_consent,
        add_donor,
        add_isolation_run,
        add_user,
        create_lot,
        make_engine,
        unit_of_work,
    )

    engine = make_engine(url)
    pw = _hash()
    with unit_of_work(engine) as s:
        admin = add_user(s, "admin1", Role.ADMIN, password_hash=pw)
        an = add_user(s, "analyst1", Role.ANALYST, password_hash=pw, acting=admin)
        add_donor(s, an, "D1", age_band="30-39", sex="female")
        add_consent(s, an, "D1", scopes=["clinical_manufacturing"], version="1",
                    consented_on=date(2025, 1, 1))
        add_cell_bank(s, an, "CB1", donor_code="D1", tissue="adipose", passage=3,
                      intended_use="clinical_manufacturing")
        add_collection(s, an, "C1", cell_bank_code="CB1", medium="DMEM",
                       serum_condition="serum_free", volume_ml=100, culture_days=2)
        add_isolation_run(s, an, "I1", collection_code="C1", method="ultrafiltration",
                          input_volume_ml=100, output_volume_ml=2)
        create_lot(s, an, "L1", isolation_code="I1", intended_use="clinical_manufacturing",
                   manufactured_on=date(2025, 2, 1))
    engine.dispose()


def write_files(folder: Path) -> list[Path]:
    rng = random.Random(3)
    paths = []
    for i in range(N_FILES):
        p = folder / f"run{i:02d}.json"
        p.write_text(json.dumps({"format": "nanosight-summary", "instrument": "NanoSight",
                                 "particles_per_ml": rng.uniform(1e10, 1e11),
                                 "mode_nm": rng.uniform(90, 120), "mean_nm": rng.uniform(110, 140),
                                 "d50_nm": rng.uniform(100, 130)}))
        paths.append(p)
    return paths


def child_job(url: str, folder: str) -> None:
    """The job the parent kills: per-file imports, then vial batches, each its own transaction."""
    from exotrace.records import (
        Lot,
        User,
        create_vials,
        import_measurement_file,
        make_engine,
        repositories,
        unit_of_work,
    )

    engine = make_engine(url)
    print("READY", flush=True)  # imports done: the parent times the kill from here
    for p in sorted(Path(folder).glob("run*.json")):
        with unit_of_work(engine) as s:
            an = repositories.get_by(s, User, username="analyst1")
            import_measurement_file(s, "L1", p, an, reader=lambda q: json.loads(q.read_text()))
    for _ in range(VIAL_BATCHES):
        with unit_of_work(engine) as s:
            an = repositories.get_by(s, User, username="analyst1")
            have = repositories.count_vials(s, repositories.get_by(s, Lot, number="L1").id)
            if have >= VIAL_BATCHES * VIAL_BATCH:
                break
            create_vials(s, an, "L1", VIAL_BATCH)
    print("DONE", flush=True)
    engine.dispose()


def check_consistent(url: str) -> dict:
    import sqlalchemy as sa

    from exotrace.records import make_engine, unit_of_work, verify_audit_trail

    engine = make_engine(url)
    with unit_of_work(engine) as s:
        report = verify_audit_trail(s)
        per_file = s.execute(sa.text(
            "SELECT r.id, count(m.id) FROM result_file r LEFT JOIN measurement m "
            "ON m.result_file_id = r.id GROUP BY r.id")).all()
        dup = s.execute(sa.text(
            "SELECT count(*) FROM (SELECT lot_id, sha256 FROM result_file "
            "GROUP BY lot_id, sha256 HAVING count(*) > 1) x")).scalar()
        vials = s.execute(sa.text("SELECT count(*) FROM vial")).scalar()
    engine.dispose()
    problems = [f.message for f in report.findings]
    problems += [f"result file {rid} has {n} measurements" for rid, n in per_file
                 if n != MEASUREMENTS_PER_FILE]
    if dup:
        problems.append(f"{dup} files stored twice")
    if vials % VIAL_BATCH:
        problems.append(f"{vials} vials: a half-written batch")
    return {"ok": not problems, "problems": problems, "files": len(per_file), "vials": vials,
            "entries": report.entries_checked}


def _start_child(url: str, folder: str) -> subprocess.Popen:
    proc = subprocess.Popen([sys.executable, __file__, "--child", url, folder],
                            stdout=subprocess.PIPE, text=True)
    line = proc.stdout.readline()
    if line.strip() != "READY":
        proc.kill()
        raise SystemExit(f"child did not start: {line!r}")
    return proc


def kill_trials(backend: str, trials: int, seed: int) -> dict:
    rng = random.Random(seed)
    with tempfile.TemporaryDirectory() as tmp:
        write_files(Path(tmp))
        with throwaway_database(backend) as template:
            setup_lot(template)
            stats = _trials(template, tmp, trials, rng)
    return {"backend": backend, "trials": trials, **stats}


def _trials(template: str, tmp: str, trials: int, rng: random.Random) -> Counter:
    stats = Counter()
    # Calibrate: how long the job's writing phase takes uninterrupted.
    with cloned_database(template) as url:
        proc = _start_child(url, tmp)
        t0 = time.perf_counter()
        done = proc.stdout.readline().strip()
        job_s = time.perf_counter() - t0
        proc.wait()
        if done != "DONE":
            raise SystemExit("calibration run failed")
    print(f"  uninterrupted job: {job_s:.2f} s of writing; kills fall uniformly in it")
    stats["job_s"] = round(job_s, 2)
    for t in range(trials):
        with cloned_database(template) as url:
            proc = _start_child(url, tmp)
            delay = rng.uniform(0.0, job_s)
            try:
                proc.wait(timeout=delay)
                stats["finished_before_kill"] += 1
            except subprocess.TimeoutExpired:
                proc.send_signal(signal.SIGKILL)
                proc.wait()
                stats["killed"] += 1
            after_kill = check_consistent(url)
            stats["consistent_after_kill"] += after_kill["ok"]
            if not after_kill["ok"]:
                print(f"  trial {t}: INCONSISTENT after kill: {after_kill['problems'][:3]}")
            retry = _start_child(url, tmp)
            retry.wait()
            final = check_consistent(url)
            complete = (retry.returncode == 0 and final["ok"] and final["files"] == N_FILES
                        and final["vials"] == VIAL_BATCHES * VIAL_BATCH)
            stats["retry_completed"] += complete
            if not complete:
                print(f"  trial {t}: retry incomplete: rc={retry.returncode} {final}")
            print(f"  trial {t + 1}/{trials}: killed after {delay:.2f} s with "
                  f"{after_kill['files']} files, {after_kill['vials']} vials stored; "
                  f"consistent={after_kill['ok']} retry complete={complete}", flush=True)
    return stats


def concurrent_writers(backend: str, writers: int, duration_s: float) -> dict:
    from exotrace.records import (
        Donor,
        Role,
        User,
        add_donor,
        add_user,
        make_engine,
        repositories,
        unit_of_work,
        verify_audit_trail,
    )

    with throwaway_database(backend) as url:
        engine = make_engine(url, pool_size=writers + 2, max_overflow=0)
        pw = _hash()
        with unit_of_work(engine) as s:
            admin = add_user(s, "admin1", Role.ADMIN, password_hash=pw)
            add_user(s, "analyst1", Role.ANALYST, password_hash=pw, acting=admin)
        acknowledged: list[str] = []
        failures: list[str] = []
        lock = threading.Lock()
        stop = time.perf_counter() + duration_s

        def work(w: int) -> None:
            i = 0
            while time.perf_counter() < stop:
                code = f"W{w:02d}-{i:06d}"
                try:
                    with unit_of_work(engine) as s:
                        an = repositories.get_by(s, User, username="analyst1")
                        add_donor(s, an, code, age_band="30-39", sex="male")
                except Exception as exc:  # noqa: BLE001 - counted, the run goes on
                    with lock:
                        failures.append(f"{type(exc).__name__}: {exc}"[:200])
                else:
                    with lock:
                        acknowledged.append(code)
                i += 1

        threads = [threading.Thread(target=work, args=(w,)) for w in range(writers)]
        t0 = time.perf_counter()
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        elapsed = time.perf_counter() - t0
        with unit_of_work(engine) as s:
            stored = [d.code for d in repositories.list_all(s, Donor)]
            report = verify_audit_trail(s)
        engine.dispose()
    stored_c = Counter(stored)
    ack = set(acknowledged)
    return {"backend": backend, "writers": writers, "duration_s": round(elapsed, 1),
            "commits": len(acknowledged), "commits_per_s": round(len(acknowledged) / elapsed, 1),
            "failed_transactions": len(failures), "first_failure": failures[:1],
            "lost": len(ack - set(stored)), "duplicated": sum(1 for c in stored_c.values() if c > 1),
            "unacknowledged_stored": len(set(stored) - ack),
            "chain_ok": report.ok, "entries": report.entries_checked,
            "entries_expected": 2 + len(acknowledged)}


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        child_job(sys.argv[2], sys.argv[3])
        return
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--trials", type=int, default=50)
    ap.add_argument("--writers", type=int, default=20)
    ap.add_argument("--duration", type=float, default=10.0)
    ap.add_argument("--backend", choices=["sqlite", "postgresql", "both"], default="both")
    ap.add_argument("--skip-kill", action="store_true")
    ap.add_argument("--skip-concurrency", action="store_true")
    args = ap.parse_args()
    backends = ["sqlite", "postgresql"] if args.backend == "both" else [args.backend]
    if "postgresql" in backends and not postgres_available():
        print("PostgreSQL not reachable: skipping it")
        backends.remove("postgresql")
    results = []
    if not args.skip_kill:
        for b in backends:
            print(f"kill test on {b}: {args.trials} trials")
            results.append(kill_trials(b, args.trials, seed=11))
            print(json.dumps(results[-1]))
    if not args.skip_concurrency:
        for b in backends:
            print(f"{args.writers} concurrent writers on {b} for {args.duration:g} s")
            results.append(concurrent_writers(b, args.writers, args.duration))
            print(json.dumps(results[-1]))
    print("\nSUMMARY")
    for r in results:
        print(json.dumps(r))


if __name__ == "__main__":
    main()
