"""Writer processes killed at random, and two QA users releasing one lot at once.

1. Campaign (``--writers 8 --duration 60 --kills 12``, PostgreSQL by default):
   writer processes write through the services, one transaction per operation:
   instrument-file imports (a result file and its 4 measurements), releases
   of verified lots (status, disposition, QA signature), vial fills (50
   audited vials) and administrations through the clinic services (a vial of
   a released lot given to an enrolled subject: the administration and the
   vial's status change, each audited). Each writer logs ``A op key`` before an operation and
   ``C op key`` after its commit, each line fsynced. The parent SIGKILLs a
   random writer at random moments and starts a new incarnation in its place.
   Afterwards: every logged commit is in the database exactly once; every
   record is whole (4 measurements per file; a released lot has exactly one
   release disposition with its signature; vials in whole batches; an
   administration with its audit entry, its vial administered with the audit
   entry of that change, and no vial administered without one); nothing is
   stored that no writer attempted; the audit chain verifies.
2. Release race (``--races 5``): two processes, qa1 and qa2, release the same
   verified lot behind a barrier; exactly one succeeds, the other gets a
   Conflict (exit code 6), never a second release or an internal error.

Usage::

    python benchmarks/records_faults.py [--writers 8] [--duration 60] [--kills 12] [--races 5]
                                        [--backend postgresql|sqlite]
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import platform
import random
import signal
import sys
import tempfile
import time
from collections import Counter
from datetime import UTC, date, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _records_bench_db import postgres_available, throwaway_database  # noqa: E402

PASSWORD = "bench-password-1"
MEASUREMENTS_PER_FILE = 4
VIAL_BATCH = 50
PROTOCOL = "cardiomyopathy"  # EXO-CARD-01: arm IV, 3 infusions per subject, particles/kg
ADMINISTRATIONS_PER_SUBJECT = 3
ADMIN_LOT = "ADM1"
_NUMERIC = {"endotoxin": (0.12, "EU/mL"), "fraction_50_400nm": (94.0, "%"),
            "potency": (104.0, "%")}
_QUALITATIVE = {"CD9": "present", "CD63": "present", "CD81": "present", "TSG101": "present",
                "calnexin": "absent", "GM130": "absent", "sterility": "negative",
                "mycoplasma": "negative"}


# ----------------------------------------------------------------------------- set-up

def _cheap_hash() -> str:
    from argon2 import PasswordHasher

    # Verification reads the cost from the hash: logins stay ~1 ms, same code path.
    return PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1).hash(PASSWORD)


def _releasable_lot(s, users, number: str, iso: str, spec_name: str, *,
                    verified: bool = True, volume_ml: float = 2.0, before_submit=None) -> None:
    """A lot with measurements and every result of the example specification, verified
    (or only submitted for release, with ``verified=False``); ``before_submit(s, number)``
    runs before the submission (e.g. to fill vials)."""
    from exotrace.records import (
        add_measurement,
        add_quality_result,
        assign_specification,
        create_lot,
        set_reference_value,
        submit_for_release,
        verify_lot,
    )

    an = users["analyst1"]
    create_lot(s, an, number, isolation_code=iso, intended_use="clinical_manufacturing",
               manufactured_on=date(2025, 3, 1), expires_on=date(2099, 3, 1),
               volume_ml=volume_ml)
    for attribute, value, unit, method in (
            ("size_d50", 121.0, "nm", "NTA"),
            ("particle_concentration", 1.0e11, "particles/mL", "NTA"),
            ("particle_protein_ratio", 3.0e10, "particles/ug", "calculated"),
            ("protein_concentration", 1.0e11 / 3.0e10, "ug/mL", "BCA")):
        add_measurement(s, an, number, attribute=attribute, value=value, unit=unit,
                        method=method)
    assign_specification(s, users["qa1"], number, spec_name)
    set_reference_value(s, an, number, "label_claim", 1.05e11, "particles/mL")
    for test, word in _QUALITATIVE.items():
        add_quality_result(s, an, number, test=test, value=word)
    for test, (value, unit) in _NUMERIC.items():
        add_quality_result(s, an, number, test=test, value=value, unit=unit)
    if before_submit is not None:
        before_submit(s, number)
    submit_for_release(s, an, number)
    if verified:
        verify_lot(s, users["reviewer1"], PASSWORD, number)


def setup(url: str, writers: int, release_lots_per_writer: int,
          subjects_per_writer: int = 12) -> None:
    """Users, one donor-to-isolation chain, and per writer: an import lot, a vial lot,
    ``release_lots_per_writer`` verified lots awaiting release, and
    ``subjects_per_writer`` subjects enrolled in the cardiomyopathy protocol with
    their vials of the released lot ADM1."""
    from exotrace.clinic import example_protocol_path
    from exotrace.quality import example_specification_path
    from exotrace.records import (
        Role,
        acting_as,
        add_cell_bank,
        add_collection,
        add_consent,
        add_donor,
        add_isolation_run,
        add_product,
        add_user,
        create_lot,
        create_vials,
        enrol_subject,
        import_protocol,
        import_specification,
        make_engine,
        release_lot,
        unit_of_work,
    )

    engine = make_engine(url)
    pw = _cheap_hash()
    with unit_of_work(engine) as s:
        admin = add_user(s, "admin1", Role.ADMIN, password_hash=pw)
        users = {"admin1": admin}
        for name, role in (("analyst1", Role.ANALYST), ("reviewer1", Role.REVIEWER),
                           ("reviewer2", Role.REVIEWER), ("qa1", Role.QA), ("qa2", Role.QA),
                           ("clinician1", Role.CLINICIAN)):
            users[name] = add_user(s, name, role, password_hash=pw, acting=admin)
            # Accounts an admin creates set their own password first; the campaign is
            # not about that flow, so each account is left as a password change leaves it.
            with acting_as(s, users[name]):
                users[name].must_change_password = False
                s.flush()
        an = users["analyst1"]
        add_donor(s, an, "D1", age_band="30-39", sex="female")
        add_consent(s, an, "D1", scopes=["research", "clinical_manufacturing"], version="v1",
                    consented_on=date(2025, 1, 10))
        add_cell_bank(s, an, "CB1", donor_code="D1", tissue="umbilical_cord", passage=4,
                      intended_use="clinical_manufacturing",
                      identity={"cd73_pct": 98.0, "cd90_pct": 99.0, "cd105_pct": 97.0,
                                "cd45_pct": 0.5, "hla_dr_pct": 0.2})
        add_collection(s, an, "COL1", cell_bank_code="CB1", medium="MEM alpha",
                       serum_condition="serum_free", volume_ml=500.0, culture_days=3,
                       cell_count=2.0e7)
        add_isolation_run(s, an, "ISO1", collection_code="COL1",
                          method="size_exclusion_chromatography", input_volume_ml=500,
                          output_volume_ml=2.0)
        spec, _ = import_specification(s, users["qa1"], example_specification_path())
        for w in range(writers):
            for prefix in ("IW", "VW"):
                create_lot(s, an, f"{prefix}{w}", isolation_code="ISO1",
                           intended_use="clinical_manufacturing",
                           manufactured_on=date(2025, 3, 1), volume_ml=2.0)
            for j in range(release_lots_per_writer):
                _releasable_lot(s, users, f"RW{w}-{j}", "ISO1", spec.name)
        # Administrations: a released lot (1e11 particles/mL) whose 20 mL vials hold the
        # 14 mL of level 3 (2e10 particles/kg) for 70 kg; each writer its own subjects
        # and vials, so that a refusal can only mean a fault, not a race between writers.
        vials_needed = writers * subjects_per_writer * ADMINISTRATIONS_PER_SUBJECT

        def fill(s, number):
            add_product(s, an, "INJ-ADM", lot_number=number, form="intravenous",
                        fill_volume_ml=20.0)
            create_vials(s, an, number, vials_needed, product_code="INJ-ADM")

        _releasable_lot(s, users, ADMIN_LOT, "ISO1", spec.name,
                        volume_ml=20.0 * vials_needed, before_submit=fill)
        release_lot(s, users["qa1"], PASSWORD, ADMIN_LOT)
        doc = users["clinician1"]
        import_protocol(s, doc, example_protocol_path(PROTOCOL))
        today = datetime.now(UTC).date()
        for w in range(writers):
            for j in range(subjects_per_writer):
                enrol_subject(s, doc, f"SW{w}-{j}", protocol_code="EXO-CARD-01", arm_code="IV",
                              enrolled_on=today, consent_version="S1", consent_signed_on=today,
                              body_weight_kg=70.0, sex="female", age_years=60,
                              baseline={"LVEF": (35.0, None)})
    engine.dispose()


def add_race_lots(url: str, n: int, *, verified: bool = True) -> list[str]:
    """``n`` more lots awaiting release, verified for :func:`release_race` or not yet
    (``verified=False``) for :func:`verify_race`."""
    import sqlalchemy as sa

    from exotrace.records import User, make_engine, repositories, unit_of_work

    engine = make_engine(url)
    with unit_of_work(engine) as s:
        users = {u: repositories.get_by(s, User, username=u)
                 for u in ("analyst1", "reviewer1", "qa1")}
        spec = s.execute(sa.text(
            "SELECT name FROM specification ORDER BY id LIMIT 1")).scalar()
        prefix = "RACE" if verified else "VRACE"
        numbers = [f"{prefix}-{i}" for i in range(n)]
        for number in numbers:
            _releasable_lot(s, users, number, "ISO1", spec, verified=verified)
    engine.dispose()
    return numbers


# ----------------------------------------------------------------------------- writers

class _Log:
    """Append-only side file; every line is on disk (fsync) before the writer goes on."""

    def __init__(self, path: Path) -> None:
        self._fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)

    def line(self, *fields: str) -> None:
        os.write(self._fd, (" ".join(fields) + "\n").encode())
        os.fsync(self._fd)


def _import_payload(folder: Path, key: str, rng: random.Random) -> Path:
    path = folder / f"{key}.json"
    path.write_text(json.dumps({"format": "nanosight-summary", "instrument": "NanoSight",
                                "key": key, "particles_per_ml": rng.uniform(1e10, 1e11),
                                "mode_nm": rng.uniform(90, 120), "mean_nm": rng.uniform(110, 140),
                                "d50_nm": rng.uniform(100, 130)}))
    return path


def writer_main(url: str, w: int, incarnation: int, log_dir: str, release_lots: int,
                seed: int, ready=None) -> None:
    """One writer process: operations until killed (or for ever), each logged A/C."""
    import sqlalchemy as sa

    from exotrace.records import (
        Lot,
        User,
        administer,
        create_vials,
        import_measurement_file,
        make_engine,
        release_lot,
        repositories,
        unit_of_work,
    )

    rng = random.Random(seed)
    engine = make_engine(url, pool_size=1, max_overflow=0)
    folder = Path(log_dir) / f"files-w{w}-i{incarnation}"
    folder.mkdir(exist_ok=True)
    log = _Log(Path(log_dir) / f"w{w}-i{incarnation}.log")
    released = _released_by_earlier_incarnations(Path(log_dir), w)
    pending = [f"RW{w}-{j}" for j in range(release_lots) if f"RW{w}-{j}" not in released]
    with unit_of_work(engine) as s:  # also connects: the start-up is behind us after this
        lot = repositories.get_by(s, Lot, number=ADMIN_LOT)
        vials = [v.identifier for v in repositories.list_vials(s, lot_id=lot.id)]
        subjects = sorted(set(s.execute(sa.text(
            "SELECT code FROM subject WHERE code LIKE :p"), {"p": f"SW{w}-%"}).scalars()))
    per_writer = len(subjects) * ADMINISTRATIONS_PER_SUBJECT
    # An administration an earlier incarnation attempted is never retried: its vial is
    # not reused, and it counts against its subject's three infusions.
    tried = _attempted_administrations(Path(log_dir), w)
    free_vials = [v for v in vials[w * per_writer:(w + 1) * per_writer]
                  if v not in {key.split("/")[1] for key in tried}]
    slots = [c for c in subjects for _ in range(ADMINISTRATIONS_PER_SUBJECT
                                                - sum(k.split("/")[0] == c for k in tried))]
    if ready is not None:
        ready.put(w)
    seq = 0
    while True:
        seq += 1
        op = rng.choices(["import", "vials", "release", "administer"],
                         weights=[5, 3, 2 if pending else 0,
                                  3 if slots and free_vials else 0])[0]
        if op == "import":
            key = f"w{w}-i{incarnation}-s{seq}"
            path = _import_payload(folder, key, rng)
            log.line("A", op, key)
            with unit_of_work(engine) as s:
                an = repositories.get_by(s, User, username="analyst1")
                import_measurement_file(s, f"IW{w}", path, an,
                                        reader=lambda p: json.loads(p.read_text()))
        elif op == "vials":
            key = f"VW{w}"
            log.line("A", op, key)
            with unit_of_work(engine) as s:
                an = repositories.get_by(s, User, username="analyst1")
                create_vials(s, an, key, VIAL_BATCH)
        elif op == "release":
            key = pending.pop(0)
            log.line("A", op, key)
            with unit_of_work(engine) as s:
                qa = repositories.get_by(s, User, username="qa1")
                release_lot(s, qa, PASSWORD, key)
        else:
            subject, vial = slots.pop(0), free_vials.pop(0)
            key = f"{subject}/{vial}"
            log.line("A", op, key)
            with unit_of_work(engine) as s:
                doc = repositories.get_by(s, User, username="clinician1")
                administer(s, doc, subject_code=subject, vial_identifier=vial,
                           site="left forearm vein")
        log.line("C", op, key)


def _released_by_earlier_incarnations(log_dir: Path, w: int) -> set[str]:
    """Release lots an earlier incarnation attempted: committed or not, not retried."""
    done = set()
    for p in log_dir.glob(f"w{w}-i*.log"):
        for ln in p.read_text().splitlines():
            parts = ln.split()
            if len(parts) == 3 and parts[1] == "release":
                done.add(parts[2])
    return done


def _attempted_administrations(log_dir: Path, w: int) -> set[str]:
    """``subject/vial`` keys an earlier incarnation of writer ``w`` attempted."""
    keys = set()
    for p in log_dir.glob(f"w{w}-i*.log"):
        for ln in p.read_text().splitlines():
            parts = ln.split()
            if len(parts) == 3 and parts[1] == "administer":
                keys.add(parts[2])
    return keys


def _start(ctx, url, w, inc, log_dir, release_lots, seed, ready=None):
    p = ctx.Process(target=writer_main, args=(url, w, inc, log_dir, release_lots, seed, ready),
                    daemon=True)
    p.start()
    return p


def campaign(url: str, *, writers: int, duration_s: float, kills: int, release_lots: int,
             seed: int = 7, log_dir: str | None = None) -> dict:
    """Run the writers, SIGKILL ``kills`` of them at random moments, then check everything."""
    ctx = mp.get_context("spawn")
    rng = random.Random(seed)
    with tempfile.TemporaryDirectory(prefix="exotrace-faults-") as tmp:
        log_dir = log_dir or tmp
        incarnation = {w: 0 for w in range(writers)}
        ready = ctx.Queue()
        procs = {w: _start(ctx, url, w, 0, log_dir, release_lots, seed * 1000 + w, ready)
                 for w in range(writers)}
        for _ in range(writers):  # the clock starts when every writer is connected
            ready.get(timeout=300)
        kill_at = sorted(rng.uniform(0.15, 0.95) * duration_s for _ in range(kills))
        t0 = time.monotonic()
        died = Counter()
        for at in kill_at:
            time.sleep(max(0.0, at - (time.monotonic() - t0)))
            w = rng.randrange(writers)
            os.kill(procs[w].pid, signal.SIGKILL)
            procs[w].join()
            incarnation[w] += 1
            procs[w] = _start(ctx, url, w, incarnation[w], log_dir, release_lots,
                              seed * 1000 + w + 100 * incarnation[w])
        time.sleep(max(0.0, duration_s - (time.monotonic() - t0)))
        for w, p in procs.items():
            if not p.is_alive():
                died[w] += 1  # a writer that stopped by itself hit an error: reported
            os.kill(p.pid, signal.SIGKILL)  # the end of the run is a kill too
            p.join()
        elapsed = time.monotonic() - t0
        result = check(url, Path(log_dir))
    result.update({"writers": writers, "duration_s": round(elapsed, 1),
                   "sigkills": kills + writers, "writers_died_on_their_own": sum(died.values())})
    return result


# ----------------------------------------------------------------------------- checks

def _read_logs(log_dir: Path) -> tuple[Counter, Counter]:
    attempted, committed = Counter(), Counter()
    for p in sorted(log_dir.glob("w*-i*.log")):
        for ln in p.read_text().splitlines():
            parts = ln.split()
            if len(parts) != 3:  # a line cut by the kill never reached fsync's return
                continue
            (attempted if parts[0] == "A" else committed)[(parts[1], parts[2])] += 1
    return attempted, committed


def check(url: str, log_dir: Path) -> dict:
    """Compare the side logs with the database; every problem is listed."""
    import sqlalchemy as sa

    from exotrace.records import make_engine, unit_of_work, verify_audit_trail

    attempted, committed = _read_logs(log_dir)
    engine = make_engine(url)
    problems: list[str] = []
    with unit_of_work(engine) as s:
        report = verify_audit_trail(s)
        files = s.execute(sa.text(
            "SELECT r.result_json, count(m.id) FROM result_file r "
            "LEFT JOIN measurement m ON m.result_file_id = r.id GROUP BY r.id, r.result_json"
        )).all()
        released = s.execute(sa.text(
            "SELECT l.number, l.status, "
            "(SELECT count(*) FROM lot_disposition d WHERE d.lot_id = l.id "
            " AND d.action = 'release'), "
            "(SELECT count(*) FROM signature g JOIN lot_disposition d ON g.record_id = d.id "
            " AND g.table_name = 'lot_disposition' WHERE d.lot_id = l.id) "
            "FROM lot l WHERE l.number LIKE 'RW%'")).all()
        vials = dict(s.execute(sa.text(
            "SELECT l.number, count(v.id) FROM lot l LEFT JOIN vial v ON v.lot_id = l.id "
            "WHERE l.number LIKE 'VW%' GROUP BY l.number")).all())
        administrations, orphan_vials = _stored_administrations(s)
    engine.dispose()
    problems += [f.message for f in report.findings[:5]]
    # Imports: each stored file whole, stored once, attempted; each committed one stored.
    stored = Counter()
    for result_json, n in files:
        key = json.loads(result_json).get("key")
        stored[key] += 1
        if n != MEASUREMENTS_PER_FILE:
            problems.append(f"import {key}: {n} measurements (a half-written import)")
        if ("import", key) not in attempted:
            problems.append(f"import {key} stored but never attempted")
    problems += [f"import {k} stored {n} times" for k, n in stored.items() if n > 1]
    lost = [k for (op, k) in committed if op == "import" and k not in stored]
    # Releases: whole (status, one disposition, its signature) or absent.
    rel_stored = set()
    for number, status, n_disp, n_sig in released:
        if status == "released" or n_disp or n_sig:
            rel_stored.add(number)
            if (status, n_disp, n_sig) != ("released", 1, 1):
                problems.append(f"release {number}: status {status}, {n_disp} dispositions, "
                                f"{n_sig} signatures (not whole)")
            if ("release", number) not in attempted:
                problems.append(f"release {number} stored but never attempted")
    lost += [k for (op, k) in committed if op == "release" and k not in rel_stored]
    # Vials: whole batches, between the committed and the attempted fills.
    for number, n in vials.items():
        lo = committed[("vials", number)] * VIAL_BATCH
        hi = attempted[("vials", number)] * VIAL_BATCH
        if n % VIAL_BATCH:
            problems.append(f"lot {number}: {n} vials, not whole batches of {VIAL_BATCH}")
        if n < lo:
            lost.append(f"{number}: {(lo - n) // VIAL_BATCH} committed vial batches")
        if n > hi:
            problems.append(f"lot {number}: {n} vials, more than the {hi} attempted")
    # Administrations: whole (the row, its audit entry, the vial administered with the
    # audit entry of that change) or absent (the vial still available, nothing audited).
    adm_stored = Counter()
    for key, whole in administrations:
        adm_stored[key] += 1
        if whole:
            problems.append(f"administration {key}: {whole} (not whole)")
        if ("administer", key) not in attempted:
            problems.append(f"administration {key} stored but never attempted")
    problems += [f"administration {k} stored {n} times" for k, n in adm_stored.items() if n > 1]
    problems += orphan_vials
    lost += [k for (op, k) in committed if op == "administer" and k not in adm_stored]
    problems += [f"lost: {k}" for k in lost]
    n_commit = Counter(op for (op, _k), c in committed.items() for _ in range(c))
    n_attempt = Counter(op for (op, _k), c in attempted.items() for _ in range(c))
    return {"ok": not problems and report.ok, "problems": problems[:20],
            "committed": dict(n_commit), "attempted": dict(n_attempt),
            "interrupted": sum(n_attempt.values()) - sum(n_commit.values()),
            "lost": len(lost), "audit_ok": report.ok, "audit_entries": report.entries_checked}


def _stored_administrations(s) -> tuple[list[tuple[str, str]], list[str]]:
    """``(subject/vial, what is missing)`` per stored administration of lot ADM1 (``""``
    when whole), and a problem per vial of that lot changed without an administration."""
    import sqlalchemy as sa

    rows = s.execute(sa.text(
        "SELECT v.id, v.identifier, v.status, a.id, sj.code FROM vial v "
        "JOIN lot l ON l.id = v.lot_id LEFT JOIN administration a ON a.vial_id = v.id "
        "LEFT JOIN subject sj ON sj.id = a.subject_id WHERE l.number = :n"),
        {"n": ADMIN_LOT}).all()
    audit = Counter(s.execute(sa.text(
        "SELECT table_name, record_pk, action, reason FROM audit_entry "
        "WHERE table_name IN ('administration', 'vial') AND action IN ('create', 'update')"
    )).all())
    created = Counter((t, pk) for (t, pk, action, _r), n in audit.items()
                      if action == "create" for _ in range(n))
    given = Counter((pk, r.split(" (administration ")[-1].rstrip(")"))
                    for (t, pk, action, r), n in audit.items()
                    if t == "vial" and action == "update" and r
                    and r.startswith("administered to subject ") for _ in range(n))
    out, orphans = [], []
    for vial_id, identifier, status, adm_id, subject in rows:
        if adm_id is None:
            n_given = sum(n for (pk, _a), n in given.items() if pk == str(vial_id))
            if status != "available" or n_given:
                orphans.append(f"vial {identifier}: {status}, {n_given} audited administrations, "
                               "but no administration stored (half-written)")
            continue
        missing = []
        if created[("administration", str(adm_id))] != 1:
            missing.append(f"{created[('administration', str(adm_id))]} create audit entries")
        if status != "administered":
            missing.append(f"vial {status}")
        if given[(str(vial_id), str(adm_id))] != 1:
            missing.append(f"{given[(str(vial_id), str(adm_id))]} audited vial status changes")
        out.append((f"{subject}/{identifier}", ", ".join(missing)))
    return out, orphans


# ----------------------------------------------------------------------------- release race

def race_worker(url: str, username: str, number: str, barrier, out,
                action: str = "release") -> None:
    """Release (or verify) ``number`` as ``username`` once the other user is ready too."""
    from exotrace.errors import ExotraceError
    from exotrace.records import (
        User,
        make_engine,
        release_lot,
        repositories,
        unit_of_work,
        verify_lot,
    )

    engine = make_engine(url)
    try:
        with unit_of_work(engine) as s:  # connected and warm before the barrier
            repositories.get_by(s, User, username=username)
        # The transaction starts after the barrier: on SQLite an open transaction
        # holds the write lock, and the other process could not reach the barrier.
        barrier.wait(timeout=60)
        with unit_of_work(engine) as s:
            person = repositories.get_by(s, User, username=username)
            decide = release_lot if action == "release" else verify_lot
            decide(s, person, PASSWORD, number)
        out.put((username, "released" if action == "release" else "verified", ""))
    except ExotraceError as exc:
        out.put((username, type(exc).__name__, str(exc)))
    except Exception as exc:  # noqa: BLE001 - an internal error is an outcome to report
        out.put((username, f"internal {type(exc).__name__}", str(exc)[:200]))
    finally:
        engine.dispose()


def release_race(url: str, number: str) -> list[tuple[str, str, str]]:
    """Two processes (qa1, qa2) release ``number`` at once; their outcomes."""
    return _race(url, number, ("qa1", "qa2"), "release")


def verify_race(url: str, number: str) -> list[tuple[str, str, str]]:
    """Two processes (reviewer1, reviewer2) verify ``number`` at once; their outcomes."""
    return _race(url, number, ("reviewer1", "reviewer2"), "verify")


def _race(url: str, number: str, usernames: tuple[str, str],
          action: str) -> list[tuple[str, str, str]]:
    ctx = mp.get_context("spawn")
    barrier, out = ctx.Barrier(2), ctx.Queue()
    procs = [ctx.Process(target=race_worker, args=(url, u, number, barrier, out, action))
             for u in usernames]
    for p in procs:
        p.start()
    outcomes = [out.get(timeout=120) for _ in procs]
    for p in procs:
        p.join()
    return sorted(outcomes)


def verification_count(url: str, number: str) -> int:
    import sqlalchemy as sa

    from exotrace.records import make_engine

    engine = make_engine(url)
    with engine.connect() as conn:
        n = conn.execute(sa.text(
            "SELECT count(*) FROM lot_verification v JOIN lot l ON l.id = v.lot_id "
            "WHERE l.number = :n"), {"n": number}).scalar()
    engine.dispose()
    return n


def release_disposition_count(url: str, number: str) -> int:
    import sqlalchemy as sa

    from exotrace.records import make_engine

    engine = make_engine(url)
    with engine.connect() as conn:
        n = conn.execute(sa.text(
            "SELECT count(*) FROM lot_disposition d JOIN lot l ON l.id = d.lot_id "
            "WHERE l.number = :n AND d.action = 'release'"), {"n": number}).scalar()
    engine.dispose()
    return n


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--backend", choices=["postgresql", "sqlite"], default="postgresql")
    ap.add_argument("--writers", type=int, default=8)
    ap.add_argument("--duration", type=float, default=60.0)
    ap.add_argument("--kills", type=int, default=12)
    ap.add_argument("--release-lots", type=int, default=6, help="verified lots per writer")
    ap.add_argument("--races", type=int, default=5)
    args = ap.parse_args()
    if args.backend == "postgresql" and not postgres_available():
        raise SystemExit("PostgreSQL not reachable (EXOTRACE_TEST_POSTGRES_URL)")
    print(f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC; {platform.platform()}; "
          f"{os.cpu_count()} CPUs; load {os.getloadavg()[0]:.1f}; backend {args.backend}",
          flush=True)
    with throwaway_database(args.backend) as url:
        t0 = time.monotonic()
        setup(url, args.writers, args.release_lots)
        race_lots = add_race_lots(url, args.races)
        print(f"set-up: {time.monotonic() - t0:.0f} s", flush=True)
        result = campaign(url, writers=args.writers, duration_s=args.duration, kills=args.kills,
                          release_lots=args.release_lots)
        print(json.dumps(result), flush=True)
        outcomes = Counter()
        for number in race_lots:
            got = release_race(url, number)
            kinds = sorted(k for _, k, _ in got)
            outcomes[" + ".join(kinds)] += 1
            print(f"race on {number}: {got}; release dispositions stored: "
                  f"{release_disposition_count(url, number)}", flush=True)
        print(json.dumps({"races": args.races, "outcomes": dict(outcomes)}))
    sys.exit(0 if result["ok"] else 1)


if __name__ == "__main__":
    main()
