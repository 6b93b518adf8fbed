"""Visit calendar, observation checks, change from baseline, overdue visits; AE seriousness."""

from __future__ import annotations

from datetime import date

import pytest

from exotrace.clinic import (
    AdverseEvent,
    AEOutcome,
    ObservationInput,
    Relatedness,
    SeriousnessCriterion,
    administration_schedule,
    change_from_baseline,
    check_observation,
    convert_outcome_value,
    due_visits,
    expedited_reporting,
    overdue_visits,
    ucum_code,
    visit_schedule,
)
from exotrace.errors import InvalidInput, NotFound, UnitError

ENROL = date(2026, 1, 5)


def test_schedule_dates(cardio):
    visits = {v.name: v for v in visit_schedule(cardio, ENROL)}
    m3 = visits["month3"]  # day 91 +- 14
    assert (m3.target_date, m3.earliest_date, m3.latest_date) == (
        date(2026, 4, 6), date(2026, 3, 23), date(2026, 4, 20))
    base = visits["baseline"]  # day 0, up to 28 days before
    assert (base.earliest_date, base.latest_date, base.baseline) == (date(2025, 12, 8), ENROL, True)
    inf = [a.target_date for a in administration_schedule(cardio, ENROL)]
    assert inf == [date(2026, 1, 5), date(2026, 1, 26), date(2026, 2, 16)]


def test_observation_inside_window_and_unit_conversion(cardio):
    # NT-proBNP entered in ng/mL: 1.25 ng/mL = 1250 pg/mL
    c = check_observation(cardio, ObservationInput("NTPROBNP", "month3", 1.25, "ng/mL",
                                                   date(2026, 4, 1)), enrolment_date=ENROL)
    assert c.value == pytest.approx(1250.0)
    assert (c.unit, c.entered_unit, c.entered_value) == ("pg/mL", "ng/mL", 1.25)
    assert (c.days_from_target, c.days_outside_window, c.flag) == (-5, 0, None)
    assert c.within_window
    # LVEF as a fraction becomes percent
    lv = check_observation(cardio, ObservationInput("LVEF", "month3", 0.38, "fraction",
                                                    date(2026, 4, 6)), enrolment_date=ENROL)
    assert lv.value == pytest.approx(38.0)


def test_observation_outside_window_is_flagged_with_days(cardio):
    c = check_observation(cardio, ObservationInput("LVEF", "month3", 35.0, "%", date(2026, 4, 24)),
                          enrolment_date=ENROL)
    assert (c.days_from_target, c.days_outside_window) == (18, 4)
    assert c.flag.startswith("outside window: 4 days late")
    early = check_observation(cardio, ObservationInput("LVEF", "month3", 35.0, "%",
                                                       date(2026, 3, 22)), enrolment_date=ENROL)
    assert early.days_outside_window == -1
    assert early.flag.startswith("outside window: 1 day early")


@pytest.mark.parametrize(("obs", "error", "match"), [
    (ObservationInput("LVEF", "month3", 35.0, "pg/mL", date(2026, 4, 6)), UnitError,
     "cannot be converted"),
    (ObservationInput("6MWD", "month3", 350.0, "steps", date(2026, 4, 6)), UnitError,
     "no conversion is known"),
    (ObservationInput("LVEF", "month3", float("inf"), "%", date(2026, 4, 6)), InvalidInput,
     "finite"),
    (ObservationInput("BMI", "month3", 25.0, "kg/m2", date(2026, 4, 6)), NotFound, "no outcome"),
    (ObservationInput("LVEF", "week1", 35.0, "%", date(2026, 4, 6)), NotFound, "no visit"),
])
def test_bad_observations(cardio, obs, error, match):
    with pytest.raises(error, match=match):
        check_observation(cardio, obs, enrolment_date=ENROL)


def test_outcome_not_scheduled_at_visit(skin):
    with pytest.raises(InvalidInput, match="GAIS is not scheduled at visit baseline"):
        check_observation(skin, ObservationInput("GAIS", "baseline", 3, "score", ENROL),
                          enrolment_date=ENROL)


def test_unit_table():
    assert convert_outcome_value(1500.0, "ft", "m") == pytest.approx(457.2)  # 0.3048 m/ft exact
    assert convert_outcome_value(2.5, "mm2", "cm2") == pytest.approx(0.025)
    assert convert_outcome_value(12.0, "g/(m2.h)", "g/m2/h") == 12.0
    with pytest.raises(UnitError):
        convert_outcome_value(2.0, "score", "%")
    with pytest.raises(UnitError):
        convert_outcome_value(40.0, "AU", "%")
    assert ucum_code("g/m2/h") == "g/(m2.h)"
    assert ucum_code("AU") == "[arb'U]"
    assert ucum_code("furlongs") is None


def test_change_from_baseline():
    up = change_from_baseline(30.0, 36.0, "increase")  # LVEF 30 -> 36 %
    assert (up.absolute, up.percent, up.improvement_absolute, up.improvement_percent) == (
        6.0, 20.0, 6.0, 20.0)
    down = change_from_baseline(2000.0, 1500.0, "decrease")  # NT-proBNP falls: better
    assert (down.absolute, down.percent) == (-500.0, -25.0)
    assert (down.improvement_absolute, down.improvement_percent) == (500.0, 25.0)
    zero = change_from_baseline(0.0, 2.0, "increase")
    assert zero.percent is None and zero.improvement_percent is None


def test_overdue_and_due_visits(cardio):
    as_of = date(2026, 4, 25)  # month3 window closed 2026-04-20
    over = overdue_visits(cardio, ENROL, ["baseline"], as_of=as_of)
    assert [(v.name, v.days_overdue) for v in over] == [("month3", 5)]
    assert overdue_visits(cardio, ENROL, ["baseline", "month3"], as_of=as_of) == ()
    due = due_visits(cardio, ENROL, ["baseline"], as_of=date(2026, 3, 30), horizon_days=14)
    assert [(v.name, v.status) for v in due] == [("month3", "due")]
    soon = due_visits(cardio, ENROL, ["baseline"], as_of=date(2026, 3, 10), horizon_days=14)
    assert [(v.name, v.status) for v in soon] == [("month3", "upcoming")]
    assert due_visits(cardio, ENROL, ["baseline"], as_of=date(2026, 3, 1), horizon_days=14) == ()


# --- adverse events and ICH E2A expedited reporting ---------------------------------------

def _ae(**kw) -> AdverseEvent:
    base = {"term": "fever", "grade": 2, "onset_date": date(2026, 2, 1),
            "relatedness": "possible", "ae_id": "AE-1"}
    return AdverseEvent(**(base | kw))


def test_non_serious_event():
    r = expedited_reporting(_ae(grade=3))  # severe is not serious
    assert (r.serious, r.expedited, r.clock_days, r.due_date) == (False, False, None, None)


def test_susar_15_day_clock():
    r = expedited_reporting(_ae(seriousness={"hospitalisation"}, awareness_date=date(2026, 2, 3)))
    assert (r.serious, r.expedited, r.clock_days) == (True, True, 15)
    assert r.due_date == date(2026, 2, 18)
    assert r.investigator_due_date == date(2026, 2, 4)


def test_fatal_susar_7_day_clock():
    ae = _ae(grade=5, relatedness="probable")
    assert ae.outcome is AEOutcome.FATAL and SeriousnessCriterion.DEATH in ae.seriousness
    r = expedited_reporting(ae)
    assert (r.expedited, r.clock_days, r.due_date) == (True, 7, date(2026, 2, 8))
    lt = expedited_reporting(_ae(grade=4, seriousness={"life-threatening"}))
    assert lt.clock_days == 7


def test_serious_but_unrelated_or_expected_is_not_expedited():
    unrelated = expedited_reporting(_ae(seriousness={"hospitalisation"}, relatedness="unlikely"))
    assert (unrelated.serious, unrelated.expedited) == (True, False)
    expected = expedited_reporting(_ae(seriousness={"hospitalisation"}, expected=True))
    assert (expected.serious, expected.expedited) == (True, False)


@pytest.mark.parametrize(("kw", "match"), [
    ({"grade": 6}, "grade must be an integer 1-5"),
    ({"grade": 0}, "grade must be an integer 1-5"),
    ({"relatedness": "maybe"}, "relatedness 'maybe' is not one of"),
    ({"seriousness": {"scary"}}, "seriousness criterion"),
    ({"resolution_date": date(2026, 1, 1)}, "before onset"),
    ({"grade": 5, "outcome": "recovered/resolved"}, "needs outcome 'fatal'"),
    ({"outcome": "fatal"}, "needs CTCAE grade 5"),
    ({"term": " "}, "term must not be empty"),
])
def test_bad_adverse_events(kw, match):
    with pytest.raises(InvalidInput, match=match):
        _ae(**kw)


def test_relatedness_order():
    assert [r.is_related for r in Relatedness] == [False, False, True, True, True]
