"""A donor-to-lot chain with the example specification, built through the services."""

from __future__ import annotations

from datetime import date

import pytest
from argon2 import PasswordHasher

from exotrace.quality import example_specification_path
from exotrace.records import (
    add_cell_bank,
    add_collection,
    add_consent,
    add_donor,
    add_isolation_run,
    add_measurement,
    add_quality_result,
    create_lot,
    import_specification,
    set_reference_value,
)

#: Passing release results (qualitative and numeric) of the example specification.
PASSING = {"CD9": "present", "CD63": "present", "CD81": "present", "TSG101": "present",
           "calnexin": "absent", "GM130": "absent", "sterility": "negative",
           "mycoplasma": "negative"}
NUMERIC = {"endotoxin": (0.12, "EU/mL"), "fraction_50_400nm": (94.0, "%"),
           "potency": (104.0, "%")}


def build_source(session, analyst, *, donor="QD-1"):
    """donor -> consent -> cell bank -> collection -> isolation run (code ``ISO-<donor>``)."""
    add_donor(session, analyst, donor, age_band="30-39", sex="female")
    add_consent(session, analyst, donor, scopes=["research", "clinical_manufacturing"],
                version="v1", consented_on=date(2025, 1, 10))
    add_cell_bank(session, analyst, f"CB-{donor}", donor_code=donor, tissue="umbilical_cord",
                  passage=4, intended_use="clinical_manufacturing",
                  identity={"cd73_pct": 98.0, "cd90_pct": 99.0, "cd105_pct": 97.0,
                            "cd45_pct": 0.5, "hla_dr_pct": 0.2})
    add_collection(session, analyst, f"COL-{donor}", cell_bank_code=f"CB-{donor}",
                   medium="MEM alpha", serum_condition="serum_free", volume_ml=500.0,
                   culture_days=3, cell_count=2.0e7)
    add_isolation_run(session, analyst, f"ISO-{donor}", collection_code=f"COL-{donor}",
                      method="size_exclusion_chromatography", input_volume_ml=500,
                      output_volume_ml=2.0)
    return f"ISO-{donor}"


def make_lot(session, analyst, number, iso, *, manufactured_on=date(2025, 3, 1),
             d50=121.0, conc=1.0e11, purity=3.0e10):
    """A lot with NTA/BCA measurements (size_d50, concentration, purity, protein)."""
    create_lot(session, analyst, number, isolation_code=iso,
               intended_use="clinical_manufacturing", manufactured_on=manufactured_on,
               expires_on=date(2028, 3, 1), volume_ml=2.0)
    for attribute, value, unit, method in (
            ("size_d50", d50, "nm", "NTA"),
            ("particle_concentration", conc, "particles/mL", "NTA"),
            ("particle_protein_ratio", purity, "particles/ug", "calculated"),
            ("protein_concentration", conc / purity, "ug/mL", "BCA")):
        add_measurement(session, analyst, number, attribute=attribute, value=value, unit=unit,
                        method=method)


def enter_release_results(session, analyst, number, *, endotoxin=0.12, label=1.05e11):
    """Label claim and every remaining test of the example specification."""
    set_reference_value(session, analyst, number, "label_claim", label, "particles/mL")
    opened = []
    for test, word in PASSING.items():
        opened.append(add_quality_result(session, analyst, number, test=test, value=word)[1])
    numeric = {**NUMERIC, "endotoxin": (endotoxin, "EU/mL")}
    for test, (value, unit) in numeric.items():
        opened.append(add_quality_result(session, analyst, number, test=test, value=value,
                                         unit=unit)[1])
    return [o for o in opened if o is not None]


# argon2 is slow on purpose (~0.5 s per check here); these tests sign dozens of times, so
# their accounts use the cheapest parameters. Verification reads the parameters from the
# hash, so the same code path runs.
_CHEAP = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)


@pytest.fixture(scope="session")
def test_password_hash() -> str:
    from _db_fixtures import TEST_PASSWORD

    return _CHEAP.hash(TEST_PASSWORD)


@pytest.fixture(autouse=True)
def _cheap_argon2(monkeypatch):
    """Accounts created during a test (demo, CLI) get cheap hashes too."""
    monkeypatch.setattr("exotrace.records._auth._hasher", _CHEAP)


@pytest.fixture
def spec_record(session, record_users):
    record, created = import_specification(session, record_users["qa"],
                                           example_specification_path())
    assert created
    return record


@pytest.fixture
def qlot(session, record_users, spec_record):
    """Lot QL-1 with measurements and all release results entered by analyst1."""
    analyst = record_users["analyst"]
    iso = build_source(session, analyst)
    make_lot(session, analyst, "QL-1", iso)
    enter_release_results(session, analyst, "QL-1")
    return "QL-1"
