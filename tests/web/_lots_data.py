"""Lot data for the lot page and API tests, written through the services (audited).

``build_lots(url)`` makes, on a database with the ``web_db`` users:

* donor ``D1`` -> cell bank ``CB1`` -> collection ``C1`` -> isolation ``I1`` -> lots
  ``A1``, ``A2``, ``A3`` (``A1``'s description is hostile markup);
* ``P1`` pooled from ``A1`` and ``A2`` (2 mL each), split into ``P1-A`` and ``P1-B``;
* vials: 3 of ``A1``, 2 of ``P1-A``;
* ``A3`` released through the workflow (results, verification, release) with
  measurements and a size distribution;
* 52 more lots ``B00``..``B51`` (expiry dates spread, some quarantined) so the
  list has 58 lots in all: two pages of 50, or 12 pages of 5.
"""

from __future__ import annotations

from datetime import date, timedelta

from _db_fixtures import TEST_PASSWORD

HOSTILE = "<script>alert(1)</script>"
QUALITATIVE = {"CD9": "present", "CD63": "present", "CD81": "present", "TSG101": "present",
               "calnexin": "absent", "GM130": "absent", "sterility": "negative",
               "mycoplasma": "negative"}
N_LOTS = 58


def build_lots(url: str) -> dict:
    from exotrace.quality import example_specification_path
    from exotrace.records import (
        User,
        add_cell_bank,
        add_collection,
        add_consent,
        add_donor,
        add_isolation_run,
        add_measurement,
        add_quality_result,
        add_size_distribution,
        assign_specification,
        create_lot,
        create_vials,
        import_specification,
        make_engine,
        pool_lots,
        release_lot,
        repositories,
        set_lot_status,
        set_reference_value,
        split_lot,
        submit_for_release,
        unit_of_work,
        verify_lot,
    )

    today = date.today()
    engine = make_engine(url)
    try:
        with unit_of_work(engine) as s:
            an, rv, qa = (repositories.get_by(s, User, username=n)
                          for n in ("analyst1", "reviewer1", "qa1"))
            add_donor(s, an, "D1", age_band="30-39", sex="female")
            add_consent(s, an, "D1", scopes=["clinical_manufacturing"], version="1",
                        consented_on=today - timedelta(days=400))
            add_cell_bank(s, an, "CB1", donor_code="D1", tissue="adipose", passage=3,
                          intended_use="clinical_manufacturing")
            add_collection(s, an, "C1", cell_bank_code="CB1", medium="DMEM",
                           serum_condition="serum_free", volume_ml=100, culture_days=2)
            add_isolation_run(s, an, "I1", collection_code="C1", method="ultrafiltration",
                              input_volume_ml=50, output_volume_ml=10)
            for number in ("A1", "A2", "A3"):
                create_lot(s, an, number, isolation_code="I1",
                           intended_use="clinical_manufacturing",
                           manufactured_on=today - timedelta(days=20),
                           expires_on=today + timedelta(days=700), volume_ml=5.0,
                           description=HOSTILE if number == "A1" else None)
            pool_lots(s, an, "P1", parents={"A1": 2.0, "A2": 2.0},
                      manufactured_on=today - timedelta(days=10))
            split_lot(s, an, "P1", children={"P1-A": 1.0, "P1-B": 1.0},
                      manufactured_on=today - timedelta(days=9))
            create_vials(s, an, "A1", 3)
            create_vials(s, an, "P1-A", 2)
            spec, _ = import_specification(s, qa, example_specification_path())
            for attribute, value, unit in (("particle_concentration", 1.0e11, "particles/mL"),
                                           ("size_d50", 121.0, "nm"),
                                           ("particle_protein_ratio", 1.2e10, "particles/ug")):
                add_measurement(s, an, "A3", attribute=attribute, value=value, unit=unit,
                                method="NTA" if unit != "particles/ug" else "calculated",
                                instrument=HOSTILE if attribute == "size_d50" else None)
            add_size_distribution(s, an, "A3", [60.0, 90.0, 120.0, 150.0, 180.0],
                                  [0.1, 0.3, 0.4, 0.15, 0.05], source="NTA (test)")
            assign_specification(s, qa, "A3", spec.name)
            set_reference_value(s, an, "A3", "label_claim", 1.0e11, "particles/mL")
            for test, word in QUALITATIVE.items():
                add_quality_result(s, an, "A3", test=test, value=word)
            add_quality_result(s, an, "A3", test="endotoxin", value=0.1, unit="EU/mL")
            add_quality_result(s, an, "A3", test="fraction_50_400nm", value=94.0, unit="%")
            add_quality_result(s, an, "A3", test="potency", value=105.0, unit="%")
            submit_for_release(s, an, "A3")
            verify_lot(s, rv, TEST_PASSWORD, "A3")
            release_lot(s, qa, TEST_PASSWORD, "A3")
            for i in range(52):
                number = f"B{i:02d}"
                # Expiry dates out of number order, one lot without an expiry date.
                create_lot(s, an, number, isolation_code="I1",
                           intended_use="clinical_manufacturing",
                           manufactured_on=today - timedelta(days=5),
                           expires_on=None if i == 7 else today + timedelta(days=300 + (i * 37) % 52),
                           volume_ml=1.0)
                if i % 10 == 3:
                    set_lot_status(s, an, number, "quarantined", reason="deviation")
    finally:
        engine.dispose()
    return {"quarantined": [f"B{i:02d}" for i in range(52) if i % 10 == 3]}
