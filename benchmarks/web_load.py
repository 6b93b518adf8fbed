"""The web server under load: 20 concurrent clients on 10,000 lots and 100,000 vials.

Builds, through the services (every row audited), a PostgreSQL database with
100 donors -> 100 cell banks -> 200 isolation runs -> 9,400 lots, 200 pools of
3 lots each split in two (10,000 lots), 10 vials per lot (100,000 vials), a
specification, measurements and a size distribution on every 10th lot, 20
lots released through the workflow (verification and release signatures) and
some quarantined or awaiting release. Then runs ``exotrace serve [--workers N]``
in a subprocess and N client threads on loopback, each signed in (a browser session for pages, a personal
API token for the API), each sending its next request as soon as the last one
answered (closed loop, no think time), over a request mix:

* ``GET /lots`` (random page, filter and sort),
* ``GET /lots/{number}`` (random lot),
* ``GET /api/v1/lots`` and ``GET /api/v1/lots/{number}``,
* ``GET /api/v1/trace/back?vial=ID`` (random vial),
* ``GET /api/v1/trace/forward?donor=CODE`` (random donor: ~100 lots, ~1,000 vials)
  and ``?lot=NUMBER``.

Prints p50/p95 per endpoint and the throughput. Targets: p95 < 100 ms for the
lot list and lot page, < 150 ms for trace endpoints.

Usage::

    python benchmarks/web_load.py [--clients 20] [--seconds 60] [--workers 1]
                                  [--keep-db exotrace_web_bench] [--lots 10000 --vials 100000]

``--keep-db NAME`` builds the database NAME once and reuses it on later runs
(drop it yourself); without it a throw-away database is built and dropped.
"""

from __future__ import annotations

import argparse
import os
import platform
import random
import re
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
from collections import defaultdict
from datetime import date, timedelta
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.engine import make_url

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _records_bench_db import PG_ADMIN_URL, throwaway_database  # noqa: E402

PASSWORD = "Bench-web-load-2026"
USERS = {"analyst1": "analyst", "reviewer1": "reviewer", "qa1": "qa", "viewer1": "viewer"}
QUALITATIVE = {"CD9": "present", "CD63": "present", "CD81": "present", "TSG101": "present",
               "calnexin": "absent", "GM130": "absent", "sterility": "negative",
               "mycoplasma": "negative"}
DONORS = 100
RUNS_PER_DONOR = 2
POOLS = 200
RELEASED = 20


def _users(session):
    from argon2 import PasswordHasher

    from exotrace.records import Role, add_user, change_password

    first = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1).hash("first-password")
    admin = add_user(session, "admin1", Role.ADMIN, password_hash=first, full_name="Ada Admin")
    made = {"admin1": admin}
    for name, role in USERS.items():
        made[name] = add_user(session, name, Role(role), password_hash=first,
                              full_name=f"{role.title()} One", acting=admin)
    for name in made:
        change_password(session, name, "first-password", PASSWORD)
    return made


def build(url: str, n_lots: int, n_vials: int, seed: int = 7) -> dict:
    """Fill the (migrated, empty) database at ``url``; returns counts and build times."""

    from exotrace.quality import example_specification_path
    from exotrace.records import (
        User,
        add_cell_bank,
        add_collection,
        add_consent,
        add_donor,
        add_isolation_run,
        create_lot,
        import_specification,
        make_engine,
        pool_lots,
        split_lot,
        unit_of_work,
    )

    rng = random.Random(seed)
    engine = make_engine(url)
    t0 = time.perf_counter()
    with unit_of_work(engine) as s:
        users = _users(s)
        an, qa = users["analyst1"], users["qa1"]
        import_specification(s, qa, example_specification_path())
    per_run = (n_lots - 3 * POOLS) // (DONORS * RUNS_PER_DONOR)
    base: list[str] = []
    for d in range(DONORS):  # one transaction per donor keeps transactions small
        with unit_of_work(engine) as s:
            an = s.get(User, users["analyst1"].id)
            donor = f"D{d:03d}"
            add_donor(s, an, donor, age_band="30-39", sex="female")
            add_consent(s, an, donor, scopes=["clinical_manufacturing"], version="1",
                        consented_on=date(2025, 1, 1))
            add_cell_bank(s, an, f"CB{d:03d}", donor_code=donor, tissue="adipose", passage=3,
                          intended_use="clinical_manufacturing")
            add_collection(s, an, f"C{d:03d}", cell_bank_code=f"CB{d:03d}", medium="DMEM",
                           serum_condition="serum_free", volume_ml=1000, culture_days=2)
            for r in range(RUNS_PER_DONOR):
                run = f"I{d:03d}{r}"
                add_isolation_run(s, an, run, collection_code=f"C{d:03d}",
                                  method="ultrafiltration", input_volume_ml=500,
                                  output_volume_ml=50)
                for k in range(per_run):
                    number = f"L{d:03d}{r}{k:02d}"
                    made = date.today() - timedelta(days=(d * 7 + k) % 600)
                    create_lot(s, an, number, isolation_code=run,
                               intended_use="clinical_manufacturing", manufactured_on=made,
                               expires_on=made + timedelta(days=900 + (k % 30) * 20),
                               volume_ml=100.0)
                    base.append(number)
    with unit_of_work(engine) as s:
        an = s.get(User, users["analyst1"].id)
        lots = list(base)
        for p in range(POOLS):
            number = f"P{p:03d}"
            pool_lots(s, an, number, parents={x: 1.0 for x in rng.sample(base, 3)},
                      manufactured_on=date.today() - timedelta(days=30))
            kids = [f"{number}A", f"{number}B"]
            split_lot(s, an, number, children={k: 1.0 for k in kids},
                      manufactured_on=date.today() - timedelta(days=29))
            lots += [number, *kids]
    t_lots = time.perf_counter() - t0
    engine.dispose()
    t_vials = fill_vials(url, n_vials)
    t_rest = add_results(url, seed)
    return {"lots": len(lots), "vials": n_vials, "build_lots_s": t_lots,
            "build_vials_s": t_vials, "build_results_s": t_rest}


def fill_vials(url: str, n_vials: int) -> float:
    """Fill vials, spread evenly, into every lot that has none yet (resumable)."""
    from exotrace.records import User, create_vials, make_engine, repositories, unit_of_work

    t0 = time.perf_counter()
    engine = make_engine(url)
    with engine.connect() as conn:
        lots = [r[0] for r in conn.execute(sa.text("SELECT number FROM lot ORDER BY id"))]
        filled = {r[0] for r in conn.execute(sa.text(
            "SELECT DISTINCT l.number FROM lot l JOIN vial v ON v.lot_id = l.id"))}
    per_lot, extra = divmod(n_vials, len(lots))
    todo = [(i, n) for i, n in enumerate(lots) if n not in filled]
    for start in range(0, len(todo), 1000):
        with unit_of_work(engine) as s:
            an = repositories.get_by(s, User, username="analyst1")
            for i, number in todo[start:start + 1000]:
                create_vials(s, an, number, per_lot + (1 if i < extra else 0))
    engine.dispose()
    return time.perf_counter() - t0


def add_results(url: str, seed: int = 7) -> float:
    """Measurements and size distributions on every 10th lot, releases, status changes."""
    import numpy as np

    from exotrace.records import (
        User,
        add_measurement,
        add_quality_result,
        add_size_distribution,
        assign_specification,
        make_engine,
        release_lot,
        repositories,
        set_lot_status,
        set_reference_value,
        submit_for_release,
        unit_of_work,
        verify_lot,
    )

    rng = random.Random(seed)
    t0 = time.perf_counter()
    engine = make_engine(url)
    with engine.connect() as conn:
        base = [r[0] for r in conn.execute(sa.text(
            "SELECT number FROM lot WHERE isolation_run_id IS NOT NULL ORDER BY id"))]
        spec_name = conn.execute(sa.text("SELECT name FROM specification")).scalar()
    measured = base[::10]
    diameters = np.arange(30.0, 400.0, 5.0)
    with unit_of_work(engine) as s:
        an = repositories.get_by(s, User, username="analyst1")
        for number in measured:
            d50 = rng.uniform(100.0, 140.0)
            for attribute, value, unit, method in (
                    ("particle_concentration", 1e11 * rng.uniform(0.8, 1.2), "particles/mL",
                     "NTA"),
                    ("size_d50", d50, "nm", "NTA"),
                    ("particle_protein_ratio", 1e10 * rng.uniform(0.8, 1.5), "particles/ug",
                     "calculated")):
                add_measurement(s, an, number, attribute=attribute,
                                value=float(f"{value:.4g}"), unit=unit, method=method)
            weights = np.exp(-0.5 * ((np.log(diameters) - np.log(d50)) / 0.35) ** 2) / diameters
            add_size_distribution(s, an, number, diameters, np.round(weights / weights.max(), 6),
                                  source="NTA number distribution (benchmark)")
    released = measured[:RELEASED]
    with unit_of_work(engine) as s:
        an, rv, qa = (repositories.get_by(s, User, username=n)
                       for n in ("analyst1", "reviewer1", "qa1"))
        for number in released:
            assign_specification(s, qa, number, spec_name)
            set_reference_value(s, an, number, "label_claim", 1e11, "particles/mL")
            for test, word in QUALITATIVE.items():
                add_quality_result(s, an, number, test=test, value=word)
            add_quality_result(s, an, number, test="endotoxin", value=0.1, unit="EU/mL")
            add_quality_result(s, an, number, test="fraction_50_400nm", value=94.0, unit="%")
            add_quality_result(s, an, number, test="potency", value=105.0, unit="%")
            submit_for_release(s, an, number)
            verify_lot(s, rv, PASSWORD, number)
            release_lot(s, qa, PASSWORD, number)
        for number in measured[RELEASED:RELEASED + 300]:
            set_lot_status(s, an, number, "awaiting_release", reason="results entered")
        for number in base[5::97]:
            set_lot_status(s, an, number, "quarantined", reason="deviation under review")
    engine.dispose()
    return time.perf_counter() - t0


# --------------------------------------------------------------------------- serving

def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def serve(url: str, workers: int):
    """Start ``exotrace serve --workers N`` on ``url`` in a subprocess; (process, base)."""
    import tempfile

    port = _free_port()
    uploads = tempfile.mkdtemp(prefix="exotrace-bench-uploads-")
    env = {**os.environ, "EXOTRACE_DATABASE_URL": url, "EXOTRACE_UPLOAD_DIR": uploads}
    cmd = [sys.executable, "-m", "exotrace.cli.main", "serve", "--host", "127.0.0.1",
           "--port", str(port), "--workers", str(workers)]
    proc = subprocess.Popen(cmd, env=env, start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    import httpx

    deadline = time.monotonic() + 60
    while True:
        try:
            if httpx.get(base + "/login", timeout=2).status_code == 200:
                return proc, base
        except httpx.HTTPError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            raise RuntimeError("the server did not start")
        time.sleep(0.2)


def stop(proc) -> None:
    os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)


def _sign_in(client, username: str) -> None:
    page = client.get("/login")
    token = re.search(r'name="login_csrf" value="([^"]+)"', page.text).group(1)
    answer = client.post("/login", data={"username": username, "password": PASSWORD,
                                         "login_csrf": token, "next": "/"})
    if answer.status_code != 303:
        raise RuntimeError(f"sign-in of {username} failed: {answer.status_code}")


def _samples(url: str) -> dict:
    engine = sa.create_engine(url)
    with engine.connect() as conn:
        lots = [r[0] for r in conn.execute(sa.text("SELECT number FROM lot"))]
        vials = [r[0] for r in conn.execute(sa.text(
            "SELECT identifier FROM vial WHERE id % 97 = 0"))]
        donors = [r[0] for r in conn.execute(sa.text("SELECT code FROM donor"))]
        products = [r[0] for r in conn.execute(sa.text(
            "SELECT DISTINCT product_type FROM specification"))]
    engine.dispose()
    return {"lots": lots, "vials": vials, "donors": donors, "products": products}


def _request_mix(rng: random.Random, samples: dict, total_lots: int):
    """(endpoint name, path) of the next request."""
    pages = max(1, total_lots // 50)
    kind = rng.randrange(8)
    if kind == 0:
        query = {"page": rng.randint(1, pages), "sort": rng.choice(
            ["number", "created", "expiry", "status"]), "order": rng.choice(["asc", "desc"])}
        if rng.random() < 0.3:
            query = {"status": rng.choice(["awaiting_release", "quarantined", "in_process"]),
                     "sort": "expiry", "page": 1}
        elif rng.random() < 0.2 and samples["products"]:
            query["product"] = samples["products"][0]
            query["page"] = rng.randint(1, 20)
        return "page /lots", "/lots?" + "&".join(f"{k}={v}" for k, v in query.items())
    if kind in (1, 2):
        return "page /lots/{number}", f"/lots/{rng.choice(samples['lots'])}"
    if kind == 3:
        return "api /lots", f"/api/v1/lots?page={rng.randint(1, pages)}&sort=expiry"
    if kind == 4:
        return "api /lots/{number}", f"/api/v1/lots/{rng.choice(samples['lots'])}"
    if kind == 5:
        return "api trace back", f"/api/v1/trace/back?vial={rng.choice(samples['vials'])}"
    if kind == 6:
        return "api trace forward donor", \
            f"/api/v1/trace/forward?donor={rng.choice(samples['donors'])}"
    return "api trace forward lot", f"/api/v1/trace/forward?lot={rng.choice(samples['lots'])}"


def load(base: str, url: str, clients: int, seconds: float, token: str,
         think_s: float = 0.0) -> tuple[dict, int, float]:
    """Run ``clients`` client threads for ``seconds``; latencies by endpoint.

    Each client sends its next request when the last one answered, after a random
    pause (exponential, mean ``think_s``; 0: none, a saturation test).
    """
    import httpx

    samples = _samples(url)
    timings: dict[str, list[float]] = defaultdict(list)
    errors: list[str] = []
    lock = threading.Lock()
    start = threading.Barrier(clients + 1)
    go = threading.Event()
    stop_at = [0.0]

    def client(i: int) -> None:
        rng = random.Random(1000 + i)
        with httpx.Client(base_url=base, timeout=30, follow_redirects=False) as c:
            _sign_in(c, "viewer1")
            auth = {"Authorization": f"Bearer {token}"}
            start.wait()
            go.wait()
            while time.perf_counter() < stop_at[0]:
                name, path = _request_mix(rng, samples, len(samples["lots"]))
                headers = auth if path.startswith("/api/") else None
                t0 = time.perf_counter()
                answer = c.get(path, headers=headers)
                elapsed = (time.perf_counter() - t0) * 1000
                with lock:
                    if answer.status_code != 200:
                        errors.append(f"{answer.status_code} {path}")
                    timings[name].append(elapsed)
                if think_s > 0:
                    time.sleep(min(rng.expovariate(1.0 / think_s), 5 * think_s))

    threads = [threading.Thread(target=client, args=(i,), daemon=True) for i in range(clients)]
    for t in threads:
        t.start()
    start.wait()
    t0 = time.perf_counter()
    stop_at[0] = t0 + seconds
    go.set()
    for t in threads:
        t.join()
    wall = time.perf_counter() - t0
    if errors:
        print(f"{len(errors)} non-200 answers, e.g. {errors[:3]}")
    return timings, len(errors), wall


def _token(url: str) -> str:
    from exotrace.records import User, create_token, make_engine, repositories, unit_of_work

    engine = make_engine(url)
    with unit_of_work(engine) as s:
        token, _ = create_token(s, repositories.get_by(s, User, username="viewer1"), "bench")
    engine.dispose()
    return token


def _kept_database(name: str, n_lots: int, n_vials: int):
    """URL of database ``name``, built on first use."""
    from exotrace.records import make_engine, upgrade_database

    url = make_url(PG_ADMIN_URL).set(database=name).render_as_string(hide_password=False)
    admin = sa.create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        exists = conn.execute(sa.text("SELECT 1 FROM pg_database WHERE datname = :n"),
                              {"n": name}).scalar()
        if not exists:
            conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    admin.dispose()
    engine = make_engine(url)
    upgrade_database(engine)
    with engine.connect() as conn:
        have = conn.execute(sa.text("SELECT count(*) FROM lot")).scalar()
    engine.dispose()
    if not have:
        _report_build(build(url, n_lots, n_vials))
    else:  # resume a build that was interrupted
        fill_vials(url, n_vials)
        engine = make_engine(url)
        with engine.connect() as conn:
            results = conn.execute(sa.text("SELECT count(*) FROM measurement")).scalar()
        engine.dispose()
        if not results:
            add_results(url)
    return url


def _report_build(info: dict) -> None:
    print(f"built {info['lots']} lots in {info['build_lots_s']:.0f} s, {info['vials']} audited "
          f"vials in {info['build_vials_s']:.0f} s, results and releases in "
          f"{info['build_results_s']:.0f} s")


def _analyze(url: str) -> None:
    engine = sa.create_engine(url, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.exec_driver_sql("ANALYZE")
    engine.dispose()


def run(url: str, args) -> None:
    _analyze(url)
    token = _token(url)
    proc, base = serve(url, args.workers)
    try:
        timings, n_errors, wall = load(base, url, args.clients, args.seconds, token,
                                       args.think_s)
    finally:
        stop(proc)
    total = sum(len(v) for v in timings.values())
    print(f"\n{args.clients} clients (think time {args.think_s:g} s), {args.seconds:.0f} s, "
          f"{args.workers} server process(es): "
          f"{total} requests, {total / wall:.1f} requests/s, {n_errors} errors")
    print(f"{'endpoint':<26} {'n':>6} {'p50 ms':>8} {'p95 ms':>8} {'max ms':>8}  target")
    for name in sorted(timings):
        ts = sorted(timings[name])
        p95 = ts[int(0.95 * (len(ts) - 1))]
        target = 150 if "trace" in name else 100
        print(f"{name:<26} {len(ts):>6} {statistics.median(ts):>8.1f} {p95:>8.1f} "
              f"{ts[-1]:>8.1f}  < {target} ms {'ok' if p95 < target else 'MISSED'}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--clients", type=int, default=20)
    ap.add_argument("--seconds", type=float, default=60.0)
    ap.add_argument("--workers", type=int, default=1)
    ap.add_argument("--think-s", type=float, default=0.0,
                    help="mean pause of each client between requests (0: closed loop)")
    ap.add_argument("--lots", type=int, default=10_000)
    ap.add_argument("--vials", type=int, default=100_000)
    ap.add_argument("--keep-db", metavar="NAME", help="build database NAME once and reuse it")
    ap.add_argument("--build-only", action="store_true", help="with --keep-db: only build")
    args = ap.parse_args()
    print(f"machine: {platform.platform()}, {os.cpu_count()} CPUs; python "
          f"{platform.python_version()}; load average {os.getloadavg()[0]:.2f} "
          f"{os.getloadavg()[1]:.2f} {os.getloadavg()[2]:.2f}")
    if args.keep_db:
        url = _kept_database(args.keep_db, args.lots, args.vials)
        if not args.build_only:
            run(url, args)
        return
    with throwaway_database("postgresql") as url:
        _report_build(build(url, args.lots, args.vials))
        run(url, args)


if __name__ == "__main__":
    main()
