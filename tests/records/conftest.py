"""A small donor-to-lot chain built through the services, for the records tests."""

from __future__ import annotations

from datetime import date

import pytest

from exotrace.records import (
    Role,
    SignatureMeaning,
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
    sign,
    unit_of_work,
)


def build_chain(session, users, *, donor="D-001", suffix="1",
                scopes=("research", "clinical_manufacturing")):
    """donor -> consent -> cell bank -> collection -> isolation run -> lot (analyst1 writes)."""
    analyst = users["analyst"]
    if session.info.get("_chain_donor_" + donor) is None:
        add_donor(session, analyst, donor, age_band="30-39", sex="female",
                  exposures="non-smoker")
        add_consent(session, analyst, donor, scopes=scopes, version="v2.1",
                    consented_on=date(2025, 1, 10))
        session.info["_chain_donor_" + donor] = True
    bank = add_cell_bank(session, analyst, f"CB-{donor}-{suffix}", donor_code=donor,
                         tissue="umbilical_cord", passage=4, intended_use="clinical_manufacturing",
                         identity={"cd73_pct": 98.7, "cd90_pct": 99.1, "cd105_pct": 97.5,
                                   "cd45_pct": 0.4, "hla_dr_pct": 0.2})
    coll = add_collection(session, analyst, f"COL-{donor}-{suffix}", cell_bank_code=bank.code,
                          medium="MEM alpha", serum_condition="serum_free", volume_ml=500.0,
                          culture_days=3, cell_count=2.0e7)
    reagent = add_reagent_batch(session, analyst, f"RB-{donor}-{suffix}", name="PBS",
                                batch_number=f"P{suffix}", supplier="Gibco")
    run = add_isolation_run(session, analyst, f"ISO-{donor}-{suffix}", collection_code=coll.code,
                            method="differential_ultracentrifugation", g_force=100_000,
                            duration_min=70, rotor="SW32Ti", k_factor=204,
                            input_volume_ml=500, output_volume_ml=1.0,
                            reagent_codes=[reagent.code])
    lot = create_lot(session, analyst, f"L-{donor}-{suffix}", isolation_code=run.code,
                     intended_use="clinical_manufacturing", manufactured_on=date(2025, 3, 1),
                     expires_on=date(2036, 3, 1), volume_ml=10.0)
    return {"bank": bank, "collection": coll, "reagent": reagent, "run": run, "lot": lot}


@pytest.fixture
def chain(session, record_users):
    return build_chain(session, record_users)


@pytest.fixture
def populated(fresh_db_url, test_password_hash, monkeypatch):
    """A committed database: users, a donor-to-lot chain (lot ``L-D-001-1``), 25 vials and
    two signatures; passwords :data:`TEST_PASSWORD`, cheap argon2 for the test."""
    from argon2 import PasswordHasher

    from _db_fixtures import TEST_PASSWORD, settle_first_passwords
    from exotrace.records import _auth

    monkeypatch.setattr(_auth, "_hasher", PasswordHasher(time_cost=1, memory_cost=1024,
                                                         parallelism=1))
    engine = make_engine(fresh_db_url)
    with unit_of_work(engine) as s:
        admin = add_user(s, "admin1", Role.ADMIN, password_hash=test_password_hash)
        users = {"admin": admin}
        for role in (Role.ANALYST, Role.REVIEWER, Role.QA):
            users[role.value] = add_user(s, f"{role.value}1", role,
                                         password_hash=test_password_hash, acting=admin)
        settle_first_passwords(s, users.values())
        chain = build_chain(s, users)
        create_vials(s, users["analyst"], chain["lot"].number, 25)
        sign(s, users["reviewer"], TEST_PASSWORD, chain["lot"], SignatureMeaning.REVIEW)
        sign(s, users["qa"], TEST_PASSWORD, chain["run"], SignatureMeaning.APPROVAL)
    engine.dispose()
    return fresh_db_url
