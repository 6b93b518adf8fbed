"""Segregation of duties with a different person in every role, each forbidden pair refused.

The lot is created by analyst1, its isolation run performed by one person,
its results entered by analyst2, its instrument file imported by a third.
Whoever did any of these may not verify or release the lot; the verifier
may not release it (unless the setting allows it). Each case is refused in
turn, and an independent person is allowed, so a check that stopped
counting one kind of producer fails here.
"""

from __future__ import annotations

from datetime import date

import pytest

from _db_fixtures import TEST_PASSWORD, settle_first_passwords
from exotrace.errors import PermissionDenied
from exotrace.records import (
    Lot,
    ResultFile,
    Role,
    acting_as,
    add_cell_bank,
    add_collection,
    add_consent,
    add_donor,
    add_isolation_run,
    add_user,
    check_segregation,
    create_lot,
    lot_data_producers,
    release_lot,
    submit_for_release,
    verify_lot,
)
from exotrace.records import repositories as repo

from .conftest import enter_release_results

_MEASURED = (("size_d50", 121.0, "nm", "NTA"),
             ("particle_concentration", 1.0e11, "particles/mL", "NTA"),
             ("particle_protein_ratio", 3.0e10, "particles/ug", "calculated"),
             ("protein_concentration", 1.0e11 / 3.0e10, "ug/mL", "BCA"))


@pytest.fixture
def people(session, record_users, test_password_hash):
    """One person per duty: the record users plus a third QA and a second reviewer."""
    admin = record_users["admin"]
    extra = {name: add_user(session, name, role, password_hash=test_password_hash, acting=admin)
             for name, role in (("qa3", Role.QA), ("reviewer2", Role.REVIEWER))}
    settle_first_passwords(session, extra.values())
    return {**record_users, **extra}


def _lot_operated_by(session, people, operator, number="SG-1"):
    """A lot whose isolation run ``operator`` performed; everything else by analysts."""
    analyst, analyst2 = people["analyst"], people["analyst2"]
    donor = f"SD-{number}"
    add_donor(session, analyst, donor, age_band="30-39", sex="female")
    add_consent(session, analyst, donor, scopes=["research", "clinical_manufacturing"],
                version="v1", consented_on=date(2025, 1, 10))
    add_cell_bank(session, analyst, f"CB-{number}", donor_code=donor, tissue="umbilical_cord",
                  passage=4, intended_use="clinical_manufacturing")
    add_collection(session, analyst, f"COL-{number}", cell_bank_code=f"CB-{number}",
                   medium="MEM alpha", serum_condition="serum_free", volume_ml=500.0,
                   culture_days=3)
    add_isolation_run(session, analyst, f"ISO-{number}", collection_code=f"COL-{number}",
                      method="size_exclusion_chromatography", input_volume_ml=500,
                      output_volume_ml=2.0, operator=operator)
    create_lot(session, analyst, number, isolation_code=f"ISO-{number}",
               intended_use="clinical_manufacturing", manufactured_on=date(2025, 3, 1),
               expires_on=date(2028, 3, 1), volume_ml=2.0)
    from exotrace.records import add_measurement

    for attribute, value, unit, method in _MEASURED:
        add_measurement(session, analyst2, number, attribute=attribute, value=value, unit=unit,
                        method=method)
    enter_release_results(session, analyst2, number)
    submit_for_release(session, analyst2, number)
    return repo.get_by(session, Lot, number=number)


def test_each_producer_is_named_with_what_they_did(session, people, spec_record):
    lot = _lot_operated_by(session, people, people["reviewer2"])
    # an instrument file imported by an account that holds QA rights today (a role change)
    with acting_as(session, people["analyst"]):
        session.add(ResultFile(lot_id=lot.id, file_name="nta.csv", sha256="0" * 64,
                               imported_by_id=people["qa3"].id))
        session.flush()
    producers = lot_data_producers(session, lot)
    named = {u: producers.get(people[u].id, "") for u in
             ("analyst", "analyst2", "reviewer2", "qa3", "qa", "reviewer")}
    assert named["analyst"] == "created lot SG-1"
    assert named["analyst2"].startswith("entered measurement ")
    assert named["reviewer2"] == "performed the isolation run of lot SG-1"
    assert named["qa3"] == "imported nta.csv for lot SG-1"
    assert named["qa"] == named["reviewer"] == ""  # independent people produced nothing


@pytest.mark.parametrize(("duty", "action"), [
    ("reviewer2", "verify"),     # isolation operator verifying
    ("qa3", "release"),          # isolation operator releasing
])
def test_isolation_operator_may_neither_verify_nor_release(session, people, spec_record, duty,
                                                           action):
    _lot_operated_by(session, people, people[duty])
    with pytest.raises(PermissionDenied, match=f"{people[duty].username} performed the "
                                               "isolation run of lot SG-1"):
        if action == "verify":
            verify_lot(session, people[duty], TEST_PASSWORD, "SG-1")
        else:
            verify_lot(session, people["reviewer"], TEST_PASSWORD, "SG-1")
            release_lot(session, people[duty], TEST_PASSWORD, "SG-1")


def test_result_importer_may_not_release(session, people, spec_record):
    lot = _lot_operated_by(session, people, people["analyst"])
    with acting_as(session, people["analyst"]):
        session.add(ResultFile(lot_id=lot.id, file_name="nta.csv", sha256="1" * 64,
                               imported_by_id=people["qa3"].id))
        session.flush()
    with pytest.raises(PermissionDenied, match="qa3 imported nta.csv for lot SG-1"):
        check_segregation(session, people["qa3"], lot, action="release")
    check_segregation(session, people["qa"], lot, action="release")  # independent: allowed


def test_independent_people_in_every_role_release(session, people, spec_record):
    _lot_operated_by(session, people, people["analyst"])
    verify_lot(session, people["reviewer"], TEST_PASSWORD, "SG-1")
    out = release_lot(session, people["qa"], TEST_PASSWORD, "SG-1")
    assert out["status"] == "released"
    assert out["signature"]["printed_name"] == people["qa"].printed_name


def test_lot_creator_and_result_enterer_may_not_verify_or_release(session, people, spec_record):
    lot = _lot_operated_by(session, people, people["analyst"])
    for who, what in (("analyst", "created lot SG-1"), ("analyst2", "entered measurement")):
        for action in ("verify", "release"):
            with pytest.raises(PermissionDenied, match=f"{people[who].username} {what}.*may "
                                                       f"not {action} it"):
                check_segregation(session, people[who], lot, action=action)
