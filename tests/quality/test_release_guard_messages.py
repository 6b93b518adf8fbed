"""The release guards' refusals word for word, and the edges mutation testing found unpinned.

A guard that still refuses but names the wrong cause (or none) sends QA after
the wrong problem, so each message is compared whole.
"""

from __future__ import annotations

from dataclasses import replace

import pytest

from exotrace.errors import InvalidInput, PermissionDenied, RuleViolation
from exotrace.quality import (
    Conclusion,
    LotState,
    SpecStatus,
    evaluate,
    guard_disposition,
    guard_release,
    guard_verify,
    next_state,
)

from .conftest import LABEL, passing_results


def _message(error, call, *args, **kwargs) -> str:
    with pytest.raises(error) as info:
        call(*args, **kwargs)
    return str(info.value)


@pytest.fixture
def kw(msc_spec):
    ev = evaluate(msc_spec, passing_results("ana"), references=LABEL)
    return dict(state="verified", result_enterers=["ana"], evaluation=ev,
                specification=msc_spec)


def test_next_state_messages():
    assert _message(RuleViolation, next_state, "results_entered", "release") == (
        "cannot release a lot in state results_entered; allowed: enter_results, quarantine, "
        "verify")
    assert _message(RuleViolation, next_state, "released", "reject") == (
        "cannot reject a lot in state released; allowed: nothing (final state)")
    assert _message(InvalidInput, next_state, "floating", "release") == (
        "'floating' is not a valid LotState")


def test_verify_messages(msc_spec):
    assert _message(PermissionDenied, guard_verify, state="results_entered", verifier="Ana",
                    result_enterers=["ana"]) == (
        "Ana entered results of this lot and cannot verify them (four-eyes principle)")
    incomplete = evaluate(msc_spec, passing_results("ana")[:3], references=LABEL)
    assert incomplete.conclusion == Conclusion.INCOMPLETE
    assert _message(RuleViolation, guard_verify, state="results_entered", verifier="bob",
                    result_enterers=["ana"], evaluation=incomplete) == (
        "results are incomplete; enter the missing results before verifying")
    # without an evaluation only the state and the four-eyes rule are checked
    assert guard_verify(state="results_entered", verifier="bob",
                        result_enterers=["ana"]) is LotState.VERIFIED


def test_release_messages(msc_spec, kw):
    assert _message(PermissionDenied, guard_release, releaser=" ANA ", **kw) == (
        "ANA produced results of this lot and cannot release it")
    assert _message(RuleViolation, guard_release, releaser="qa",
                    open_investigation_ids=["INV-9", "INV-2"], **kw) == (
        "open OOS investigation(s) INV-2, INV-9; close them before release")
    draft = msc_spec.model_copy(update={"status": SpecStatus.DRAFT})
    assert _message(RuleViolation, guard_release, releaser="qa",
                    **{**kw, "specification": draft}) == (
        f"specification {msc_spec.name} {msc_spec.version} is draft, not effective")
    bad = replace(kw["evaluation"], conclusion=Conclusion.DOES_NOT_COMPLY)
    assert _message(RuleViolation, guard_release, releaser="qa",
                    **{**kw, "evaluation": bad}) == (
        "lot does not comply with its specification; it cannot be released")


def test_disposition_messages():
    assert _message(InvalidInput, guard_disposition, state="verified", action="release",
                    user="qa", reason="x") == (
        "release is not a QA disposition (reject, quarantine)")
    # user names compare ignoring case and surrounding blanks
    assert _message(PermissionDenied, guard_disposition, state="verified", action="reject",
                    user=" Ana", reason="endotoxin", result_enterers=["ana"]) == (
        "Ana produced results of this lot and cannot reject it")
