"""Trace forward and back on 100k vials, SQLite and PostgreSQL.

Builds, through the services (audited; vials through the audited bulk path),
10 donors -> 10 cell banks -> 20 isolation runs -> 200 lots, 40 pools of 3
lots and 40 two-way splits of the pools (320 lots), then fills 100k vials
spread over all lots. Times ``trace_forward`` from a donor, a lot and a
reagent batch, and ``trace_back`` from vials of pooled/split lots: median and
95th percentile of repeated calls (the target is < 100 ms each).

Usage::

    python benchmarks/records_trace.py [--vials 100000] [--backend sqlite|postgresql|both]
"""

from __future__ import annotations

import argparse
import platform
import random
import statistics
import sys
import time
from datetime import date
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _records_bench_db import postgres_available, throwaway_database  # noqa: E402


def build(url: str, n_vials: int, seed: int = 1) -> dict:
    from argon2 import PasswordHasher

    from exotrace.records import (
        Role,
        add_cell_bank,
        add_collection,
        add_consent,
        add_donor,
        add_isolation_run,
        add_reagent_batch,
        add_user,
        create_lot,
        create_vials,
        make_engine,
        pool_lots,
        split_lot,
        unit_of_work,
    )

    rng = random.Random(seed)
    engine = make_engine(url)
    pw = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1).hash("bench-password")
    t0 = time.perf_counter()
    with unit_of_work(engine) as s:
        admin = add_user(s, "admin1", Role.ADMIN, password_hash=pw)
        an = add_user(s, "analyst1", Role.ANALYST, password_hash=pw, acting=admin)
        lots = []
        for d in range(10):
            donor = f"D{d:02d}"
            add_donor(s, an, donor, age_band="30-39", sex="female")
            add_consent(s, an, donor, scopes=["clinical_manufacturing"], version="1",
                        consented_on=date(2025, 1, 1))
            add_cell_bank(s, an, f"CB{d:02d}", donor_code=donor, tissue="adipose", passage=3,
                          intended_use="clinical_manufacturing")
            add_collection(s, an, f"C{d:02d}", cell_bank_code=f"CB{d:02d}", medium="DMEM",
                           serum_condition="serum_free", volume_ml=1000, culture_days=2)
            add_reagent_batch(s, an, f"RB{d:02d}", name="PBS", batch_number=f"B{d}")
            for r in range(2):
                run = f"I{d:02d}{r}"
                add_isolation_run(s, an, run, collection_code=f"C{d:02d}",
                                  method="ultrafiltration", input_volume_ml=500,
                                  output_volume_ml=5, reagent_codes=[f"RB{d:02d}"])
                for k in range(10):
                    number = f"L{d:02d}{r}{k}"
                    create_lot(s, an, number, isolation_code=run,
                               intended_use="clinical_manufacturing",
                               manufactured_on=date(2025, 2, 1), volume_ml=100.0)
                    lots.append(number)
        base = list(lots)
        pooled = []
        for p in range(40):
            parents = rng.sample(base, 3)
            number = f"P{p:03d}"
            pool_lots(s, an, number, parents={x: 1.0 for x in parents},
                      manufactured_on=date(2025, 3, 1))
            kids = [f"{number}A", f"{number}B"]
            split_lot(s, an, number, children={k: 1.0 for k in kids},
                      manufactured_on=date(2025, 3, 2))
            pooled.append(number)
            lots += [number] + kids
    t_lots = time.perf_counter() - t0
    per_lot, extra = divmod(n_vials, len(lots))
    t0 = time.perf_counter()
    with unit_of_work(engine) as s:
        an = s.get(type(admin), an.id)
        for i, number in enumerate(lots):
            count = per_lot + (1 if i < extra else 0)
            if count:
                create_vials(s, an, number, count)
    t_vials = time.perf_counter() - t0
    engine.dispose()
    return {"lots": len(lots), "vials": n_vials, "build_lots_s": t_lots,
            "build_vials_s": t_vials, "pooled": pooled}


def timed(fn, repeats: int) -> tuple[float, float, object]:
    fn()  # warm caches and compiled statements
    times, result = [], None
    for _ in range(repeats):
        t0 = time.perf_counter()
        result = fn()
        times.append((time.perf_counter() - t0) * 1000)
    times.sort()
    return statistics.median(times), times[int(0.95 * (len(times) - 1))], result


def run_backend(backend: str, n_vials: int, repeats: int) -> list[dict]:
    from exotrace.records import (
        make_engine,
        trace_back,
        trace_forward,
        unit_of_work,
        verify_audit_trail,
    )

    rows = []
    with throwaway_database(backend) as url:
        info = build(url, n_vials)
        print(f"[{backend}] built {info['lots']} lots in {info['build_lots_s']:.1f} s, "
              f"{info['vials']} audited vials in {info['build_vials_s']:.1f} s "
              f"({info['vials'] / info['build_vials_s']:.0f} vials/s)")
        engine = make_engine(url)
        with unit_of_work(engine) as s:
            import sqlalchemy as sa

            vial_of = {n: s.execute(sa.text(
                "SELECT v.identifier FROM vial v JOIN lot l ON l.id = v.lot_id "
                "WHERE l.number = :n ORDER BY v.id LIMIT 1"), {"n": n}).scalar()
                for n in ("P000B", "P017A", "L0000")}
            cases = [
                ("forward --donor D03", lambda: trace_forward(s, donor_code="D03")),
                ("forward --lot L0000", lambda: trace_forward(s, lot_number="L0000")),
                ("forward --reagent-batch RB05", lambda: trace_forward(s, reagent_code="RB05")),
                ("back --vial (split of pool)", lambda: trace_back(s, vial_of["P000B"])),
                ("back --vial (split of pool 2)", lambda: trace_back(s, vial_of["P017A"])),
                ("back --vial (plain lot)", lambda: trace_back(s, vial_of["L0000"])),
            ]
            for name, fn in cases:
                med, p95, result = timed(fn, repeats)
                size = (f"{len(result['lots'])} lots, {len(result['vials'])} vials"
                        if "vials" in result and isinstance(result["vials"], list)
                        else f"{len(result['lots'])} lots, {len(result['donors'])} donors")
                rows.append({"backend": backend, "query": name, "median_ms": med,
                             "p95_ms": p95, "answer": size})
            t0 = time.perf_counter()
            report = verify_audit_trail(s)
            rows.append({"backend": backend, "query": "audit verify (whole database)",
                         "median_ms": (time.perf_counter() - t0) * 1000, "p95_ms": float("nan"),
                         "answer": f"ok={report.ok}, {report.entries_checked} entries"})
        engine.dispose()
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--vials", type=int, default=100_000)
    ap.add_argument("--repeats", type=int, default=20)
    ap.add_argument("--backend", choices=["sqlite", "postgresql", "both"], default="both")
    args = ap.parse_args()
    backends = ["sqlite", "postgresql"] if args.backend == "both" else [args.backend]
    if "postgresql" in backends and not postgres_available():
        print("PostgreSQL not reachable: skipping it")
        backends.remove("postgresql")
    print(f"machine: {platform.platform()}, {platform.processor() or platform.machine()}; "
          f"python {platform.python_version()}")
    rows = []
    for backend in backends:
        rows += run_backend(backend, args.vials, args.repeats)
    print(f"\n{'backend':<11} {'query':<32} {'median ms':>10} {'p95 ms':>8}  answer")
    for r in rows:
        print(f"{r['backend']:<11} {r['query']:<32} {r['median_ms']:>10.1f} {r['p95_ms']:>8.1f}"
              f"  {r['answer']}")
    worst = max(r["p95_ms"] for r in rows if "verify" not in r["query"])
    print(f"\nworst p95 of trace queries: {worst:.1f} ms (target < 100 ms)")


if __name__ == "__main__":
    main()
