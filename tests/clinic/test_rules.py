"""Rule engine: every rule kind, with exact proposals (skin protocol arm MN: 1e10, 5e10, 1e11)."""

from __future__ import annotations

from datetime import date

import pytest

from exotrace.clinic import AdverseEvent, DoseAction, SubjectState, evaluate_rules
from exotrace.errors import InvalidInput

LAST_DOSE = date(2026, 2, 1)
AS_OF = date(2026, 2, 10)


def ae(grade: int, relatedness: str = "possible", onset=date(2026, 2, 3), resolved=None,
       aid: str = "AE") -> AdverseEvent:
    return AdverseEvent(term="injection site erythema", grade=grade, onset_date=onset,
                        relatedness=relatedness, resolution_date=resolved, ae_id=aid)


def state(level: int = 2, events=(), **kw) -> SubjectState:
    return SubjectState(current_level=level, as_of=AS_OF, adverse_events=tuple(events),
                        last_administration_date=LAST_DOSE, **kw)


def propose(skin, st):
    p = evaluate_rules(skin, "MN", st)
    return p.action, p.next_level, p.next_dose, p.rule_ids


def test_nothing_fires(skin):
    p = evaluate_rules(skin, "MN", state())
    assert (p.action, p.current_level, p.next_level, p.next_dose, p.fired) == (
        DoseAction.CONTINUE, 2, 2, 5.0e10, ())
    assert p.reason == "no rule fired" and p.dose_unit == "particles"


def test_reduce_on_related_grade_2(skin):
    assert propose(skin, state(events=[ae(2)])) == (DoseAction.REDUCE, 1, 1.0e10, ("REDUCE-G2",))


def test_unrelated_events_do_not_count(skin):
    assert propose(skin, state(events=[ae(2, "unlikely"), ae(3, "not related", aid="b")])) == (
        DoseAction.CONTINUE, 2, 5.0e10, ())


def test_reduce_at_lowest_level_holds(skin):
    p = evaluate_rules(skin, "MN", state(level=1, events=[ae(2)]))
    assert (p.action, p.next_level, p.rule_ids) == (DoseAction.HOLD, 1, ("REDUCE-G2",))
    assert "already at the lowest level" in p.reason


def test_hold_on_grade_3(skin):
    assert propose(skin, state(events=[ae(3, "definite")])) == (
        DoseAction.HOLD, 2, 5.0e10, ("HOLD-G3",))


def test_hold_with_reduce_resumes_one_level_lower(skin):
    events = [ae(3, "probable", aid="a"), ae(2, "possible", aid="b")]
    assert propose(skin, state(events=events)) == (
        DoseAction.HOLD, 1, 1.0e10, ("HOLD-G3", "REDUCE-G2"))


def test_stop_on_grade_4_beats_hold(skin):
    p = evaluate_rules(skin, "MN", state(events=[ae(4)]))
    assert (p.action, p.next_level, p.next_dose, p.rule_ids) == (
        DoseAction.STOP, None, None, ("STOP-G4", "HOLD-G3"))
    assert p.reason.startswith("STOP-G4: related AE 'injection site erythema' grade 4")


def test_stop_on_consent_withdrawal(skin):
    assert propose(skin, state(consent="withdrawn")) == (
        DoseAction.STOP, None, None, ("STOP-CONSENT",))


def test_escalate_when_not_improved(skin):
    # hydration 40 -> 42 AU is +5 %, below the 10 % the rule asks for at week 4
    obs = {"HYDR": {"baseline": 40.0, "week4": 42.0}}
    p = evaluate_rules(skin, "MN", state(observations=obs))
    assert (p.action, p.next_level, p.next_dose, p.rule_ids) == (
        DoseAction.ESCALATE, 3, 1.0e11, ("ESC-HYDR",))
    assert "HYDR improved 5%" in p.reason


def test_no_escalation_when_improved_enough_or_missing(skin):
    improved = {"HYDR": {"baseline": 40.0, "week4": 44.0}}  # +10 % exactly: improved enough
    assert propose(skin, state(observations=improved))[0] is DoseAction.CONTINUE
    missing = {"HYDR": {"baseline": 40.0}}
    assert propose(skin, state(observations=missing))[0] is DoseAction.CONTINUE
    no_baseline = {"HYDR": {"week4": 20.0}}
    assert propose(skin, state(observations=no_baseline))[0] is DoseAction.CONTINUE


def test_escalation_fires_once(skin):
    obs = {"HYDR": {"baseline": 40.0, "week4": 41.0}}
    st = state(level=3, observations=obs, applied_rule_ids={"ESC-HYDR"})
    assert propose(skin, st) == (DoseAction.CONTINUE, 3, 1.0e11, ())


def test_escalation_at_highest_level_continues(skin):
    obs = {"HYDR": {"baseline": 40.0, "week4": 41.0}}
    p = evaluate_rules(skin, "MN", state(level=3, observations=obs))
    assert (p.action, p.next_level, p.rule_ids) == (DoseAction.CONTINUE, 3, ("ESC-HYDR",))
    assert "already at the highest level" in p.reason


def test_stop_beats_escalate_and_both_are_listed(skin):
    obs = {"HYDR": {"baseline": 40.0, "week4": 41.0}}
    p = evaluate_rules(skin, "MN", state(observations=obs, consent="withdrawn"))
    assert (p.action, p.rule_ids) == (DoseAction.STOP, ("STOP-CONSENT", "ESC-HYDR"))
    assert "ESC-HYDR" not in p.reason  # the reason gives the deciding rule(s) only


def test_reduce_beats_escalate(skin):
    obs = {"HYDR": {"baseline": 40.0, "week4": 41.0}}
    assert propose(skin, state(events=[ae(2)], observations=obs)) == (
        DoseAction.REDUCE, 1, 1.0e10, ("REDUCE-G2", "ESC-HYDR"))


def test_event_scope(skin):
    # before the last dose and resolved: already acted on, out of scope
    old = ae(3, onset=date(2026, 1, 20), resolved=date(2026, 1, 25))
    assert propose(skin, state(events=[old]))[0] is DoseAction.CONTINUE
    # before the last dose but still ongoing: still holds
    ongoing = ae(3, onset=date(2026, 1, 20))
    assert propose(skin, state(events=[ongoing]))[0] is DoseAction.HOLD
    # after the evaluation day: not known yet
    future = ae(3, onset=date(2026, 3, 1))
    assert propose(skin, state(events=[future]))[0] is DoseAction.CONTINUE
    # on the day of the dose (an infusion reaction) counts
    same_day = ae(2, onset=LAST_DOSE, resolved=date(2026, 2, 2))
    assert propose(skin, state(events=[same_day]))[0] is DoseAction.REDUCE


def test_decrease_direction_in_cardio_has_no_escalation(cardio):
    p = evaluate_rules(cardio, cardio.arm("IV"), SubjectState(current_level=3, as_of=AS_OF))
    assert (p.action, p.next_level, p.next_dose, p.dose_unit) == (
        DoseAction.CONTINUE, 3, 2.0e10, "particles/kg")


def test_bad_state(skin):
    with pytest.raises(InvalidInput, match="current level 4 is not one of 1-3"):
        evaluate_rules(skin, "MN", state(level=4))
    with pytest.raises(InvalidInput, match="consent status"):
        state(consent="perhaps")
