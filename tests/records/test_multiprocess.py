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
def pg_url():
    """A migrated PostgreSQL database with 3 writers' lots and 2 race lots."""
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
    rf.setup(url, writers=3, release_lots_per_writer=3)
    yield url
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
