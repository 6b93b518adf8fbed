"""Evaluate a lot's results against a specification, with OOS investigations.

Rules (documented in ``docs/quality.md``):

* Each test of the specification gets one outcome: ``pass``, ``fail`` (out of
  specification, OOS), ``missing`` (no result) or ``report_only``.
* Numeric results are converted to the criterion's unit first; a unit of the
  wrong dimension is an error, not a failure.
* **Original results are never overwritten.** A retest replaces the original
  in the evaluation *only* when an OOS investigation linked to the original
  is closed with the conclusion ``lab_error`` (phase I: an assignable
  laboratory error invalidated the original) and names the retest. In every
  other case the original result counts and the retest is listed as not used
  (no "testing into compliance").
* Two results for the same test that no investigation links are refused
  (:class:`~exotrace.errors.RuleViolation`): the evaluation would otherwise
  have to choose one.
* Alternatives (tests sharing ``alternative_group``): the group passes when any
  member passes; it fails when every member has a result and none passes;
  otherwise it is incomplete. A failing member of a passing group is not OOS.
* Overall conclusion: ``does not comply`` if any judged test or group fails;
  otherwise ``incomplete`` if any is missing; otherwise ``complies``.

References
----------
.. [1] FDA, *Investigating Out-of-Specification (OOS) Test Results for
   Pharmaceutical Production*, Guidance for Industry, 2006 (rev. 2022).
.. [2] ICH Q7, section 11.1 (laboratory controls) and 11.4 (CoA).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum

from ..errors import InvalidInput, RuleViolation
from ._spec import (
    IdentityCriterion,
    PassFailCriterion,
    RangeCriterion,
    RelativeCriterion,
    ReportOnlyCriterion,
    Specification,
    describe_criterion,
)
from ._units import convert, normalize_unit

__all__ = [
    "Conclusion",
    "Evaluation",
    "InvestigationConclusion",
    "InvestigationPhase",
    "OOSInvestigation",
    "Outcome",
    "TestOutcome",
    "TestResult",
    "evaluate",
]


class Outcome(StrEnum):
    """Outcome of one test."""

    PASS = "pass"
    FAIL = "fail"
    MISSING = "missing"
    REPORT_ONLY = "report_only"


class Conclusion(StrEnum):
    """Overall conclusion of an evaluation."""

    COMPLIES = "complies"
    DOES_NOT_COMPLY = "does not comply"
    INCOMPLETE = "incomplete"


class InvestigationPhase(StrEnum):
    """Phase of an OOS investigation (FDA OOS guidance)."""

    PHASE_I = "phase_I"     # laboratory investigation
    PHASE_II = "phase_II"   # full-scale (manufacturing process) investigation


class InvestigationConclusion(StrEnum):
    """How an investigation ended; ``open`` while it runs."""

    OPEN = "open"
    LAB_ERROR = "lab_error"              # original invalidated by an assignable lab error
    CONFIRMED_OOS = "confirmed_oos"      # result stands; the lot fails the test
    INCONCLUSIVE = "inconclusive"        # no assignable cause; original stands


@dataclass(frozen=True)
class TestResult:
    """One reported result (a plain record; the database row maps onto it).

    Attributes
    ----------
    result_id : str
        Unique id of the result (never reused).
    test : str
        Name of the specification test.
    value : float or None
        Numeric value in ``unit``.
    unit : str or None
        Unit of ``value``.
    qualitative : str or None
        Word result (``negative``, ``present``, ...).
    method : str or None
        Method actually used (defaults to the specification's).
    entered_by : str or None
        User who entered or imported the result (for segregation of duties).
    """

    __test__ = False

    result_id: str
    test: str
    value: float | None = None
    unit: str | None = None
    qualitative: str | None = None
    method: str | None = None
    entered_by: str | None = None


@dataclass(frozen=True)
class OOSInvestigation:
    """An out-of-specification investigation linked to the original result.

    Attributes
    ----------
    investigation_id : str
        Unique id.
    original_result_id : str
        The result that was OOS (never modified).
    phase : InvestigationPhase
        Phase I (laboratory) or II (process).
    conclusion : InvestigationConclusion
        ``open`` until closed.
    retest_result_id : str or None
        Retest result; used only when ``conclusion`` is ``lab_error``.
    summary : str
        Free-text findings.
    """

    investigation_id: str
    original_result_id: str
    phase: InvestigationPhase = InvestigationPhase.PHASE_I
    conclusion: InvestigationConclusion = InvestigationConclusion.OPEN
    retest_result_id: str | None = None
    summary: str = ""

    @property
    def is_open(self) -> bool:
        """True while no conclusion is recorded."""
        return self.conclusion == InvestigationConclusion.OPEN


@dataclass(frozen=True)
class TestOutcome:
    """Outcome of one specification test.

    Attributes
    ----------
    test, method, criterion : str
        Test name, method and printable acceptance criterion.
    outcome : Outcome
        pass / fail / missing / report_only.
    result_id : str or None
        The result the outcome rests on.
    value : float or None
        Numeric result converted to the criterion's unit.
    unit : str or None
        Unit of ``value``.
    result_text : str
        Printable result (``"152 nm"``, ``"negative"``).
    reason : str
        Why it failed, or notes (retest used, reference value).
    superseded_result_id : str or None
        Original result invalidated by a lab-error investigation.
    alternative_group : str or None
        Group of alternatives the test belongs to.
    """

    __test__ = False

    test: str
    method: str
    criterion: str
    outcome: Outcome
    result_id: str | None = None
    value: float | None = None
    unit: str | None = None
    result_text: str = ""
    reason: str = ""
    superseded_result_id: str | None = None
    alternative_group: str | None = None


@dataclass(frozen=True)
class Evaluation:
    """Evaluation of one lot against one specification version.

    Attributes
    ----------
    specification_name, specification_version : str
        The specification judged against.
    conclusion : Conclusion
        complies / does not comply / incomplete.
    outcomes : list of TestOutcome
        In specification order.
    oos_result_ids : list of str
        Results that make the lot fail (OOS not rescued by an alternative).
    open_investigation_ids : list of str
        Investigations still open (block release).
    unused_result_ids : list of str
        Retests that did not replace the original.
    groups : dict
        Alternative group -> outcome.
    """

    specification_name: str
    specification_version: str
    conclusion: Conclusion
    outcomes: list[TestOutcome]
    oos_result_ids: list[str] = field(default_factory=list)
    open_investigation_ids: list[str] = field(default_factory=list)
    unused_result_ids: list[str] = field(default_factory=list)
    groups: dict[str, Outcome] = field(default_factory=dict)

    def outcome(self, test: str) -> TestOutcome:
        """Outcome of the named test (``KeyError`` if absent)."""
        for o in self.outcomes:
            if o.test == test:
                return o
        raise KeyError(test)


_PRESENT = {"present", "positive", "+", "detected", "pos", "yes"}
_ABSENT = {"absent", "negative", "-", "not detected", "neg", "no"}
_NORMAL_WORD = {"not detected": "negative", "detected": "positive", "conforms": "pass",
                "does not conform": "fail"}


def _fmt(value: float) -> str:
    return f"{value:.4g}"


def _judge_range(c: RangeCriterion, v: float) -> tuple[bool, str]:
    if c.lower is not None and (v < c.lower or (v == c.lower and not c.lower_inclusive)):
        return False, f"{_fmt(v)} {c.unit} below the lower limit ({describe_criterion(c)})"
    if c.upper is not None and (v > c.upper or (v == c.upper and not c.upper_inclusive)):
        return False, f"{_fmt(v)} {c.unit} above the upper limit ({describe_criterion(c)})"
    return True, ""


def _numeric(result: TestResult, unit: str) -> float:
    if result.value is None:
        raise InvalidInput(f"result {result.result_id} for test {result.test!r} has no number")
    v = float(result.value)
    if not math.isfinite(v):
        raise InvalidInput(f"result {result.result_id} for test {result.test!r} is not finite")
    if result.unit is None:
        raise InvalidInput(f"result {result.result_id} for test {result.test!r} has no unit")
    return convert(v, result.unit, unit)


def _judge(test, result: TestResult, references: Mapping[str, tuple[float, str]]) -> TestOutcome:
    c = test.criterion
    base = dict(test=test.name, method=result.method or test.method,
                criterion=describe_criterion(c), result_id=result.result_id,
                alternative_group=test.alternative_group)
    if isinstance(c, RangeCriterion):
        v = _numeric(result, c.unit)
        ok, why = _judge_range(c, v)
        return TestOutcome(outcome=Outcome.PASS if ok else Outcome.FAIL, value=v, unit=c.unit,
                           result_text=f"{_fmt(v)} {c.unit}", reason=why, **base)
    if isinstance(c, RelativeCriterion):
        v = _numeric(result, c.unit)
        if c.reference not in references:
            raise InvalidInput(f"test {test.name!r} needs the lot's reference value "
                               f"{c.reference!r} (e.g. the label claim)")
        ref_value, ref_unit = references[c.reference]
        ref = convert(float(ref_value), ref_unit, c.unit)
        deviation = (v - ref) / abs(ref) * 100.0 if ref != 0 else math.inf
        # Inclusive bound; the tiny slack absorbs float rounding of exact +-20 % values.
        ok = abs(deviation) <= c.tolerance_percent * (1 + 1e-12)
        why = (f"{deviation:+.1f} % from {c.reference} {_fmt(ref)} {c.unit}"
               + ("" if ok else f" (allowed +- {c.tolerance_percent:g} %)"))
        return TestOutcome(outcome=Outcome.PASS if ok else Outcome.FAIL, value=v, unit=c.unit,
                           result_text=f"{_fmt(v)} {c.unit} ({deviation:+.1f} %)", reason=why,
                           **base)
    if isinstance(c, ReportOnlyCriterion):
        if result.value is not None:
            unit = c.unit or (normalize_unit(result.unit) if result.unit else None)
            v = _numeric(result, unit) if unit else float(result.value)
            text = f"{_fmt(v)} {unit or ''}".strip()
            return TestOutcome(outcome=Outcome.REPORT_ONLY, value=v, unit=unit,
                               result_text=text, **base)
        return TestOutcome(outcome=Outcome.REPORT_ONLY, result_text=result.qualitative or "",
                           **base)
    word = (result.qualitative or "").strip().lower()
    if not word:
        raise InvalidInput(f"result {result.result_id} for test {test.name!r} needs a "
                           "qualitative result (e.g. negative, present)")
    if isinstance(c, IdentityCriterion):
        if word in _PRESENT:
            seen = "present"
        elif word in _ABSENT:
            seen = "absent"
        else:
            raise InvalidInput(f"result {result.result_id} for test {test.name!r}: "
                               f"{word!r} is neither present nor absent")
        ok = seen == c.expected
        return TestOutcome(outcome=Outcome.PASS if ok else Outcome.FAIL, result_text=seen,
                           reason="" if ok else f"{c.marker} {seen}, expected {c.expected}",
                           **base)
    if isinstance(c, PassFailCriterion):
        word = _NORMAL_WORD.get(word, word)
        ok = word == c.expected
        return TestOutcome(outcome=Outcome.PASS if ok else Outcome.FAIL, result_text=word,
                           reason="" if ok else f"{word}, expected {c.expected}", **base)
    raise InvalidInput(f"unknown criterion for test {test.name!r}")  # pragma: no cover


def _select_results(spec: Specification, results: Sequence[TestResult],
                    investigations: Sequence[OOSInvestigation]):
    """Choose the result that counts for each test; see the module rules."""
    by_id: dict[str, TestResult] = {}
    for r in results:
        if r.result_id in by_id:
            raise InvalidInput(f"result id {r.result_id!r} appears twice")
        by_id[r.result_id] = r
        try:
            spec.test(r.test)
        except KeyError:
            raise InvalidInput(f"result {r.result_id}: test {r.test!r} is not in specification "
                               f"{spec.name} {spec.version}") from None
    retest_of: dict[str, OOSInvestigation] = {}
    inv_by_original: dict[str, OOSInvestigation] = {}
    for inv in investigations:
        if inv.original_result_id not in by_id:
            raise InvalidInput(f"investigation {inv.investigation_id}: original result "
                               f"{inv.original_result_id!r} not among the results")
        if inv.original_result_id in inv_by_original:
            raise InvalidInput(f"result {inv.original_result_id!r} has two investigations")
        inv_by_original[inv.original_result_id] = inv
        if inv.retest_result_id is not None:
            rt = by_id.get(inv.retest_result_id)
            if rt is None:
                raise InvalidInput(f"investigation {inv.investigation_id}: retest result "
                                   f"{inv.retest_result_id!r} not among the results")
            if rt.test != by_id[inv.original_result_id].test:
                raise InvalidInput(f"investigation {inv.investigation_id}: retest is for test "
                                   f"{rt.test!r}, original for "
                                   f"{by_id[inv.original_result_id].test!r}")
            retest_of[rt.result_id] = inv
    chosen: dict[str, tuple[TestResult, str | None]] = {}
    unused: list[str] = []
    for r in results:
        if r.result_id in retest_of:
            continue  # handled through its original
        if r.test in chosen:
            raise RuleViolation(f"test {r.test!r} has two results ({chosen[r.test][0].result_id}, "
                                f"{r.result_id}) that no OOS investigation links")
        current, superseded = r, None
        # Follow the chain original -> retest (a retest can itself be investigated).
        while current.result_id in inv_by_original:
            inv = inv_by_original[current.result_id]
            if inv.retest_result_id is None:
                break
            retest = by_id[inv.retest_result_id]
            if inv.conclusion == InvestigationConclusion.LAB_ERROR:
                superseded, current = current.result_id, retest
            else:
                unused.append(retest.result_id)
                break
        chosen[r.test] = (current, superseded)
    return chosen, unused, inv_by_original


def evaluate(
    spec: Specification,
    results: Sequence[TestResult],
    *,
    investigations: Sequence[OOSInvestigation] = (),
    references: Mapping[str, tuple[float, str]] | None = None,
) -> Evaluation:
    """Evaluate one lot's results against ``spec``.

    Parameters
    ----------
    spec : Specification
        The specification version in force for the lot.
    results : sequence of TestResult
        All results of the lot, originals and retests.
    investigations : sequence of OOSInvestigation, optional
        OOS investigations, each linked to its original result.
    references : mapping, optional
        Reference values for ``relative`` criteria: name -> (value, unit),
        e.g. ``{"label_claim": (1e11, "particles/mL")}``.

    Returns
    -------
    Evaluation
        Outcomes in specification order and the overall conclusion.

    Raises
    ------
    InvalidInput
        Unknown test, result without number/unit/word, missing reference value.
    UnitError
        A result's unit cannot be converted to the criterion's.
    RuleViolation
        Two unlinked results for one test.
    """
    references = dict(references or {})
    chosen, unused, inv_by_original = _select_results(spec, results, investigations)
    outcomes: list[TestOutcome] = []
    for test in spec.tests:
        if test.name not in chosen:
            outcomes.append(TestOutcome(
                test=test.name, method=test.method, criterion=describe_criterion(test.criterion),
                outcome=(Outcome.REPORT_ONLY if isinstance(test.criterion, ReportOnlyCriterion)
                         else Outcome.MISSING),
                reason="no result", alternative_group=test.alternative_group))
            continue
        result, superseded = chosen[test.name]
        o = _judge(test, result, references)
        if superseded is not None:
            note = f"retest {result.result_id} replaces {superseded} (lab error)"
            o = TestOutcome(**{**o.__dict__, "superseded_result_id": superseded,
                               "reason": "; ".join(x for x in (o.reason, note) if x)})
        outcomes.append(o)

    groups: dict[str, list[TestOutcome]] = {}
    for o in outcomes:
        if o.alternative_group:
            groups.setdefault(o.alternative_group, []).append(o)
    group_outcome: dict[str, Outcome] = {}
    for g, members in groups.items():
        states = {m.outcome for m in members}
        if Outcome.PASS in states:
            group_outcome[g] = Outcome.PASS
        elif Outcome.MISSING in states:
            group_outcome[g] = Outcome.MISSING
        else:
            group_outcome[g] = Outcome.FAIL

    judged: list[Outcome] = []
    oos: list[str] = []
    for o in outcomes:
        if o.alternative_group:
            continue
        judged.append(o.outcome)
        if o.outcome == Outcome.FAIL and o.result_id:
            oos.append(o.result_id)
    for g, state in group_outcome.items():
        judged.append(state)
        if state == Outcome.FAIL:
            oos.extend(m.result_id for m in groups[g] if m.result_id)

    if Outcome.FAIL in judged:
        conclusion = Conclusion.DOES_NOT_COMPLY
    elif Outcome.MISSING in judged:
        conclusion = Conclusion.INCOMPLETE
    else:
        conclusion = Conclusion.COMPLIES
    open_ids = [inv.investigation_id for inv in inv_by_original.values() if inv.is_open]
    return Evaluation(
        specification_name=spec.name, specification_version=spec.version,
        conclusion=conclusion, outcomes=outcomes, oos_result_ids=oos,
        open_investigation_ids=open_ids, unused_result_ids=unused, groups=group_outcome)
