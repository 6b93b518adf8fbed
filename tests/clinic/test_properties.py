"""Property tests: invariants of dose computation and the rule engine over many inputs."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from exotrace.clinic import (
    AdverseEvent,
    DoseAction,
    SubjectState,
    compute_dose,
    evaluate_rules,
    example_protocol_path,
    load_protocol,
    observations_by_visit,
)

SKIN = load_protocol(example_protocol_path("skin_rejuvenation"))
CARDIO = load_protocol(example_protocol_path("cardiomyopathy"))
DAY0 = date(2026, 2, 1)


@settings(max_examples=60, deadline=None)
@given(level=st.integers(1, 3), weight=st.floats(1.0, 300.0),
       conc=st.floats(1e8, 1e14), ratio=st.floats(1e7, 1e12))
def test_dose_invariants(level, weight, conc, ratio):
    d = compute_dose(CARDIO.arm("IV").level(level), body_weight_kg=weight,
                     lot_particles_per_ml=conc, lot_particles_per_ug_protein=ratio)
    assert d.volume_ml * conc == pytest.approx(d.particles, rel=1e-12)
    assert d.particles == pytest.approx(d.dose_amount * weight, rel=1e-12)
    assert d.protein_ug * ratio == pytest.approx(d.particles, rel=1e-12)
    assert 0 < d.fraction_of_maximum <= 1


_events = st.lists(st.builds(
    lambda g, rel, onset, dur: AdverseEvent(
        term="e", grade=g, onset_date=DAY0 + timedelta(days=onset), relatedness=rel,
        resolution_date=None if dur is None else DAY0 + timedelta(days=onset + dur),
        outcome="fatal" if g == 5 else "unknown"),
    st.integers(1, 5), st.sampled_from(["not related", "unlikely", "possible", "probable",
                                        "definite"]),
    st.integers(-20, 15), st.one_of(st.none(), st.integers(0, 10))), max_size=5)


@settings(max_examples=150, deadline=None)
@given(level=st.integers(1, 3), events=_events, consent=st.sampled_from(["valid", "withdrawn"]),
       hydr=st.floats(20.0, 80.0), week4=st.floats(20.0, 80.0))
def test_rule_engine_invariants(level, events, consent, hydr, week4):
    state = SubjectState(current_level=level, as_of=DAY0 + timedelta(days=10),
                         adverse_events=tuple(events), consent=consent,
                         observations={"HYDR": {"baseline": hydr, "week4": week4}},
                         last_administration_date=DAY0)
    p = evaluate_rules(SKIN, "MN", state)
    scope = state.events_in_scope()
    related = [e for e in scope if e.is_related]
    if consent == "withdrawn" or any(e.grade >= 4 for e in related):
        assert p.action is DoseAction.STOP and p.next_level is None and p.next_dose is None
    elif any(e.grade == 3 for e in related):
        assert p.action is DoseAction.HOLD
    elif any(e.grade == 2 for e in related):
        assert p.action is (DoseAction.REDUCE if level > 1 else DoseAction.HOLD)
    else:
        assert p.action in (DoseAction.CONTINUE, DoseAction.ESCALATE)
    if p.next_level is not None:
        assert 1 <= p.next_level <= 3
        assert abs(p.next_level - level) <= 1
        assert p.next_dose == SKIN.arm("MN").dose_levels[p.next_level - 1]
    # fired rules are listed most severe first
    sev = [f.action.severity for f in p.fired]
    assert sev == sorted(sev, reverse=True)


def test_observations_by_visit():
    class Obs:  # any object with the three attributes works
        def __init__(self, c, v, x):
            self.outcome_code, self.visit_name, self.value = c, v, x

    assert observations_by_visit([Obs("HYDR", "baseline", 40), Obs("HYDR", "week4", 41),
                                  Obs("TEWL", "baseline", 12.5)]) == {
        "HYDR": {"baseline": 40.0, "week4": 41.0}, "TEWL": {"baseline": 12.5}}
