"""compute_dose: each refusal with its exact one-line reason, and the edges of its limits.

A refusal that names the wrong field or unit sends the operator after the
wrong number, so the messages are pinned word for word.
"""

from __future__ import annotations

import dataclasses

import pytest

from exotrace.clinic import compute_dose
from exotrace.errors import InvalidInput, RuleViolation, UnitError

MAX_IV = 2.0e10  # particles/kg


@pytest.fixture
def arm(cardio):
    return cardio.arm("IV")


def _refused(error, message, level, **kwargs):
    kwargs.setdefault("lot_particles_per_ml", 2e11)
    with pytest.raises(error) as info:
        compute_dose(level, **kwargs)
    assert str(info.value) == message


def test_the_maximum_with_its_rounding_tolerance_is_still_allowed(arm):
    # 1e-12 relative tolerance: the maximum computed through another unit path passes
    at_tolerance = MAX_IV * (1 + 1e-12)
    d = compute_dose(dataclasses.replace(arm.level(3), amount=at_tolerance), body_weight_kg=70,
                     lot_particles_per_ml=2e11)
    assert d.dose_amount == at_tolerance


def test_over_maximum_messages_name_level_or_custom_dose(arm):
    _refused(RuleViolation, "arm IV level 3: dose 2.02e+10 particles/kg exceeds the protocol "
             "maximum 2e+10 particles/kg",
             dataclasses.replace(arm.level(3), amount=MAX_IV * 1.01), body_weight_kg=70)
    _refused(RuleViolation, "arm IV custom dose: dose 2.5e+10 particles/kg exceeds the "
             "protocol maximum 2e+10 particles/kg", arm.custom_dose(2.5e10), body_weight_kg=70)


def test_missing_weight_message_names_the_level(arm):
    _refused(UnitError, "arm IV level 1: dose is in particles/kg; give the subject's body "
             "weight in kg", arm.level(1))
    _refused(UnitError, "arm IV custom dose: dose is in particles/kg; give the subject's body "
             "weight in kg", arm.custom_dose(1e9))


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"lot_particles_per_ml": 0}, "lot concentration must be a positive number of particles/mL,"
                                  " got 0"),
    ({"lot_particles_per_ml": True}, "lot concentration must be a positive number of "
                                     "particles/mL, got True"),
    ({"lot_particles_per_ml": None}, "lot concentration must be a positive number of "
                                     "particles/mL, got None"),
    ({"lot_particles_per_ml": "2e11"}, "lot concentration must be a positive number of "
                                       "particles/mL, got '2e11'"),
    ({"lot_particles_per_ug_protein": -1.0}, "lot particle:protein ratio must be a positive "
                                             "number of particles per ug protein, got -1.0"),
    ({"body_weight_kg": -70}, "body weight must be a positive number of kg, got -70"),
    ({"body_weight_kg": 700}, "body weight 700 kg is implausible (> 500 kg); give the weight "
                              "in kg"),
])
def test_nonsense_numbers_exact_messages(arm, kwargs, message):
    kwargs = {"body_weight_kg": 70, "lot_particles_per_ml": 2e11, **kwargs}
    _refused(InvalidInput, message, arm.level(1), **kwargs)


def test_non_positive_dose_amount_names_the_arm_and_unit(arm):
    _refused(InvalidInput, "arm IV dose must be a positive number of particles/kg, got 0.0",
             dataclasses.replace(arm.level(1), amount=0.0), body_weight_kg=70)


@pytest.mark.parametrize("ratio", [None, 1e10])
def test_infinite_volume_is_refused(arm, ratio):
    # a denormal concentration: finite particles, but particles / 1e-320 overflows to inf mL
    _refused(InvalidInput, "arm IV level 1: 3.5e+11 particles at 1e-320 particles/mL gives no "
             "finite volume to draw; check the lot values", arm.level(1), body_weight_kg=70,
             lot_particles_per_ml=1e-320, lot_particles_per_ug_protein=ratio)
