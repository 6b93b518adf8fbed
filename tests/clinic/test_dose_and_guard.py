"""Dose computation and the administration guard."""

from __future__ import annotations

import dataclasses
from datetime import date

import pytest

from exotrace.clinic import (
    AdministrationFacts,
    DoseUnit,
    administration_refusals,
    check_administration,
    compute_dose,
)
from exotrace.errors import ConsentError, InvalidInput, RuleViolation, UnitError


def test_particles_per_kg_dose(cardio):
    # 20e9 particles/kg x 70 kg = 1.4e12 particles; at 2e11 particles/mL that is 7.0 mL.
    d = compute_dose(cardio.arm("IV").level(3), body_weight_kg=70.0,
                     lot_particles_per_ml=2.0e11, lot_particles_per_ug_protein=1.0e10)
    assert d.dose_unit is DoseUnit.PARTICLES_PER_KG
    assert d.particles == pytest.approx(1.4e12, rel=1e-12)
    assert d.volume_ml == pytest.approx(7.0, rel=1e-12)
    assert d.protein_ug == pytest.approx(140.0, rel=1e-12)  # 1.4e12 / 1e10 particles per ug
    assert d.fraction_of_maximum == pytest.approx(1.0)
    assert (d.arm_code, d.level, d.body_weight_kg) == ("IV", 3, 70.0)


def test_particles_dose_ignores_weight(skin):
    d = compute_dose(skin.arm("MN").level(1), body_weight_kg=80.0, lot_particles_per_ml=5.0e10)
    assert d.particles == 1.0e10
    assert d.volume_ml == pytest.approx(0.2, rel=1e-12)
    assert d.body_weight_kg is None and d.protein_ug is None


def test_ug_protein_dose_goes_through_the_lot_ratio(protein_protocol):
    # 100 ug protein at this lot's 2.5e9 particles/ug = 2.5e11 particles; 2.5e11 / 1e12 = 0.25 mL
    d = compute_dose(protein_protocol.arm("IM").level(2), lot_particles_per_ml=1.0e12,
                     lot_particles_per_ug_protein=2.5e9)
    assert d.particles == pytest.approx(2.5e11, rel=1e-12)
    assert d.volume_ml == pytest.approx(0.25, rel=1e-12)
    assert d.protein_ug == pytest.approx(100.0, rel=1e-12)
    # a purer lot (more particles per ug) gives more particles for the same protein dose
    purer = compute_dose(protein_protocol.arm("IM").level(2), lot_particles_per_ml=1.0e12,
                         lot_particles_per_ug_protein=1.0e10)
    assert purer.particles == pytest.approx(1.0e12, rel=1e-12)


def test_unit_errors(cardio, protein_protocol):
    with pytest.raises(UnitError, match="particles/kg; give the subject's body weight"):
        compute_dose(cardio.arm("IV").level(1), lot_particles_per_ml=1e11)
    with pytest.raises(UnitError, match="particle:protein ratio"):
        compute_dose(protein_protocol.arm("IM").level(1), lot_particles_per_ml=1e11)


def test_maximum_dose_is_enforced(cardio):
    arm = cardio.arm("IV")
    with pytest.raises(RuleViolation, match="exceeds the protocol maximum 2e\\+10"):
        compute_dose(arm.custom_dose(2.5e10), body_weight_kg=70, lot_particles_per_ml=1e11)
    ok = compute_dose(arm.custom_dose(1.5e10), body_weight_kg=70, lot_particles_per_ml=1e11)
    assert ok.level is None and ok.particles == pytest.approx(1.05e12)


@pytest.mark.parametrize(("kwargs", "match"), [
    ({"body_weight_kg": 70, "lot_particles_per_ml": 0}, "lot concentration"),
    ({"body_weight_kg": 70, "lot_particles_per_ml": float("nan")}, "lot concentration"),
    ({"body_weight_kg": -70, "lot_particles_per_ml": 1e11}, "body weight"),
    ({"body_weight_kg": 70000, "lot_particles_per_ml": 1e11}, "implausible"),
    ({"body_weight_kg": 70, "lot_particles_per_ml": 1e11, "lot_particles_per_ug_protein": -1},
     "particle:protein"),
])
def test_nonsense_numbers(cardio, kwargs, match):
    with pytest.raises(InvalidInput, match=match):
        compute_dose(cardio.arm("IV").level(1), **kwargs)


@pytest.fixture
def facts(cardio):
    dose = compute_dose(cardio.arm("IV").level(3), body_weight_kg=70, lot_particles_per_ml=2e11)
    return AdministrationFacts(
        vial_id="V-001", lot_number="L-2026-01", lot_status="released",
        lot_expiry_date=date(2026, 6, 30), product_type="cpc-ev", donor_consent_valid=True,
        subject_consent_valid=True, arm=cardio.arm("IV"), dose=dose,
        administration_date=date(2026, 3, 1))


def test_allowed(facts):
    assert check_administration(facts) is None
    assert administration_refusals(facts) == ()
    # the expiry day itself is still usable
    assert check_administration(dataclasses.replace(facts, administration_date=date(2026, 6, 30))) is None


@pytest.mark.parametrize(("change", "error", "message"), [
    ({"subject_consent_valid": False}, ConsentError, "subject's study consent"),
    ({"donor_consent_valid": False}, ConsentError, "donor whose consent is withdrawn"),
    ({"lot_status": "quarantined"}, RuleViolation, "lot L-2026-01 is 'quarantined', not released"),
    ({"lot_expiry_date": date(2026, 2, 27)}, RuleViolation, "expired on 2026-02-27 \\(2 days ago\\)"),
    ({"lot_expiry_date": None}, RuleViolation, "no expiry date"),
    ({"product_type": "msc-exo"}, RuleViolation, "not allowed in arm IV"),
    ({"vial_status": "used"}, RuleViolation, "vial V-001 is 'used'"),
])
def test_refused_with_one_line_reason(facts, change, error, message):
    bad = dataclasses.replace(facts, **change)
    with pytest.raises(error, match=message) as info:
        check_administration(bad)
    assert "\n" not in str(info.value)
    assert len(administration_refusals(bad)) == 1


def test_dose_for_another_arm_is_refused(facts, protein_protocol):
    other = compute_dose(protein_protocol.arm("IM").level(1), lot_particles_per_ml=1e12,
                         lot_particles_per_ug_protein=1e9)
    with pytest.raises(RuleViolation, match="computed for arm IM"):
        check_administration(dataclasses.replace(facts, dose=other))


def test_all_refusals_listed_consent_first(facts):
    bad = dataclasses.replace(facts, lot_status="pending", subject_consent_valid=False,
                              vial_status="discarded")
    checks = [r.check for r in administration_refusals(bad)]
    assert checks == ["subject consent", "lot status", "vial status"]
    with pytest.raises(ConsentError):
        check_administration(bad)


def test_entry_criteria(cardio):
    from exotrace.clinic import check_entry_criteria

    assert check_entry_criteria(cardio, {"LVEF": 40.0}) is None  # the bound itself is eligible
    with pytest.raises(RuleViolation, match="baseline LVEF 45 % is above the entry maximum 40 %"):
        check_entry_criteria(cardio, {"LVEF": 45.0})
    with pytest.raises(RuleViolation, match="needs a baseline LVEF"):
        check_entry_criteria(cardio, {"NTPROBNP": 900.0})
