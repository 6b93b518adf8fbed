"""Every limit of the dose computation and the administration guard, at its boundary.

Each check of :func:`~exotrace.clinic.administration_refusals` is tested on
its own (all other facts valid), just inside and just outside its limit, so
that losing or loosening any one of them fails a test. The cardiomyopathy
arm IV has a maximum of 2e10 particles/kg (its level 3).
"""

from __future__ import annotations

import dataclasses
from datetime import UTC, date, datetime, timedelta

import pytest

from exotrace.clinic import (
    AdministrationFacts,
    DoseUnit,
    administration_refusals,
    check_administration,
    compute_dose,
)
from exotrace.errors import ConsentError, RuleViolation

MAX_IV = 2.0e10  # particles/kg, arm IV of the example cardiomyopathy protocol
RELEASED_AT = datetime(2026, 2, 1, 9, 0, tzinfo=UTC)
FILLED_AT = datetime(2026, 2, 2, 14, 0, tzinfo=UTC)


@pytest.fixture
def arm(cardio):
    assert cardio.arm("IV").maximum_dose == MAX_IV
    return cardio.arm("IV")


@pytest.fixture
def facts(arm):
    dose = compute_dose(arm.level(3), body_weight_kg=70, lot_particles_per_ml=2e11)
    return AdministrationFacts(
        vial_id="V-001", lot_number="L-1", lot_status="released",
        lot_expiry_date=date(2026, 6, 30), product_type="cpc-ev", donor_consent_valid=True,
        subject_consent_valid=True, arm=arm, dose=dose, administration_date=date(2026, 3, 1),
        administered_at=datetime(2026, 3, 1, 10, tzinfo=UTC), lot_released_at=RELEASED_AT,
        vial_filled_at=FILLED_AT)


def _checks(facts, **change):
    return [r.check for r in administration_refusals(dataclasses.replace(facts, **change))]


# ---------------------------------------------------------------- compute_dose

@pytest.mark.parametrize(("factor", "allowed"), [(0.99, True), (1.0, True), (1.01, False),
                                                 (1.2, False)])
def test_compute_dose_maximum_boundary(arm, factor, allowed):
    level = dataclasses.replace(arm.level(1), amount=MAX_IV * factor)
    if allowed:
        d = compute_dose(level, body_weight_kg=70, lot_particles_per_ml=2e11)
        assert d.particles == pytest.approx(MAX_IV * factor * 70, rel=1e-12)
        assert d.fraction_of_maximum == pytest.approx(factor, rel=1e-12)
    else:
        with pytest.raises(RuleViolation, match="exceeds the protocol maximum 2e\\+10"):
            compute_dose(level, body_weight_kg=70, lot_particles_per_ml=2e11)


def test_compute_dose_volume_and_protein_are_exact(arm):
    # 1e10 particles/kg x 80 kg = 8e11 particles; / 4e11 per mL = 2.0 mL; / 2e9 per ug = 400 ug
    d = compute_dose(arm.level(2), body_weight_kg=80, lot_particles_per_ml=4e11,
                     lot_particles_per_ug_protein=2e9)
    assert arm.level(2).amount == 1.0e10
    assert (d.particles, d.volume_ml, d.protein_ug) == pytest.approx((8e11, 2.0, 400.0),
                                                                     rel=1e-12)
    assert d.maximum_dose == MAX_IV and d.fraction_of_maximum == pytest.approx(0.5)
    assert d.lot_particles_per_ml == 4e11 and d.lot_particles_per_ug_protein == 2e9


def test_body_weight_limit_boundary(arm):
    ok = compute_dose(arm.level(1), body_weight_kg=500.0, lot_particles_per_ml=2e11)
    assert ok.body_weight_kg == 500.0
    with pytest.raises(Exception, match="implausible"):
        compute_dose(arm.level(1), body_weight_kg=500.01, lot_particles_per_ml=2e11)


# ---------------------------------------------------------------- the guard, check by check

def test_all_valid_facts_pass(facts):
    assert administration_refusals(facts) == ()
    assert check_administration(facts) is None


@pytest.mark.parametrize(("factor", "refused"), [(1.0, False), (1.01, True)])
def test_guard_dose_over_arm_maximum(facts, factor, refused):
    # compute_dose refuses this too; the guard checks again what it is handed
    dose = dataclasses.replace(facts.dose, dose_amount=MAX_IV * factor)
    checks = _checks(facts, dose=dose)
    assert checks == (["dose"] if refused else [])
    if refused:
        with pytest.raises(RuleViolation, match="dose 2.02e\\+10 particles/kg exceeds the arm IV "
                                                "maximum 2e\\+10"):
            check_administration(dataclasses.replace(facts, dose=dose))


def test_guard_dose_unit_must_be_the_arms(facts):
    dose = dataclasses.replace(facts.dose, dose_unit=DoseUnit.PARTICLES)
    assert _checks(facts, dose=dose) == ["dose"]
    with pytest.raises(RuleViolation, match="computed for arm IV in particles, but the subject "
                                            "is in arm IV \\(particles/kg\\)"):
        check_administration(dataclasses.replace(facts, dose=dose))


def test_guard_dose_arm_must_be_the_subjects(facts):
    dose = dataclasses.replace(facts.dose, arm_code="IM")
    assert _checks(facts, dose=dose) == ["dose"]


@pytest.mark.parametrize(("day", "refused"), [(date(2026, 6, 29), False),
                                              (date(2026, 6, 30), False),   # expiry day
                                              (date(2026, 7, 1), True)])    # the day after
def test_guard_expiry_boundary(facts, day, refused):
    at = datetime(day.year, day.month, day.day, 10, tzinfo=UTC)
    checks = _checks(facts, administration_date=day, administered_at=at)
    assert checks == (["expiry"] if refused else [])
    if refused:
        with pytest.raises(RuleViolation, match="expired on 2026-06-30 \\(1 day ago\\)"):
            check_administration(dataclasses.replace(facts, administration_date=day,
                                                     administered_at=at))


def test_guard_no_expiry_is_refused(facts):
    assert _checks(facts, lot_expiry_date=None) == ["expiry"]


@pytest.mark.parametrize(("delta", "refused"), [(timedelta(minutes=-1), True),
                                                (timedelta(microseconds=-1), True),
                                                (timedelta(0), False),
                                                (timedelta(minutes=1), False)])
def test_guard_release_time_boundary(facts, delta, refused):
    at = RELEASED_AT + delta
    checks = _checks(facts, administered_at=at, vial_filled_at=None)
    assert checks == (["release time"] if refused else [])


def test_guard_released_lot_without_release_time_is_refused(facts):
    assert _checks(facts, lot_released_at=None) == ["release time"]
    with pytest.raises(RuleViolation, match="no recorded release time"):
        check_administration(dataclasses.replace(facts, lot_released_at=None))


@pytest.mark.parametrize(("delta", "refused"), [(timedelta(minutes=-1), True),
                                                (timedelta(0), False)])
def test_guard_fill_time_boundary(facts, delta, refused):
    checks = _checks(facts, administered_at=FILLED_AT + delta)
    assert checks == (["fill time"] if refused else [])


def test_guard_without_a_time_checks_the_day_only(facts):
    # callers that give no time (screens) are judged on the day; the records layer always gives it
    assert _checks(facts, administered_at=None, lot_released_at=None) == []


@pytest.mark.parametrize(("status", "refused"), [("released", False), (" Released ", False),
                                                 ("awaiting_release", True),
                                                 ("quarantined", True), ("rejected", True)])
def test_guard_lot_status(facts, status, refused):
    checks = _checks(facts, lot_status=status)
    # a lot that is not released has no release time check: its status refuses it first
    assert checks == (["lot status"] if refused else [])


@pytest.mark.parametrize(("status", "refused"), [("available", False), ("reserved", False),
                                                 ("administered", True), ("quarantined", True),
                                                 ("destroyed", True)])
def test_guard_vial_status(facts, status, refused):
    assert _checks(facts, vial_status=status) == (["vial status"] if refused else [])


def test_guard_product_type(facts):
    assert _checks(facts, product_type="msc-ev") == []
    assert _checks(facts, product_type="cpc-ev ") == ["product"]


@pytest.mark.parametrize(("field", "check"), [("subject_consent_valid", "subject consent"),
                                              ("donor_consent_valid", "donor consent")])
def test_guard_consents(facts, field, check):
    refusals = administration_refusals(dataclasses.replace(facts, **{field: False}))
    assert [r.check for r in refusals] == [check]
    assert refusals[0].consent and isinstance(refusals[0].error(), ConsentError)
    with pytest.raises(ConsentError):
        check_administration(dataclasses.replace(facts, **{field: False}))


def test_guard_lists_every_refusal_consent_first(facts):
    bad = dataclasses.replace(facts, subject_consent_valid=False, lot_status="quarantined",
                              vial_status="destroyed", product_type="other",
                              lot_expiry_date=date(2026, 1, 1))
    assert [r.check for r in administration_refusals(bad)] == [
        "subject consent", "lot status", "expiry", "vial status", "product"]
    with pytest.raises(ConsentError):
        check_administration(bad)


# ---------------------------------------------------------------- exact reasons and edges

def test_guard_dose_at_the_rounding_tolerance_is_allowed(facts):
    dose = dataclasses.replace(facts.dose, dose_amount=MAX_IV * (1 + 1e-12))
    assert _checks(facts, dose=dose) == []


@pytest.mark.parametrize(("change", "reason"), [
    ({"subject_consent_valid": False}, "vial V-001: the subject's study consent is missing or "
     "withdrawn; record valid consent before any administration"),
    ({"donor_consent_valid": False}, "vial V-001: lot L-1 comes from a donor whose consent is "
     "withdrawn or does not cover this use"),
    ({"lot_status": "quarantined"}, "vial V-001: lot L-1 is 'quarantined', not released by QA"),
    ({"vial_status": "destroyed"}, "vial V-001 is 'destroyed'; only an available vial can be "
     "administered"),
    ({"product_type": "other-ev"}, "vial V-001: product 'other-ev' is not allowed in arm IV "
     "(allowed: cpc-ev, msc-ev)"),
    ({"lot_expiry_date": date(2026, 2, 27)}, "vial V-001: lot L-1 expired on 2026-02-27 "
     "(2 days ago)"),
    ({"lot_expiry_date": None}, "vial V-001: lot L-1 has no expiry date"),
])
def test_guard_reasons_word_for_word(facts, change, reason):
    (refusal,) = administration_refusals(dataclasses.replace(facts, **change))
    assert refusal.reason == reason
    assert str(refusal.error()) == reason


def test_refusal_error_class_follows_the_consent_flag():
    from exotrace.clinic import AdministrationRefusal

    assert type(AdministrationRefusal("lot status", "x").error()) is RuleViolation
    assert type(AdministrationRefusal("donor consent", "x", consent=True).error()) is \
        ConsentError


def test_entry_criterion_minimum_boundary(cardio_raw):
    from exotrace.clinic import check_entry_criteria, parse_protocol

    cardio_raw["eligibility"]["entry_criteria"] = [{"outcome": "LVEF", "min": 20, "max": 40}]
    protocol = parse_protocol(cardio_raw)
    assert check_entry_criteria(protocol, {"LVEF": 20.0}) is None   # the bound itself
    with pytest.raises(RuleViolation) as info:
        check_entry_criteria(protocol, {"LVEF": 19.9})
    assert str(info.value) == (f"protocol {protocol.id}: baseline LVEF 19.9 % is below the entry "
                               "minimum 20 %")
