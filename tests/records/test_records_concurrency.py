"""Concurrent writers append to one unforked chain (real commits on a fresh database)."""

import threading

from exotrace.records import (
    Donor,
    Role,
    add_donor,
    add_user,
    make_engine,
    unit_of_work,
    verify_audit_trail,
)
from exotrace.records import repositories as repo


def test_concurrent_writers_keep_one_chain(fresh_db_url, test_password_hash):
    engine = make_engine(fresh_db_url)
    with unit_of_work(engine) as s:
        admin = add_user(s, "admin1", Role.ADMIN, password_hash=test_password_hash)
        add_user(s, "analyst1", Role.ANALYST, password_hash=test_password_hash, acting=admin)
    writers, per_writer = 4, 6
    errors = []

    def work(w):
        try:
            for i in range(per_writer):
                with unit_of_work(engine) as s:
                    analyst = repo.get_by(s, type(admin), username="analyst1")
                    add_donor(s, analyst, f"W{w}-{i}", age_band="30-39", sex="female")
        except Exception as exc:  # noqa: BLE001 - collected and asserted below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(w,)) for w in range(writers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    with unit_of_work(engine) as s:
        codes = sorted(d.code for d in repo.list_all(s, Donor))
        assert codes == sorted(f"W{w}-{i}" for w in range(writers) for i in range(per_writer))
        report = verify_audit_trail(s)
        assert report.ok, report.findings
        # 2 users + 24 donors, one entry each, numbered 1..26 without gaps or forks.
        assert report.entries_checked == 2 + writers * per_writer
    engine.dispose()
