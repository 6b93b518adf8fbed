"""Service rules: consent blocks use, genealogy, state machine, results, idempotent import."""

import json
from datetime import date

import pytest

from conftest import build_chain
from exotrace.errors import (
    Conflict,
    ConsentError,
    FileFormatError,
    InvalidInput,
    NotFound,
    PermissionDenied,
    RuleViolation,
)
from exotrace.records import (
    Lot,
    Measurement,
    ResultFile,
    add_cell_bank,
    add_collection,
    add_consent,
    add_donor,
    add_isolation_run,
    add_measurement,
    add_product,
    add_storage,
    create_lot,
    create_vials,
    import_measurement_file,
    is_valid_identifier,
    measurements_from_result,
    pool_lots,
    set_lot_status,
    split_lot,
    withdraw_consent,
)
from exotrace.records import repositories as repo


def test_withdrawn_consent_blocks_every_later_use(session, chain, record_users):
    analyst = record_users["analyst"]
    withdraw_consent(session, analyst, "D-001", withdrawn_on=date(2025, 6, 1),
                     reason="donor asked by letter")
    consent = repo.latest_consent(session, chain["lot"].id and chain["bank"].donor_id)
    msg = rf"donor D-001: consent {consent.id} \(version v2.1\) was withdrawn on 2025-06-01"
    with pytest.raises(ConsentError, match=msg + "; cannot create cell bank CB-2"):
        add_cell_bank(session, analyst, "CB-2", donor_code="D-001", tissue="adipose",
                      passage=2, intended_use="research")
    with pytest.raises(ConsentError, match=msg + "; cannot record collection"):
        add_collection(session, analyst, "COL-2", cell_bank_code=chain["bank"].code,
                       medium="DMEM", serum_condition="serum_free", volume_ml=10,
                       culture_days=2)
    with pytest.raises(ConsentError, match=msg + "; cannot record isolation run"):
        add_isolation_run(session, analyst, "ISO-2", collection_code=chain["collection"].code,
                          method="ultrafiltration", input_volume_ml=10, output_volume_ml=1)
    with pytest.raises(ConsentError, match=msg + "; cannot create lot L-2"):
        create_lot(session, analyst, "L-2", isolation_code=chain["run"].code,
                   intended_use="clinical_manufacturing", manufactured_on=date(2025, 7, 1))
    # Refused before anything is written: no partial lot, no audit entry for it.
    assert repo.find_by(session, Lot, number="L-2") is None
    with pytest.raises(ConsentError, match=msg + "; cannot fill vials"):
        create_vials(session, analyst, chain["lot"].number, 2)
    with pytest.raises(Conflict, match="already withdrawn"):
        withdraw_consent(session, analyst, "D-001", withdrawn_on=date(2025, 6, 2), reason="x")


def test_out_of_scope_use_is_blocked(session, record_users):
    analyst = record_users["analyst"]
    add_donor(session, analyst, "D-R", age_band="80+", sex="unknown")
    add_consent(session, analyst, "D-R", scopes=["research"], version="1",
                consented_on=date(2024, 5, 5))
    with pytest.raises(ConsentError, match="covers research, not cosmetic"):
        add_cell_bank(session, analyst, "CB-R", donor_code="D-R", tissue="bone_marrow",
                      passage=1, intended_use="cosmetic")
    add_cell_bank(session, analyst, "CB-R", donor_code="D-R", tissue="bone_marrow", passage=1,
                  intended_use="research")
    add_donor(session, analyst, "D-N", age_band="20-29", sex="male")
    with pytest.raises(ConsentError, match="D-N has no recorded consent"):
        add_cell_bank(session, analyst, "CB-N", donor_code="D-N", tissue="adipose", passage=1,
                      intended_use="research")


def test_pooled_lot_needs_every_donors_consent(session, record_users):
    a = build_chain(session, record_users, donor="D-A")
    b = build_chain(session, record_users, donor="D-B")
    withdraw_consent(session, record_users["analyst"], "D-B", withdrawn_on=date(2025, 4, 1),
                     reason="withdrawn")
    with pytest.raises(ConsentError, match="donor D-B: consent"):
        pool_lots(session, record_users["analyst"], "POOL-1",
                  parents={a["lot"].number: 5.0, b["lot"].number: 5.0},
                  manufactured_on=date(2025, 5, 1))


def test_pool_and_split_build_a_genealogy_graph(session, record_users):
    a = build_chain(session, record_users, donor="D-A")
    b = build_chain(session, record_users, donor="D-B")
    analyst = record_users["analyst"]
    pool = pool_lots(session, analyst, "POOL-1", parents={a["lot"].number: 4.0,
                                                          b["lot"].number: 6.0},
                     manufactured_on=date(2025, 5, 1))
    assert pool.volume_ml == 10.0 and pool.intended_use.value == "clinical_manufacturing"
    kids = split_lot(session, analyst, "POOL-1", children={"POOL-1-A": 5.0, "POOL-1-B": 5.0},
                     manufactured_on=date(2025, 5, 2))
    assert [k.number for k in kids] == ["POOL-1-A", "POOL-1-B"]
    assert [p.number for _, p in repo.lot_parents(session, pool.id)] == ["L-D-A-1", "L-D-B-1"]
    assert [c.number for _, c in repo.lot_children(session, pool.id)] == ["POOL-1-A", "POOL-1-B"]
    with pytest.raises(RuleViolation, match="children take 11 mL, the lot has 10 mL"):
        split_lot(session, analyst, "POOL-1", children={"X1": 6.0, "X2": 5.0},
                  manufactured_on=date(2025, 5, 2))
    with pytest.raises(InvalidInput, match="at least two"):
        pool_lots(session, analyst, "P2", parents={a["lot"].number: 1.0},
                  manufactured_on=date(2025, 5, 1))


def test_lot_state_machine(session, chain, record_users):
    analyst, number = record_users["analyst"], chain["lot"].number
    with pytest.raises(InvalidInput, match="needs a reason"):
        set_lot_status(session, analyst, number, "quarantined", reason=" ")
    set_lot_status(session, analyst, number, "rejected", reason="sterility failure")
    with pytest.raises(RuleViolation, match="is rejected; it cannot become in_process"):
        set_lot_status(session, analyst, number, "in_process", reason="retry")
    with pytest.raises(RuleViolation, match="rejected; results can no longer be added"):
        add_measurement(session, analyst, number, attribute="size_mode", value=110, unit="nm",
                        method="NTA")
    with pytest.raises(RuleViolation, match="rejected"):
        create_vials(session, analyst, number, 1)


def test_measurement_validation_and_permissions(session, chain, record_users):
    number = chain["lot"].number
    with pytest.raises(PermissionDenied, match="may not enter results"):
        add_measurement(session, record_users["reviewer"], number, attribute="size_mode",
                        value=100, unit="nm", method="NTA")
    with pytest.raises(InvalidInput, match="value must be finite"):
        add_measurement(session, record_users["analyst"], number, attribute="size_mode",
                        value=float("nan"), unit="nm", method="NTA")
    with pytest.raises(InvalidInput, match="snake_case"):
        add_measurement(session, record_users["analyst"], number, attribute="Size Mode",
                        value=100, unit="nm", method="NTA")
    with pytest.raises(NotFound, match="no lot with number 'NOPE'"):
        add_measurement(session, record_users["analyst"], "NOPE", attribute="size_mode",
                        value=100, unit="nm", method="NTA")


FAKE_RESULT = {"format": "nanosight-summary", "instrument": "NanoSight NS300",
               "particles_per_ml": 2.4e11, "mode_nm": 112.5, "mean_nm": 131.0, "d50_nm": 124.0,
               "d10_nm": None, "measured_at": "2025-03-02T10:00:00+00:00"}


def test_import_stores_a_file_once_per_lot(session, chain, record_users, tmp_path):
    path = tmp_path / "run1.csv"
    path.write_text("pretend vendor export\n")
    calls = []

    def reader(p):
        calls.append(p)
        return FAKE_RESULT

    analyst, lot = record_users["analyst"], chain["lot"]
    rf, made, created = import_measurement_file(session, lot, path, analyst, reader=reader)
    assert created and len(made) == 4
    assert {m.attribute: m.value for m in made} == {
        "particle_concentration": 2.4e11, "size_mode": 112.5, "size_mean": 131.0,
        "size_d50": 124.0}
    assert all(m.source_sha256 == rf.sha256 and m.source_file_name == "run1.csv" for m in made)
    assert made[0].measured_at.isoformat() == "2025-03-02T10:00:00+00:00"
    assert json.loads(rf.result_json)["instrument"] == "NanoSight NS300"
    rf2, made2, created2 = import_measurement_file(session, lot, path, analyst, reader=reader)
    assert not created2 and rf2.id == rf.id and len(made2) == 4 and len(calls) == 1
    assert session.query(ResultFile).count() == 1 and session.query(Measurement).count() == 4
    # The same file for another lot is another import.
    other = build_chain(session, record_users, donor="D-001", suffix="2")
    _, _, created3 = import_measurement_file(session, other["lot"], path, analyst, reader=reader)
    assert created3


def test_import_of_bad_files(session, chain, record_users, tmp_path):
    with pytest.raises(FileFormatError, match="missing.csv: file not found"):
        import_measurement_file(session, chain["lot"], tmp_path / "missing.csv",
                                record_users["analyst"], reader=lambda p: FAKE_RESULT)
    empty = tmp_path / "empty.csv"
    empty.write_text("x")
    with pytest.raises(FileFormatError, match="no concentration, size or protein"):
        import_measurement_file(session, chain["lot"], empty, record_users["analyst"],
                                reader=lambda p: {"format": "fcs"})


def test_import_real_nanosight_file(session, chain, record_users, fixtures_dir):
    instruments = pytest.importorskip("exotrace.instruments")
    if not hasattr(instruments, "read_file"):
        pytest.skip("exotrace.instruments.read_file not available yet")
    path = fixtures_dir / "nanosight" / "beads.csv"
    if not path.is_file():
        pytest.skip("nanosight/beads.csv not in the shared fixtures")
    _, made, created = import_measurement_file(session, chain["lot"], path,
                                               record_users["analyst"])
    values = {m.attribute: (m.value, m.unit) for m in made}
    # The vendor's summary columns (mean of the videos): Concentration 1.47e9 /mL, Mode 95.3 nm.
    assert created
    assert values["particle_concentration"] == (1.47e9, "particles/mL")
    assert values["size_mode"] == (95.3, "nm")
    assert all(m.instrument and m.method == "NTA" for m in made)


def test_a_run_that_tracked_nothing_gives_no_concentration():
    # The ZetaView zero-trace export prints 0 particles/mL; for a lot that would be a
    # measured 0 (and an out-of-specification result), not "nothing was seen".
    video = {"name": "run.avi", "particles_per_ml": 0.0, "has_results": False}
    empty = {"format": "zetaview-txt", "instrument": "ZetaView", "particles_per_ml": 0.0,
             "videos": [video]}
    assert measurements_from_result(empty) == []
    one_good = dict(empty, particles_per_ml=2.0e9,
                    videos=[video, dict(video, particles_per_ml=4.0e9, has_results=True)])
    assert [m["value"] for m in measurements_from_result(one_good)] == [2.0e9]


def test_protein_plate_result_maps_single_sample():
    result = {"format": "bca-plate", "instrument": "plate reader",
              "protein_samples": [{"sample": "L1", "protein_ug_per_ml": 85.5}]}
    assert measurements_from_result(result) == [
        {"attribute": "protein_concentration", "value": 85.5, "unit": "ug/mL", "method": "BCA",
         "instrument": "plate reader"}]


def test_vials_products_and_storage(session, chain, record_users):
    analyst, number = record_users["analyst"], chain["lot"].number
    product = add_product(session, analyst, "SERUM-1", lot_number=number, form="topical_serum",
                          excipients=["hyaluronic acid", "glycerol"],
                          target_particles_per_ml=1e10, fill_volume_ml=2.0)
    ids = create_vials(session, analyst, number, 3, product_code="SERUM-1")
    assert ids[0].startswith("LD0011" + "00001") and all(is_valid_identifier(i) for i in ids)
    more = create_vials(session, analyst, number, 2)
    assert more[0][:-1].endswith("00004")
    vials = repo.list_vials(session, lot_id=chain["lot"].id)
    assert [v.fill_volume_ml for v in vials] == [2.0, 2.0, 2.0, None, None]
    assert vials[0].product_id == product.id
    st = add_storage(session, analyst, number, buffer="PBS + 0.1% HSA", temperature_c=-80,
                     container="cryovial", location="Freezer 2 / rack B", freeze_thaw_count=1)
    assert st.temperature_c == -80.0
    with pytest.raises(InvalidInput, match="not plausible"):
        add_storage(session, analyst, number, buffer="PBS", temperature_c=400,
                    container="c", location="l")
    with pytest.raises(Conflict, match="product SERUM-1 already exists"):
        add_product(session, analyst, "SERUM-1", lot_number=number, form="topical_gel")
