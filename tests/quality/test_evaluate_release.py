"""Evaluation rules, OOS investigations and the release state machine."""

from __future__ import annotations

from dataclasses import replace

import pytest

from exotrace.errors import InvalidInput, PermissionDenied, RuleViolation, UnitError
from exotrace.quality import (
    Conclusion,
    InvestigationConclusion,
    LotAction,
    LotState,
    OOSInvestigation,
    Outcome,
    SpecStatus,
    TestResult,
    evaluate,
    guard_disposition,
    guard_release,
    guard_verify,
    next_state,
)

from .conftest import LABEL, passing_results


def _with(results, **changes):
    """Replace results by id: changes = {result_id: TestResult}."""
    return [changes.get(r.result_id.replace("-", "_"), r) for r in results]


def test_complying_lot_with_unit_conversion(msc_spec):
    ev = evaluate(msc_spec, passing_results(), references=LABEL)
    assert ev.conclusion == Conclusion.COMPLIES
    size = ev.outcome("size_d50")
    assert (size.value, size.unit) == (pytest.approx(128.0), "nm")
    conc = ev.outcome("particle_concentration")
    assert conc.value == pytest.approx(1.1e11)
    assert "+10.0 %" in conc.result_text
    assert ev.outcome("protein_concentration").outcome == Outcome.REPORT_ONLY
    assert ev.outcome("protein_concentration").value == pytest.approx(200.0)
    assert ev.oos_result_ids == []


@pytest.mark.parametrize("value, outcome", [
    (0.5, Outcome.FAIL),       # exclusive upper bound
    (0.4999, Outcome.PASS),
    (500.0, Outcome.FAIL),     # 500 EU/L converts to exactly 0.5 EU/mL: fails
])
def test_exclusive_bound(msc_spec, value, outcome):
    unit = "EU/L" if value == 500.0 else "EU/mL"
    res = _with(passing_results(), r_endo=TestResult("r-endo", "endotoxin", value, unit))
    ev = evaluate(msc_spec, res, references=LABEL)
    assert ev.outcome("endotoxin").outcome == outcome
    assert (ev.conclusion == Conclusion.DOES_NOT_COMPLY) == (outcome == Outcome.FAIL)
    if outcome == Outcome.FAIL:
        assert ev.oos_result_ids == ["r-endo"]


@pytest.mark.parametrize("conc, ok", [(1.2e11, True), (0.8e11, True), (1.21e11, False),
                                      (0.79e11, False)])
def test_relative_label_claim_inclusive_20_percent(msc_spec, conc, ok):
    res = _with(passing_results(),
                r_conc=TestResult("r-conc", "particle_concentration", conc, "particles/mL"))
    ev = evaluate(msc_spec, res, references=LABEL)
    assert (ev.outcome("particle_concentration").outcome == Outcome.PASS) == ok


def test_alternative_group(msc_spec):
    # size D50 fails but > 90 % within 50-400 nm passes: the group passes, no OOS.
    res = _with(passing_results(), r_size=TestResult("r-size", "size_d50", 230, "nm"))
    ev = evaluate(msc_spec, res, references=LABEL)
    assert ev.outcome("size_d50").outcome == Outcome.FAIL
    assert ev.groups["size"] == Outcome.PASS
    assert ev.conclusion == Conclusion.COMPLIES and ev.oos_result_ids == []
    # both fail -> OOS for both
    res = _with(res, r_frac=TestResult("r-frac", "fraction_50_400nm", 90, "%"))
    ev = evaluate(msc_spec, res, references=LABEL)
    assert ev.conclusion == Conclusion.DOES_NOT_COMPLY
    assert sorted(ev.oos_result_ids) == ["r-frac", "r-size"]
    # one member missing, other passes -> complies
    res = [r for r in passing_results() if r.result_id != "r-frac"]
    assert evaluate(msc_spec, res, references=LABEL).conclusion == Conclusion.COMPLIES


def test_missing_and_qualitative(msc_spec):
    res = [r for r in passing_results() if r.result_id != "r-ster"]
    ev = evaluate(msc_spec, res, references=LABEL)
    assert ev.conclusion == Conclusion.INCOMPLETE
    assert ev.outcome("sterility").outcome == Outcome.MISSING
    res = _with(passing_results(), r_calnexin=TestResult("r-calnexin", "calnexin",
                                                         qualitative="positive"))
    ev = evaluate(msc_spec, res, references=LABEL)
    assert ev.outcome("calnexin").outcome == Outcome.FAIL
    assert ev.conclusion == Conclusion.DOES_NOT_COMPLY


def test_input_errors(msc_spec):
    with pytest.raises(UnitError):
        evaluate(msc_spec, _with(passing_results(),
                                 r_endo=TestResult("r-endo", "endotoxin", 0.1, "nm")),
                 references=LABEL)
    with pytest.raises(InvalidInput, match="label_claim"):
        evaluate(msc_spec, passing_results())
    with pytest.raises(InvalidInput, match="not in specification"):
        evaluate(msc_spec, [TestResult("x", "colour", 1, "nm")], references=LABEL)
    with pytest.raises(InvalidInput, match="neither present nor absent"):
        evaluate(msc_spec, [TestResult("x", "CD9", qualitative="maybe")])
    dup = passing_results() + [TestResult("r-endo2", "endotoxin", 0.1, "EU/mL")]
    with pytest.raises(RuleViolation, match="no OOS investigation"):
        evaluate(msc_spec, dup, references=LABEL)


def _oos(conclusion, retest_value=0.2):
    res = _with(passing_results(), r_endo=TestResult("r-endo", "endotoxin", 0.9, "EU/mL"))
    res.append(TestResult("r-endo-rt", "endotoxin", retest_value, "EU/mL"))
    inv = OOSInvestigation("INV-1", "r-endo", conclusion=conclusion, retest_result_id="r-endo-rt")
    return res, inv


def test_retest_used_only_when_lab_error_invalidates(msc_spec):
    res, inv = _oos(InvestigationConclusion.LAB_ERROR)
    ev = evaluate(msc_spec, res, investigations=[inv], references=LABEL)
    o = ev.outcome("endotoxin")
    assert o.result_id == "r-endo-rt" and o.superseded_result_id == "r-endo"
    assert ev.conclusion == Conclusion.COMPLIES
    # the original record is untouched
    assert next(r for r in res if r.result_id == "r-endo").value == 0.9
    for c in (InvestigationConclusion.CONFIRMED_OOS, InvestigationConclusion.INCONCLUSIVE,
              InvestigationConclusion.OPEN):
        res, inv = _oos(c)
        ev = evaluate(msc_spec, res, investigations=[inv], references=LABEL)
        assert ev.outcome("endotoxin").result_id == "r-endo"
        assert ev.conclusion == Conclusion.DOES_NOT_COMPLY
        assert ev.unused_result_ids == ["r-endo-rt"]
        assert ev.open_investigation_ids == (["INV-1"] if c == "open" else [])


def test_state_machine_transitions():
    S, A = LotState, LotAction
    assert next_state(S.RESULTS_PENDING, A.ENTER_RESULTS) == S.RESULTS_ENTERED
    assert next_state("verified", "release") == S.RELEASED
    for bad in [(S.RESULTS_ENTERED, A.RELEASE), (S.RELEASED, A.REJECT),
                (S.REJECTED, A.RELEASE), (S.RESULTS_PENDING, A.VERIFY)]:
        with pytest.raises(RuleViolation):
            next_state(*bad)
    with pytest.raises(InvalidInput):
        next_state("floating", "release")


def test_guards(msc_spec):
    ev = evaluate(msc_spec, passing_results("ana"), references=LABEL)
    with pytest.raises(PermissionDenied, match="four-eyes"):
        guard_verify(state="results_entered", verifier="Ana", result_enterers=["ana"])
    assert guard_verify(state="results_entered", verifier="bob",
                        result_enterers=["ana"], evaluation=ev) == LotState.VERIFIED
    kw = dict(state="verified", result_enterers=["ana"], evaluation=ev,
              specification=msc_spec)
    assert guard_release(releaser="qa", **kw) == LotState.RELEASED
    with pytest.raises(PermissionDenied):
        guard_release(releaser="ana", **kw)
    with pytest.raises(RuleViolation, match="open OOS"):
        guard_release(releaser="qa", open_investigation_ids=["INV-9"], **kw)
    old = msc_spec.model_copy(update={"status": SpecStatus.SUPERSEDED})
    with pytest.raises(RuleViolation, match="superseded"):
        guard_release(releaser="qa", **{**kw, "specification": old})
    newer = msc_spec.model_copy(update={"version": "2.0"})
    with pytest.raises(RuleViolation, match="evaluate again"):
        guard_release(releaser="qa", **{**kw, "specification": newer})
    bad = replace(ev, conclusion=Conclusion.DOES_NOT_COMPLY)
    with pytest.raises(RuleViolation, match="cannot be released"):
        guard_release(releaser="qa", **{**kw, "evaluation": bad})
    res, inv = _oos(InvestigationConclusion.OPEN)
    ev_open = evaluate(msc_spec, res, investigations=[inv], references=LABEL)
    with pytest.raises(RuleViolation, match="INV-1"):
        guard_release(releaser="qa", **{**kw, "evaluation": ev_open})
    with pytest.raises(InvalidInput, match="reason"):
        guard_disposition(state="verified", action="reject", user="qa", reason=" ")
    assert guard_disposition(state="verified", action="quarantine", user="qa",
                             reason="OOS open") == LotState.QUARANTINED
