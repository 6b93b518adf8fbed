"""Clinic records on both backends: administration guard, rules, observations, recall, exports."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime

import pytest
import sqlalchemy as sa

from exotrace.clinic import example_protocol_path
from exotrace.errors import (
    Conflict,
    ConsentError,
    InvalidInput,
    NotFound,
    PermissionDenied,
    RuleViolation,
    UnitError,
)
from exotrace.records import (
    Administration,
    AuditEntry,
    DoseDecision,
    Lot,
    Observation,
    Vial,
    add_adverse_event,
    administer,
    clinic_report,
    decide_dose,
    export_fhir,
    export_sdtm,
    followup_due,
    get_protocol,
    import_protocol,
    lot_product_type,
    pool_lots,
    recall,
    record_observation,
    repositories,
    set_lot_status,
    trace_forward,
    verify_audit_trail,
    withdraw_consent,
    withdraw_study_consent,
)

from .conftest import (
    CONC_PARTICLES_PER_ML,
    RATIO_PARTICLES_PER_UG,
    measure_lot,
    sign_release,
)


def at(y, m, d, h=10):
    return datetime(y, m, d, h, tzinfo=UTC)


def count(session, model):
    return session.scalar(sa.select(sa.func.count()).select_from(model))


def test_protocol_import_is_idempotent_and_versioned(session, world, tmp_path):
    doc = world["doc"]
    record, created = import_protocol(session, doc, example_protocol_path("cardiomyopathy"))
    assert created is False and record.code == "EXO-CARD-01" and len(record.sha256) == 64
    text = example_protocol_path("cardiomyopathy").read_text().replace(
        "starting_level: 3", "starting_level: 2")
    changed = tmp_path / "card.yaml"
    changed.write_text(text)
    with pytest.raises(Conflict, match="version 1.0 is already stored with different content"):
        import_protocol(session, doc, changed)
    changed.write_text(text.replace('version: "1.0"', 'version: "1.1"'))
    rec2, created = import_protocol(session, doc, changed)
    assert created and rec2.version == "1.1"
    # the latest version is the one used by default; the earlier one stays readable
    assert get_protocol(session, "EXO-CARD-01")[1].arm("IV").starting_level == 2
    assert get_protocol(session, "EXO-CARD-01", "1.0")[1].arm("IV").starting_level == 3
    with pytest.raises(PermissionDenied):
        import_protocol(session, world["users"]["analyst"], changed)
    with pytest.raises(NotFound, match="no protocol 'NOPE'"):
        get_protocol(session, "NOPE")


def test_administration_computes_dose_from_the_lots_own_measurements(session, world):
    vial = world["A"]["INJ"][0]
    adm = administer(session, world["doc"], subject_code="C1", vial_identifier=vial,
                     at=at(2025, 6, 2), site="left forearm vein")
    # level 3 = 2e10 particles/kg, 70 kg -> 1.4e12 particles; / 2e11 per mL -> 7.0 mL;
    # / 1e10 particles per ug -> 140 ug (exact arithmetic up to float rounding).
    assert adm.dose_level == 3 and adm.dose_unit == "particles/kg"
    assert adm.particles == pytest.approx(1.4e12, rel=1e-12)
    assert adm.volume_ml == pytest.approx(1.4e12 / CONC_PARTICLES_PER_ML, rel=1e-12)
    assert adm.protein_ug == pytest.approx(1.4e12 / RATIO_PARTICLES_PER_UG, rel=1e-12)
    assert adm.slot == "inf1" and adm.window_flag is None
    assert adm.operator_id == world["doc"].id
    v = repositories.get_by(session, Vial, identifier=vial)
    assert v.status.value == "administered"
    entries = repositories.audit_entries(session, table_name="administration")
    assert [(e.actor_name, e.action.value) for e in entries] == [("clinician1", "create")]
    vial_update = repositories.audit_entries(session, table_name="vial",
                                             record_pk=str(v.id))[-1]
    assert vial_update.reason.startswith("administered to subject C1")
    # the same vial twice is refused
    with pytest.raises(RuleViolation, match="only an available vial"):
        administer(session, world["doc"], subject_code="C1", vial_identifier=vial,
                   at=at(2025, 6, 23))
    assert verify_audit_trail(session).ok


def _mistype(identifier: str) -> str:
    last = identifier[-1]
    return identifier[:-1] + ("A" if last != "A" else "B")


REFUSALS = {
    "wrong check character": (lambda w: _mistype(w["A"]["INJ"][0]), "C1", {},
                              InvalidInput, "check character does not match"),
    "unreleased lot": (lambda w: w["U"]["INJ"][0], "C1", {}, RuleViolation,
                       "lot L-U is 'in_process', not released"),
    "expired lot": (lambda w: w["X"]["INJ"][0], "C1", {}, RuleViolation,
                    r"lot L-X expired on 2024-06-01 \(366 days ago\)"),
    "withdrawn donor consent": (lambda w: w["W"]["INJ"][0], "C1", {}, ConsentError,
                                "donor D-W: consent .* was withdrawn on 2025-05-01"),
    "dose above maximum": (lambda w: w["A"]["INJ"][0], "C1", {"dose_amount": 3e10},
                           RuleViolation, "exceeds the protocol maximum 2e[+]10"),
    "wrong product type": (lambda w: w["O"]["INJ"][0], "C1", {}, RuleViolation,
                           "product 'other-ev' is not allowed in arm IV"),
    "wrong product form": (lambda w: w["A"]["SER"][0], "C1", {}, RuleViolation,
                           "is a topical_serum, which does not fit route intravenous"),
    "withdrawn subject consent": (lambda w: w["A"]["INJ"][0], "C1", {}, ConsentError,
                                  "the subject's study consent is missing or withdrawn"),
}


def test_administration_refusals_write_nothing(session, problem_lots):
    world, doc = problem_lots, problem_lots["doc"]
    withdraw_consent(session, world["users"]["analyst"], "D-W", withdrawn_on=date(2025, 5, 1),
                     reason="donor letter")
    for case, (vial_of, subject, extra, error, message) in REFUSALS.items():
        if case == "withdrawn subject consent":  # last: it blocks C1 for good
            withdraw_study_consent(session, doc, "C1", withdrawn_on=date(2025, 6, 2),
                                   reason="subject changed their mind")
        session.flush()
        before = (count(session, Administration), count(session, AuditEntry))
        statuses = {v.identifier: v.status for v in repositories.list_all(session, Vial)}
        with pytest.raises(error, match=message) as info:
            administer(session, doc, subject_code=subject, vial_identifier=vial_of(world),
                       at=at(2025, 6, 2), **extra)
        assert "\n" not in str(info.value), case
        assert (count(session, Administration), count(session, AuditEntry)) == before, case
        assert {v.identifier: v.status for v in repositories.list_all(session, Vial)} \
            == statuses, case


def test_product_type_follows_the_cell_source_through_pools(session, problem_lots):
    world = problem_lots
    users = world["users"]
    assert lot_product_type(session, world["A"]["lot"]) == "msc-ev"
    assert lot_product_type(session, world["O"]["lot"]) == "other-ev"
    pool = pool_lots(session, users["analyst"], "L-AO", parents={"L-A": 1.0, "L-O": 1.0},
                     manufactured_on=date(2025, 4, 1))
    assert lot_product_type(session, pool) == "mixed:msc-ev+other-ev"


def test_observation_unit_window_and_change_from_baseline(session, world):
    doc = world["doc"]
    n_obs = count(session, Observation)
    with pytest.raises(UnitError):
        record_observation(session, doc, "S1", visit="baseline", outcome="HYDR", value=40,
                           unit="%", observed_on=date(2025, 6, 2))
    assert count(session, Observation) == n_obs
    record_observation(session, doc, "S1", visit="baseline", outcome="HYDR", value=40.0,
                       unit="AU", observed_on=date(2025, 6, 2))
    # week4 = day 28 +-3 from 2025-06-02: window 2025-06-27..2025-07-03; 2025-07-05 is 2 days late
    obs, decision = record_observation(session, doc, "S1", visit="week4", outcome="HYDR",
                                       value=46.0, unit="AU", observed_on=date(2025, 7, 5))
    assert obs.window_flag.startswith("outside window: 2 days late")
    assert obs.days_outside_window == 2
    assert obs.baseline_value == 40.0
    assert obs.change_absolute == pytest.approx(6.0)
    assert obs.change_percent == pytest.approx(15.0)
    # +15 % >= the 10 % target: no escalation
    assert decision.proposed_action == "continue" and decision.status.value == "no_change"
    # ng/mL converts to the protocol's pg/mL
    obs2, _ = record_observation(session, doc, "C1", visit="baseline", outcome="NTPROBNP",
                                 value=1.9, unit="ng/mL", observed_on=date(2025, 6, 2))
    assert obs2.value == pytest.approx(1900.0) and obs2.unit == "pg/mL"
    with pytest.raises(Conflict, match="already recorded"):
        record_observation(session, doc, "S1", visit="week4", outcome="HYDR", value=46.0,
                           unit="AU", observed_on=date(2025, 7, 5))


def test_grade3_related_ae_proposes_hold_then_override_resumes_lower(session, world):
    doc = world["doc"]
    inj = world["A"]["INJ"]
    administer(session, doc, subject_code="C1", vial_identifier=inj[0], at=at(2025, 6, 2))
    row, report, decision = add_adverse_event(
        session, doc, "C1", term="infusion-related reaction", grade=3, serious=False,
        relatedness="probable", onset_on=date(2025, 6, 2), resolved_on=date(2025, 6, 5))
    assert report.serious is False and row.administration_id is not None
    assert decision.proposed_action == "hold" and decision.status.value == "proposed"
    assert decision.rule_ids.split(",")[0] == "HOLD-G3"
    assert json.loads(decision.fired_json)[0]["rule"] == "HOLD-G3"
    with pytest.raises(RuleViolation, match="awaits a clinician"):
        administer(session, doc, subject_code="C1", vial_identifier=inj[1], at=at(2025, 6, 23))
    decide_dose(session, doc, "C1", accept=True, reason="hold per protocol")
    with pytest.raises(RuleViolation, match="on hold"):
        administer(session, doc, subject_code="C1", vial_identifier=inj[1], at=at(2025, 6, 23))
    with pytest.raises(InvalidInput, match="needs a reason"):
        decide_dose(session, doc, "C1", accept=False, level=2, reason=" ")
    d = decide_dose(session, doc, "C1", accept=False, level=2, on=date(2025, 6, 20),
                    reason="reaction resolved; resume one level lower")
    assert d.status.value == "overridden" and d.decided_level == 2
    last = repositories.audit_entries(session, table_name="dose_decision", record_pk=str(d.id))
    assert last[-1].reason.startswith("dose proposal overridden: reaction resolved")
    # level 3 is above the level in effect now
    with pytest.raises(RuleViolation, match="above level 2 in effect"):
        administer(session, doc, subject_code="C1", vial_identifier=inj[1], at=at(2025, 6, 23),
                   level=3)
    adm = administer(session, doc, subject_code="C1", vial_identifier=inj[1], at=at(2025, 6, 23))
    assert adm.dose_level == 2 and adm.particles == pytest.approx(1e10 * 70, rel=1e-12)


def test_grade2_reduces_and_poor_hydration_escalates(session, world):
    doc = world["doc"]
    ser = world["A"]["SER"]
    record_observation(session, doc, "S1", visit="baseline", outcome="HYDR", value=40.0,
                       unit="AU", observed_on=date(2025, 6, 2))
    administer(session, doc, subject_code="S1", vial_identifier=ser[0], at=at(2025, 6, 2))
    _, _, d = add_adverse_event(session, doc, "S1", term="erythema", grade=2, serious=False,
                                relatedness="possible", onset_on=date(2025, 6, 3),
                                resolved_on=date(2025, 6, 6))
    assert (d.proposed_action, d.current_level, d.proposed_level) == ("reduce", 2, 1)
    decide_dose(session, doc, "S1", accept=True)
    adm = administer(session, doc, subject_code="S1", vial_identifier=ser[1], at=at(2025, 6, 16))
    assert adm.dose_level == 1 and adm.particles == pytest.approx(1e10)
    # week 4 hydration +2.5 % (< 10 %): escalate one level from the level last given
    _, d = record_observation(session, doc, "S1", visit="week4", outcome="HYDR", value=41.0,
                              unit="AU", observed_on=date(2025, 6, 30))
    assert (d.proposed_action, d.proposed_level) == ("escalate", 2)
    assert d.reason.startswith("ESC-HYDR: HYDR improved 2.5% from baseline at week4")
    # a second observation re-evaluates the same proposal: it stays the one pending
    _, d2 = record_observation(session, doc, "S1", visit="week4", outcome="TEWL", value=13.0,
                               unit="g/m2/h", observed_on=date(2025, 6, 30))
    assert d2.status.value == "no_change"
    assert [x.id for x in repositories.list_all(session, DoseDecision)
            if x.status.value == "proposed"] == [d.id]


def test_serious_related_unexpected_ae_is_flagged_for_expedited_report(session, world):
    doc = world["doc"]
    administer(session, doc, subject_code="C1", vial_identifier=world["A"]["INJ"][0],
               at=at(2025, 6, 2))
    row, report, decision = add_adverse_event(
        session, doc, "C1", term="anaphylaxis", grade=4, serious=True,
        criteria=["life-threatening"], relatedness="probable", onset_on=date(2025, 6, 2))
    assert row.expedited and report.expedited and report.clock_days == 7
    assert row.report_due_on == date(2025, 6, 9)
    assert decision.proposed_action == "stop"
    with pytest.raises(InvalidInput, match="grade must be an integer 1-5"):
        add_adverse_event(session, doc, "C1", term="x", grade=6, serious=False,
                          relatedness="possible", onset_on=date(2025, 6, 2))


def test_recall_lists_exactly_the_affected_subjects(session, world):
    from exotrace.records import enrol_subject

    doc, users = world["doc"], world["users"]
    for code in ("C2", "C3"):
        enrol_subject(session, doc, code, protocol_code="EXO-CARD-01", arm_code="IV",
                      enrolled_on=date(2025, 6, 2), consent_version="S1",
                      consent_signed_on=date(2025, 6, 1), body_weight_kg=80.0,
                      baseline={"LVEF": (30.0, "%")})
    # a pool of D-A's and D-B's lots, released, given to C3
    from exotrace.records import add_product, clock_set_to, create_vials

    from .conftest import made_at

    with clock_set_to(made_at(date(2025, 4, 1))):  # made and released before its use
        pool_lots(session, users["analyst"], "L-AB", parents={"L-A": 5.0, "L-B": 5.0},
                  manufactured_on=date(2025, 4, 1), expires_on=date(2027, 1, 1))
        measure_lot(session, users, "L-AB")
        add_product(session, users["analyst"], "INJ-AB", lot_number="L-AB", form="intravenous",
                    fill_volume_ml=10.0)
        pool_vial = create_vials(session, users["analyst"], "L-AB", 1,
                                 product_code="INJ-AB")[0]
        set_lot_status(session, users["analyst"], "L-AB", "awaiting_release", reason="tests")
        set_lot_status(session, users["qa"], "L-AB", "released", reason="ok",
                       release_workflow=True)  # fixture: not testing release
    sign_release(session, users["qa"], repositories.get_by(session, Lot, number="L-AB"))
    administer(session, doc, subject_code="C1", vial_identifier=world["A"]["INJ"][0],
               at=at(2025, 6, 2))
    administer(session, doc, subject_code="S1", vial_identifier=world["A"]["SER"][0],
               at=at(2025, 6, 2))
    administer(session, doc, subject_code="C2", vial_identifier=world["B"]["INJ"][0],
               at=at(2025, 6, 3))
    administer(session, doc, subject_code="C3", vial_identifier=pool_vial, at=at(2025, 6, 3))
    r = recall(session, donor_code="D-A")
    assert r["subjects"] == ["C1", "C3", "S1"]
    assert sorted((a["subject"], a["lot"]) for a in r["administrations"]) == [
        ("C1", "L-A"), ("C3", "L-AB"), ("S1", "L-A")]
    c1 = next(a for a in r["administrations"] if a["subject"] == "C1")
    assert c1["particles"] == pytest.approx(1.4e12) and c1["administered_at"] == at(2025, 6, 2)
    assert recall(session, donor_code="D-B")["subjects"] == ["C2", "C3"]
    assert recall(session, lot_number="L-B")["subjects"] == ["C2", "C3"]
    assert recall(session, cell_bank_code="CB-L-B")["subjects"] == ["C2", "C3"]
    assert recall(session, lot_number="L-AB")["subjects"] == ["C3"]
    fwd = trace_forward(session, donor_code="D-A")
    assert [s["code"] for s in fwd["subjects"]] == ["C1", "C3", "S1"]
    with pytest.raises(InvalidInput, match="exactly one of"):
        recall(session, donor_code="D-A", lot_number="L-B")


def test_fhir_and_sdtm_exports_have_the_expected_counts(session, world, tmp_path):
    from fhir.resources.bundle import Bundle

    doc = world["doc"]
    administer(session, doc, subject_code="C1", vial_identifier=world["A"]["INJ"][0],
               at=at(2025, 6, 2))
    administer(session, doc, subject_code="S1", vial_identifier=world["B"]["SER"][0],
               at=at(2025, 6, 2))
    add_adverse_event(session, doc, "S1", term="pruritus", grade=1, serious=False,
                      relatedness="possible", onset_on=date(2025, 6, 3))
    record_observation(session, doc, "S1", visit="baseline", outcome="HYDR", value=40.0,
                       unit="AU", observed_on=date(2025, 6, 2))
    result = export_fhir(session, tmp_path / "bundle.json")
    # two studies; each subject: Patient, Consent, ResearchSubject; each administration a
    # MedicationAdministration and a vial BDP, plus one BDP per lot; observations: C1's
    # baseline LVEF (at enrolment) and S1's HYDR.
    assert result["studies"] == ["EXO-CARD-01", "EXO-SKIN-01"]
    assert result["resources"] == {"AdverseEvent": 1, "BiologicallyDerivedProduct": 4,
                                   "Consent": 2, "MedicationAdministration": 2,
                                   "Observation": 2, "Patient": 2, "ResearchStudy": 2,
                                   "ResearchSubject": 2}
    bundle = Bundle.model_validate_json((tmp_path / "bundle.json").read_text())
    lvef = [e.resource for e in bundle.entry if e.resource.__resource_type__ == "Observation"
            and e.resource.code.coding and e.resource.code.coding[0].code == "10230-1"]
    assert len(lvef) == 1 and lvef[0].valueQuantity.value == 35.0
    sd = export_sdtm(session, tmp_path / "sdtm", protocol_code="EXO-SKIN-01")
    assert sd["rows"] == {"DM": 1, "EX": 1, "AE": 1}
    ex = (tmp_path / "sdtm" / "ex.csv").read_text().splitlines()
    assert ex[1].startswith("EXO-SKIN-01,EX,EXO-SKIN-01-S1,1,")
    assert ",L-B," in ex[1]


def test_followup_due_lists_overdue_and_due_visits(session, world):
    doc = world["doc"]
    record_observation(session, doc, "S1", visit="baseline", outcome="HYDR", value=40.0,
                       unit="AU", observed_on=date(2025, 6, 2))
    # Day 0 = 2025-06-02 for both. C1 month3: day 91 +-14 -> 2025-08-18..2025-09-15;
    # S1 week4: day 28 +-3 -> 2025-06-27..2025-07-03; week12: day 84 +-7 -> 2025-08-18..09-01.
    rows = followup_due(session, as_of=date(2025, 9, 20))
    got = {(r["subject"], r["visit"]): (r["status"], r["days_overdue"]) for r in rows}
    assert got[("C1", "month3")] == ("overdue", 5)
    assert got[("S1", "week4")] == ("overdue", 79)
    assert got[("S1", "week12")] == ("overdue", 19)
    assert ("S1", "baseline") not in got and ("C1", "baseline") not in got
    rows = followup_due(session, as_of=date(2025, 8, 10), horizon_days=10)
    got = {(r["subject"], r["visit"]): r["status"] for r in rows}
    assert got == {("S1", "week4"): "overdue", ("C1", "month3"): "upcoming",
                   ("S1", "week12"): "upcoming"}
    assert [r["status"] for r in rows] == ["overdue", "upcoming", "upcoming"]
    # a withdrawn subject is no longer followed up
    withdraw_study_consent(session, doc, "S1", withdrawn_on=date(2025, 8, 1), reason="moved")
    got = {(r["subject"], r["visit"]) for r in followup_due(session, as_of=date(2025, 8, 10),
                                                            horizon_days=10)}
    assert got == {("C1", "month3")}


def test_clinic_report_recovers_a_simulated_lot_to_outcome_slope(session, world):
    """Change in LVEF = 0.5 % per 1e10 particles/ug of lot purity + subject effect + noise.

    Three lots (purity 1e10, 2.5e10, 4e10 particles/ug; same mode size, so size is
    left out as it does not vary), three subjects per lot, two follow-up visits.
    """
    import random

    from exotrace.records import clock_set_to, enrol_subject

    from .conftest import made_at, make_lot

    doc, users = world["doc"], world["users"]
    rng = random.Random(7)
    purities = {"L-P1": 1.0e10, "L-P2": 2.5e10, "L-P3": 4.0e10}
    vials = {}
    made = date(2024, 12, 1)  # made and released before the first administration (2025-01-06)
    for i, (number, purity) in enumerate(purities.items()):
        lots = make_lot(session, users, f"D-P{i}", number, measure=False, release=False,
                        products=("INJ",), manufactured=made)
        with clock_set_to(made_at(made)):
            measure_lot(session, users, number, ratio=purity)
            set_lot_status(session, users["analyst"], number, "awaiting_release",
                           reason="tests")
            set_lot_status(session, users["qa"], number, "released", reason="ok",
                           release_workflow=True)  # fixture: not testing release
            sign_release(session, users["qa"], repositories.get_by(session, Lot, number=number))
        vials[number] = lots["INJ"]
    true_slope = 0.5 / 1e10  # LVEF % per (particles/ug)
    for i, (number, purity) in enumerate(sorted(purities.items()) * 3):
        code = f"R{i:02d}"
        start = date(2025, 1, 6)
        baseline = round(30 + rng.gauss(0, 3), 2)
        enrol_subject(session, doc, code, protocol_code="EXO-CARD-01", arm_code="IV",
                      enrolled_on=start, consent_version="S1", consent_signed_on=start,
                      body_weight_kg=60.0, baseline={"LVEF": (baseline, "%")})
        administer(session, doc, subject_code=code, vial_identifier=vials[number][i // 3],
                   at=at(2025, 1, 6))
        u = rng.gauss(0, 0.5)  # subject's random intercept
        for visit, day in (("month3", date(2025, 4, 7)), ("month6", date(2025, 7, 7))):
            change = 1.0 + true_slope * purity + u + rng.gauss(0, 0.3)
            record_observation(session, doc, code, visit=visit, outcome="LVEF",
                               value=round(baseline + change, 3), unit="%", observed_on=day)
    report = clinic_report(session, "LVEF")
    model = report["lot_outcome_model"]
    assert model["attributes"] == ["purity_particles_per_ug"]
    assert (model["n_subjects"], model["n_observations"], model["n_lots"]) == (9, 18, 3)
    slope = next(c for c in model["coefficients"] if c.name == "purity_particles_per_ug")
    # 18 values over 3 purity levels; subject effects widen the SE to about 0.13 per
    # 1e10 particles/ug, so allow 0.25 per 1e10 (about 2 SE; the seed is fixed)
    # (C1 has a baseline only, so it is not in the model).
    print(f"purity slope {slope.estimate:.4g} (true {true_slope:.4g}), 95 % CI "
          f"{slope.ci_low:.4g}..{slope.ci_high:.4g}")
    assert slope.ci_low < true_slope < slope.ci_high
    assert slope.estimate == pytest.approx(true_slope, abs=0.25e-10)
    assert report["statement"].startswith("Association is not efficacy")
    assert report["responders"][0]["evaluable"] == 9 and report["responders"][0]["missing"] == 1


def test_followup_due_reads_in_three_queries_whatever_the_number_of_subjects(session, world):
    import sqlalchemy as sa

    statements = []

    def count(*_):
        statements.append(1)

    engine = session.get_bind()
    followup_due(session, as_of=date(2025, 9, 20))  # protocol parsing cached, session warm
    sa.event.listen(engine, "before_cursor_execute", count)
    try:
        rows = followup_due(session, as_of=date(2025, 9, 20))
    finally:
        sa.event.remove(engine, "before_cursor_execute", count)
    assert {r["subject"] for r in rows} == {"C1", "S1"}  # two enrolled subjects
    # consents, recorded outcomes, enrolments: not one query per subject
    assert len(statements) == 3
