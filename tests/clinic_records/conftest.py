"""A small clinical world built through the services, for the clinic-records tests.

Two donors (D-A, D-B) with released lots, each lot measured: concentration
2e11 particles/mL, particle:protein ratio 1e10 particles/ug, so doses have
known answers (2e10 particles/kg x 70 kg = 1.4e12 particles = 7.0 mL = 140 ug).
``problem_lots`` adds lots to refuse: one still in process, one expired, one
from a donor whose consent is later withdrawn, one from a non-MSC source. Both example protocols
are imported; subject C1 is in the cardiomyopathy arm, S1 in the skin MN arm.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest

from _db_fixtures import TEST_PASSWORD
from exotrace.clinic import example_protocol_path
from exotrace.records import (
    add_cell_bank,
    add_collection,
    add_consent,
    add_donor,
    add_isolation_run,
    add_measurement,
    add_product,
    clock_set_to,
    create_lot,
    create_vials,
    enrol_subject,
    import_protocol,
    set_lot_status,
)

CONC_PARTICLES_PER_ML = 2.0e11
RATIO_PARTICLES_PER_UG = 1.0e10


def sign_release(session, qa, lot):
    """The signed release record that administering from a released lot requires."""
    from exotrace.records import LotDisposition, acting_as, sign
    from exotrace.records._models_quality import DispositionAction

    disposition = LotDisposition(lot_id=lot.id, action=DispositionAction.RELEASE,
                                 reason="within specification", decided_by_id=qa.id)
    with acting_as(session, qa):
        session.add(disposition)
        session.flush()
    sign(session, qa, TEST_PASSWORD, disposition, "approval")


def made_at(manufactured: date) -> datetime:
    """When a test lot is recorded, filled and released: 09:00 UTC the day after manufacture."""
    return datetime.combine(manufactured + timedelta(days=1), datetime.min.time(), UTC).replace(
        hour=9)


def make_lot(session, users, donor, number, *, tissue="umbilical_cord", release=True,
             manufactured=date(2025, 3, 1), expires=date(2027, 3, 1), products=("INJ", "SER"),
             new_donor=True, measure=True, vials=3):
    """donor -> bank -> collection -> run -> lot (measured, optionally released) -> vials.

    Everything is recorded on the clock of :func:`made_at` (the day after
    manufacture), so the administrations the tests date in 2025 come after the
    release and the fill, as they must.
    """
    with clock_set_to(made_at(manufactured)):
        return _make_lot(session, users, donor, number, tissue=tissue, release=release,
                         manufactured=manufactured, expires=expires, products=products,
                         new_donor=new_donor, measure=measure, vials=vials)


def _make_lot(session, users, donor, number, *, tissue, release, manufactured, expires,
              products, new_donor, measure, vials):
    an, qa = users["analyst"], users["qa"]
    if new_donor:
        add_donor(session, an, donor, age_band="30-39", sex="female")
        add_consent(session, an, donor, scopes=["research", "clinical_manufacturing"],
                    version="v1", consented_on=date(2025, 1, 2))
    bank = add_cell_bank(session, an, f"CB-{number}", donor_code=donor, tissue=tissue,
                         passage=3, intended_use="clinical_manufacturing")
    add_collection(session, an, f"COL-{number}", cell_bank_code=bank.code, medium="MEM",
                   serum_condition="serum_free", volume_ml=500, culture_days=2)
    add_isolation_run(session, an, f"ISO-{number}", collection_code=f"COL-{number}",
                      method="size_exclusion_chromatography", input_volume_ml=500,
                      output_volume_ml=50)
    lot = create_lot(session, an, number, isolation_code=f"ISO-{number}",
                     intended_use="clinical_manufacturing", manufactured_on=manufactured,
                     expires_on=expires, volume_ml=50)
    if measure:
        measure_lot(session, users, number)
    out = {"lot": lot, "bank": bank}
    for kind in products:
        form, fill = ("intravenous", 10.0) if kind == "INJ" else ("topical_serum", 5.0)
        add_product(session, an, f"{kind}-{number}", lot_number=number, form=form,
                    fill_volume_ml=fill)
        out[kind] = create_vials(session, an, number, vials, product_code=f"{kind}-{number}")
    if release:
        set_lot_status(session, an, number, "awaiting_release", reason="tests entered")
        set_lot_status(session, qa, number, "released", reason="within specification",
                       release_workflow=True)  # fixture: not testing release
        sign_release(session, qa, lot)
    return out


def measure_lot(session, users, number, *, mode_nm=110.0, ratio=RATIO_PARTICLES_PER_UG):
    an = users["analyst"]
    for attribute, value, unit in (("particle_concentration", CONC_PARTICLES_PER_ML,
                                    "particles/mL"),
                                   ("particle_protein_ratio", ratio, "particles/ug"),
                                   ("size_mode", mode_nm, "nm")):
        add_measurement(session, an, number, attribute=attribute, value=value, unit=unit,
                        method="NTA")


@pytest.fixture
def world(session, record_users):
    users = record_users
    doc = users["clinician"]
    for name in ("cardiomyopathy", "skin_rejuvenation"):
        import_protocol(session, doc, example_protocol_path(name))
    w = {"users": users, "doc": doc}
    w["A"] = make_lot(session, users, "D-A", "L-A")
    w["B"] = make_lot(session, users, "D-B", "L-B")
    enrol_subject(session, doc, "C1", protocol_code="EXO-CARD-01", arm_code="IV",
                  enrolled_on=date(2025, 6, 2), consent_version="S1",
                  consent_signed_on=date(2025, 6, 1), body_weight_kg=70.0, sex="male",
                  age_years=61, baseline={"LVEF": (35.0, None)})
    enrol_subject(session, doc, "S1", protocol_code="EXO-SKIN-01", arm_code="MN",
                  enrolled_on=date(2025, 6, 2), consent_version="S1",
                  consent_signed_on=date(2025, 6, 2), sex="female", age_years=48)
    return w


@pytest.fixture
def problem_lots(session, world):
    """Lots that must be refused: in process, expired, donor consent withdrawn, non-MSC source."""
    users = world["users"]
    world["U"] = make_lot(session, users, "D-A", "L-U", release=False, new_donor=False,
                          products=("INJ",), vials=1)
    world["X"] = make_lot(session, users, "D-A", "L-X", new_donor=False, products=("INJ",),
                          manufactured=date(2024, 1, 1), expires=date(2024, 6, 1), vials=1)
    world["W"] = make_lot(session, users, "D-W", "L-W", products=("INJ",), vials=1)
    world["O"] = make_lot(session, users, "D-O", "L-O", tissue="other", products=("INJ",),
                          vials=1)
    return world


@pytest.fixture(scope="package")
def demo_db(db_url, tmp_path_factory):
    """A fresh database with the records, quality and clinic demos, built once per backend
    for this package (``exotrace demo load`` builds it the same way)."""
    import _db_fixtures
    from exotrace.cli.demo_records import load_all_demos
    from exotrace.records import make_engine, unit_of_work, verify_audit_trail

    kind = "sqlite" if db_url.startswith("sqlite") else "postgresql"
    url, drop = _db_fixtures._create_database(kind, tmp_path_factory)
    engine = make_engine(url)
    # records, then release through the quality workflow, then the clinic
    summary = load_all_demos(engine)["clinic"]
    with unit_of_work(engine) as session:
        audit_ok = verify_audit_trail(session).ok
    engine.dispose()
    yield url, summary, audit_ok
    drop()
