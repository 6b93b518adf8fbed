"""Writer processes killed with SIGKILL, and two QA users releasing one lot at once.

A short run of ``benchmarks/records_faults.py`` (3 writers, 6 s, 2 random kills
plus the final kill of every writer) on a throw-away PostgreSQL database; the
full campaign (8 writers, 60 s) and its figures are in docs/reliability.md.
"""

from __future__ import annotations

import sys
import uuid
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import make_url

from _db_fixtures import postgres_admin_url

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))

import records_faults as rf  # noqa: E402

pytestmark = pytest.mark.postgres


@pytest.fixture(scope="module")
def template_url():
    """A migrated PostgreSQL database set up for 3 writers (lots, subjects, vials)."""
    from exotrace.records import make_engine, upgrade_database

    admin_url = postgres_admin_url()
    if admin_url is None:
        pytest.skip("no PostgreSQL server (set EXOTRACE_TEST_POSTGRES_URL)")
    name = f"exotrace_t_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(admin_url, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    except sa.exc.OperationalError as exc:
        pytest.skip(f"PostgreSQL not usable: {str(exc.orig).splitlines()[0]}")
    url = make_url(admin_url).set(database=name).render_as_string(hide_password=False)
    engine = make_engine(url)
    upgrade_database(engine)
    engine.dispose()
    rf.setup(url, writers=3, release_lots_per_writer=3, subjects_per_writer=2)
    yield url
    with admin.connect() as conn:
        conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    admin.dispose()


@pytest.fixture
def pg_url(template_url):
    """A copy of the set-up database for one test (what one test plants, no other sees)."""
    admin = sa.create_engine(postgres_admin_url(), isolation_level="AUTOCOMMIT")
    name = f"exotrace_t_{uuid.uuid4().hex[:12]}"
    with admin.connect() as conn:
        conn.exec_driver_sql(
            f'CREATE DATABASE "{name}" TEMPLATE "{make_url(template_url).database}"')
    yield make_url(template_url).set(database=name).render_as_string(hide_password=False)
    with admin.connect() as conn:
        conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    admin.dispose()


def test_killed_writers_lose_nothing_and_leave_nothing_half_written(pg_url, tmp_path):
    result = rf.campaign(pg_url, writers=3, duration_s=6.0, kills=2, release_lots=3, seed=3,
                         log_dir=str(tmp_path))
    assert result["problems"] == [] and result["ok"], result
    assert result["lost"] == 0 and result["audit_ok"]
    assert result["writers_died_on_their_own"] == 0
    # Some work was committed (6 s of 3 writers), and 5 SIGKILLs hit running writers.
    assert sum(result["committed"].values()) >= 3, result
    assert result["sigkills"] == 5

    # The checker itself finds what it is there to find: a logged commit that is not
    # in the database (a lost write) and a result file missing a measurement.
    (tmp_path / "w0-i99.log").write_text("A import ghost-key\nC import ghost-key\n")
    engine = sa.create_engine(pg_url)
    with engine.begin() as conn:
        conn.execute(sa.text("DELETE FROM measurement WHERE id = (SELECT max(id) FROM "
                             "measurement WHERE result_file_id IS NOT NULL)"))
    engine.dispose()
    planted = rf.check(pg_url, tmp_path)
    assert planted["lost"] == 1 and not planted["ok"]
    assert any("3 measurements (a half-written import)" in p for p in planted["problems"])
    assert any("ghost-key" in p for p in planted["problems"])


def _free_admin_vial(url: str, writer: int) -> tuple[str, str]:
    """A subject of ``writer`` with an infusion left and an available vial of lot ADM1."""
    engine = sa.create_engine(url)
    with engine.connect() as conn:
        subject = conn.execute(sa.text(
            "SELECT s.code FROM subject s LEFT JOIN administration a ON a.subject_id = s.id "
            "WHERE s.code LIKE :p GROUP BY s.code HAVING count(a.id) < 3 ORDER BY s.code"),
            {"p": f"SW{writer}-%"}).scalars().first()
        vial = conn.execute(sa.text(
            "SELECT v.identifier FROM vial v JOIN lot l ON l.id = v.lot_id "
            "WHERE l.number = 'ADM1' AND v.status = 'available' ORDER BY v.id DESC")).scalar()
    engine.dispose()
    return subject, vial


def test_the_checker_finds_half_written_and_lost_administrations(pg_url, tmp_path):
    from exotrace.records import User, administer, make_engine, repositories, unit_of_work

    # One administration through the clinic services, logged as a writer logs it: whole.
    subject, vial = _free_admin_vial(pg_url, 2)
    key = f"{subject}/{vial}"
    engine = make_engine(pg_url)
    with unit_of_work(engine) as s:
        doc = repositories.get_by(s, User, username="clinician1")
        administer(s, doc, subject_code=subject, vial_identifier=vial)
    engine.dispose()
    (tmp_path / "w2-i50.log").write_text(f"A administer {key}\nC administer {key}\n")
    clean = rf.check(pg_url, tmp_path)
    assert clean["ok"] and clean["committed"] == {"administer": 1}, clean

    # Its vial put back behind the services: the administration is no longer whole.
    # Another vial marked administered with no administration: half-written.
    # A logged commit of an administration that is not stored: lost.
    _, orphan = _free_admin_vial(pg_url, 2)
    raw = sa.create_engine(pg_url)
    with raw.begin() as conn:
        conn.execute(sa.text("UPDATE vial SET status = 'available' WHERE identifier = :v"),
                     {"v": vial})
        conn.execute(sa.text("UPDATE vial SET status = 'administered' WHERE identifier = :v"),
                     {"v": orphan})
    raw.dispose()
    (tmp_path / "w2-i51.log").write_text("A administer SW2-0/GHOSTVIAL\n"
                                         "C administer SW2-0/GHOSTVIAL\n")
    planted = rf.check(pg_url, tmp_path)
    assert not planted["ok"] and planted["lost"] == 1, planted
    problems = " | ".join(planted["problems"])
    assert f"administration {key}: vial available (not whole)" in problems
    assert f"vial {orphan}: administered, 0 audited administrations, but no administration" \
        in problems
    assert "lost: SW2-0/GHOSTVIAL" in problems


def test_two_qa_users_releasing_one_lot_one_wins_one_gets_a_conflict(pg_url):
    number = rf.add_race_lots(pg_url, 1)[0]
    outcomes = rf.release_race(pg_url, number)
    kinds = sorted(kind for _user, kind, _msg in outcomes)
    assert kinds == ["Conflict", "released"], outcomes
    message = next(msg for _u, kind, msg in outcomes if kind == "Conflict")
    assert f"lot {number} became released" in message and "nothing was written" in message
    assert rf.release_disposition_count(pg_url, number) == 1


def test_two_reviewers_verifying_one_lot_store_one_verification(pg_url):
    number = rf.add_race_lots(pg_url, 1, verified=False)[0]
    outcomes = rf.verify_race(pg_url, number)
    kinds = sorted(kind for _user, kind, _msg in outcomes)
    # The second verifier waits on the lot's row, then finds it verified: the
    # workflow refuses a second verification (RuleViolation), nothing is stored twice.
    assert kinds == ["RuleViolation", "verified"], outcomes
    assert rf.verification_count(pg_url, number) == 1
