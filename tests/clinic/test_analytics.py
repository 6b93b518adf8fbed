"""Trajectories, responder rates, safety tables and the lot-to-outcome mixed model."""

from __future__ import annotations

from datetime import date

import numpy as np
import pytest

from exotrace.clinic import (
    ASSOCIATION_STATEMENT,
    AdverseEvent,
    LotOutcomeRow,
    OutcomePoint,
    SubjectAdverseEvent,
    lot_outcome_model,
    plot_trajectories,
    responder_rates,
    safety_table,
    trajectories,
    wilson_interval,
)
from exotrace.errors import InsufficientData, InvalidInput


def _p(s, outcome, visit, day, value, arm="IV"):
    return OutcomePoint(s, arm, outcome, visit, day, value)


POINTS = [
    _p("S1", "LVEF", "baseline", -3, 30.0), _p("S1", "LVEF", "month6", 180, 36.0),
    _p("S1", "LVEF", "month3", 92, 33.0),
    _p("S2", "LVEF", "baseline", 0, 30.0), _p("S2", "LVEF", "month6", 185, 33.0),
    _p("S3", "LVEF", "baseline", 0, 28.0), _p("S3", "LVEF", "month6", 182, 33.0),
    _p("S4", "LVEF", "baseline", 0, 25.0),
    _p("S1", "NTPROBNP", "baseline", -3, 2000.0), _p("S1", "NTPROBNP", "month6", 180, 1300.0),
    _p("S2", "NTPROBNP", "baseline", 0, 2000.0), _p("S2", "NTPROBNP", "month6", 185, 1500.0),
]


def test_trajectories_sorted_by_day():
    t = trajectories(POINTS, "LVEF")
    assert t["S1"] == ((-3, 30.0), (92, 33.0), (180, 36.0))
    assert set(t) == {"S1", "S2", "S3", "S4"}


def test_responder_rates_absolute(cardio):
    # LVEF responder: +5 points at month6. S1 +6 yes, S2 +3 no, S3 +5 yes (bound included),
    # S4 has no month6 value (missing).
    (r,) = responder_rates(cardio, POINTS, "LVEF")
    assert (r.arm_code, r.visit_name, r.responders, r.evaluable, r.missing) == ("IV", "month6", 2, 3, 1)
    assert r.rate == pytest.approx(2 / 3)
    # Wilson 95 % interval for 2/3 from the closed form, z = 1.959964
    assert (r.ci_low, r.ci_high) == pytest.approx((0.2077, 0.9385), abs=1e-3)


def test_responder_rates_percent_decrease(cardio):
    # NT-proBNP responder: falls >= 30 %. S1 -35 % yes, S2 -25 % no; S5 enrolled, no data.
    (r,) = responder_rates(cardio, POINTS, "NTPROBNP", subjects_by_arm={"IV": ["S5"]})
    assert (r.responders, r.evaluable, r.missing) == (1, 2, 1)


def test_responder_needs_definition(skin):
    with pytest.raises(InvalidInput, match="no responder definition"):
        responder_rates(skin, [], "GAIS")


def test_wilson_edges():
    lo, hi = wilson_interval(0, 10)
    assert lo == 0.0 and hi == pytest.approx(0.2775, abs=1e-4)  # textbook value for 0/10
    assert all(np.isnan(wilson_interval(0, 0)))


def test_safety_table():
    def e(s, arm, grade, rel, serious=()):
        return SubjectAdverseEvent(s, arm, AdverseEvent("x", grade, date(2026, 1, 1), rel,
                                                        seriousness=frozenset(serious)))
    rows = safety_table([
        e("S1", "MN", 1, "possible"), e("S1", "MN", 1, "possible"), e("S2", "MN", 1, "possible"),
        e("S2", "MN", 2, "not related"), e("S3", "TC", 3, "definite", {"hospitalisation"}),
        e("S1", "MN", 1, "unlikely"),
    ])
    assert [(r.arm_code, r.grade, r.relatedness, r.events, r.subjects, r.serious) for r in rows] == [
        ("MN", 1, "unlikely", 1, 1, 0),
        ("MN", 1, "possible", 3, 2, 0),
        ("MN", 2, "not related", 1, 1, 0),
        ("TC", 3, "definite", 1, 1, 1),
    ]


@pytest.mark.parametrize("suffix", [".png", ".svg"])
def test_plot_trajectories(cardio, tmp_path, suffix):
    path = plot_trajectories(POINTS, "LVEF", tmp_path / f"lvef{suffix}", protocol=cardio)
    data = path.read_bytes()
    if suffix == ".png":
        assert data[:8] == b"\x89PNG\r\n\x1a\n"
    else:
        assert b"<svg" in data and b"Left ventricular ejection fraction" in data


def test_plot_errors(tmp_path):
    with pytest.raises(InvalidInput, match=".png or .svg"):
        plot_trajectories(POINTS, "LVEF", tmp_path / "x.gif")
    with pytest.raises(InsufficientData):
        plot_trajectories(POINTS, "6MWD", tmp_path / "x.png")


def _simulate(seed: int, *, n_subjects=40, visits=3, beta_purity=0.2, beta_mode=0.0,
              tau=2.0, sigma=1.0):
    """Change from baseline = 1 + b_p * purity + b_m * mode + u_subject + e (known truth)."""
    rng = np.random.default_rng(seed)
    lots = {f"L{k}": {"purity_e9_particles_per_ug": rng.uniform(1, 30),
                      "mode_diameter_nm": rng.uniform(90, 150)} for k in range(10)}
    rows = []
    for s in range(n_subjects):
        u = rng.normal(0, tau)
        for _ in range(visits):
            lot = f"L{rng.integers(10)}"
            a = lots[lot]
            change = (1.0 + beta_purity * a["purity_e9_particles_per_ug"]
                      + beta_mode * a["mode_diameter_nm"] + u + rng.normal(0, sigma))
            rows.append(LotOutcomeRow(f"S{s}", change, a, lot))
    return rows


def test_mixed_model_recovers_known_coefficient():
    rows = _simulate(11)
    m = lot_outcome_model(rows, attributes=["purity_e9_particles_per_ug", "mode_diameter_nm"],
                          outcome_code="LVEF")
    assert m.statement == ASSOCIATION_STATEMENT and "not efficacy" in m.statement
    assert (m.n_observations, m.n_subjects, m.n_lots) == (120, 40, 10)
    assert m.converged
    purity = m.coefficient("purity_e9_particles_per_ug")
    assert purity.ci_low < 0.2 < purity.ci_high  # the true slope lies in its 95 % CI
    # with 120 observations and sigma 1 the slope's SE is ~0.015; 0.05 is > 3 SE
    assert purity.estimate == pytest.approx(0.2, abs=0.05)
    assert purity.p_value < 1e-6
    mode = m.coefficient("mode_diameter_nm")
    assert mode.ci_low < 0.0 < mode.ci_high  # no true effect: CI covers zero for this seed
    # variance components near the simulated tau^2 = 4 and sigma^2 = 1 (40 subjects: loose)
    assert m.random_intercept_variance == pytest.approx(4.0, rel=0.5)
    assert m.residual_variance == pytest.approx(1.0, rel=0.3)


def test_mixed_model_refuses_what_it_cannot_answer():
    rows = _simulate(3, n_subjects=2)
    with pytest.raises(InsufficientData, match="at least 3 subjects"):
        lot_outcome_model(rows, attributes=["purity_e9_particles_per_ug"])
    flat = [LotOutcomeRow(r.subject_id, r.change, {"potency": 1.0}, r.lot_id)
            for r in _simulate(3)]
    with pytest.raises(InsufficientData, match="does not vary"):
        lot_outcome_model(flat, attributes=["potency"])
    with pytest.raises(InvalidInput, match="attribute 'potency' is missing"):
        lot_outcome_model(_simulate(3), attributes=["potency"])
    twice = [LotOutcomeRow(r.subject_id, r.change,
                           {"a": r.attributes["mode_diameter_nm"],
                            "b": 2 * r.attributes["mode_diameter_nm"]}, r.lot_id)
             for r in _simulate(3)]
    with pytest.raises(InsufficientData, match="collinear"):
        lot_outcome_model(twice, attributes=["a", "b"])


def test_lot_outcome_rows(cardio):
    from exotrace.clinic import lot_outcome_rows

    lots = {"L1": {"purity": 2.0}, "L2": {"purity": 5.0}}
    by_visit = {("S1", "month3"): "L1", ("S1", "month6"): "L2", ("S2", "month6"): "L1",
                ("S4", "month6"): "L2"}
    rows = lot_outcome_rows(cardio, POINTS, "LVEF", lot_by_subject_visit=by_visit,
                            lot_attributes=lots)
    # S1: 33-30 at month3 (L1), 36-30 at month6 (L2); S2: 33-30 (L1); S3 has no lot; S4 no value
    assert [(r.subject_id, r.change, r.lot_id, r.attributes["purity"]) for r in rows] == [
        ("S1", 3.0, "L1", 2.0), ("S1", 6.0, "L2", 5.0), ("S2", 3.0, "L1", 2.0)]
    pct = lot_outcome_rows(cardio, POINTS, "NTPROBNP", lot_by_subject_visit={
        ("S1", "month6"): "L1"}, lot_attributes=lots, change_kind="percent")
    assert [(r.subject_id, r.change) for r in pct] == [("S1", -35.0)]
    with pytest.raises(InvalidInput, match="lot 'L9' has no attributes"):
        lot_outcome_rows(cardio, POINTS, "LVEF", lot_by_subject_visit={("S1", "month6"): "L9"},
                         lot_attributes=lots)
