"""Lot release as a pure state machine with guard functions.

The records layer stores the state and calls these guards inside its services;
the guards raise, they never write.

States and allowed transitions::

    results_pending --enter_results--> results_entered
    results_entered --enter_results--> results_entered     (more results, retests)
    results_entered --verify---------> verified
    verified        --reopen---------> results_entered     (a retest arrives)
    verified        --release--------> released            (terminal)
    verified        --reject---------> rejected            (terminal)
    verified        --quarantine-----> quarantined
    results_entered --quarantine-----> quarantined
    quarantined     --release / reject

Guards (21 CFR 11.10(f)(g); EU GMP Annex 11; four-eyes principle):

* no self-verification: the verifier entered none of the lot's results;
* the person who produced a lot's data does not release it;
* no release while an OOS investigation is open;
* no release against a superseded (or draft) specification;
* release needs an evaluation that ``complies``; reject and quarantine need a reason.

References
----------
.. [1] 21 CFR Part 11, section 11.10(f) (operational checks of step order) and
   11.10(g) (authority checks).
.. [2] EU GMP Annex 11 and Chapter 1; ICH Q7 section 2.2 (quality unit release).
"""

from __future__ import annotations

from collections.abc import Iterable
from enum import StrEnum

from ..errors import InvalidInput, PermissionDenied, RuleViolation
from ._evaluate import Conclusion, Evaluation
from ._spec import Specification, SpecStatus

__all__ = [
    "ALLOWED_TRANSITIONS",
    "LotAction",
    "LotState",
    "guard_disposition",
    "guard_release",
    "guard_verify",
    "next_state",
]


class LotState(StrEnum):
    """Release state of a lot."""

    RESULTS_PENDING = "results_pending"
    RESULTS_ENTERED = "results_entered"
    VERIFIED = "verified"
    RELEASED = "released"
    REJECTED = "rejected"
    QUARANTINED = "quarantined"


class LotAction(StrEnum):
    """Actions that move a lot between states."""

    ENTER_RESULTS = "enter_results"
    VERIFY = "verify"
    REOPEN = "reopen"
    RELEASE = "release"
    REJECT = "reject"
    QUARANTINE = "quarantine"


_S, _A = LotState, LotAction
ALLOWED_TRANSITIONS: dict[tuple[LotState, LotAction], LotState] = {
    (_S.RESULTS_PENDING, _A.ENTER_RESULTS): _S.RESULTS_ENTERED,
    (_S.RESULTS_ENTERED, _A.ENTER_RESULTS): _S.RESULTS_ENTERED,
    (_S.RESULTS_ENTERED, _A.VERIFY): _S.VERIFIED,
    (_S.RESULTS_ENTERED, _A.QUARANTINE): _S.QUARANTINED,
    (_S.VERIFIED, _A.REOPEN): _S.RESULTS_ENTERED,
    (_S.VERIFIED, _A.RELEASE): _S.RELEASED,
    (_S.VERIFIED, _A.REJECT): _S.REJECTED,
    (_S.VERIFIED, _A.QUARANTINE): _S.QUARANTINED,
    (_S.QUARANTINED, _A.RELEASE): _S.RELEASED,
    (_S.QUARANTINED, _A.REJECT): _S.REJECTED,
    (_S.QUARANTINED, _A.REOPEN): _S.RESULTS_ENTERED,
}


def next_state(state: LotState | str, action: LotAction | str) -> LotState:
    """State after ``action`` from ``state``.

    Raises
    ------
    RuleViolation
        If the action is not allowed in that state (e.g. release before verification).
    InvalidInput
        If the state or action name is unknown.
    """
    try:
        state, action = LotState(state), LotAction(action)
    except ValueError as exc:
        raise InvalidInput(str(exc)) from None
    try:
        return ALLOWED_TRANSITIONS[(state, action)]
    except KeyError:
        allowed = sorted(a.value for (s, a) in ALLOWED_TRANSITIONS if s == state)
        raise RuleViolation(
            f"cannot {action.value} a lot in state {state.value}; allowed: "
            f"{', '.join(allowed) or 'nothing (final state)'}") from None


def _norm(users: Iterable[str | None]) -> set[str]:
    return {u.strip().lower() for u in users if u}


def guard_verify(*, state: LotState | str, verifier: str, result_enterers: Iterable[str | None],
                 evaluation: Evaluation | None = None) -> LotState:
    """Check that ``verifier`` may verify the lot's results; returns the new state.

    Raises
    ------
    RuleViolation
        Wrong state, or the evaluation is incomplete (missing results).
    PermissionDenied
        The verifier entered one of the results (no self-verification).
    """
    new = next_state(state, LotAction.VERIFY)
    if verifier.strip().lower() in _norm(result_enterers):
        raise PermissionDenied(f"{verifier} entered results of this lot and cannot verify them "
                               "(four-eyes principle)")
    if evaluation is not None and evaluation.conclusion == Conclusion.INCOMPLETE:
        raise RuleViolation("results are incomplete; enter the missing results before verifying")
    return new


def _check_spec(specification: Specification) -> None:
    if specification.status == SpecStatus.SUPERSEDED:
        raise RuleViolation(f"specification {specification.name} {specification.version} is "
                            "superseded; evaluate the lot against the version in force")
    if specification.status != SpecStatus.EFFECTIVE:
        raise RuleViolation(f"specification {specification.name} {specification.version} is "
                            f"{specification.status.value}, not effective")


def guard_release(*, state: LotState | str, releaser: str, result_enterers: Iterable[str | None],
                  evaluation: Evaluation, specification: Specification,
                  open_investigation_ids: Iterable[str] = ()) -> LotState:
    """Check that the lot may be released by ``releaser``; returns ``released``.

    Parameters
    ----------
    state : LotState
        Current state (must be verified or quarantined).
    releaser : str
        QA user signing the release.
    result_enterers : iterable of str
        Users who entered or imported the lot's results.
    evaluation : Evaluation
        Evaluation of the lot against ``specification``.
    specification : Specification
        The specification evaluated against.
    open_investigation_ids : iterable of str
        Open OOS investigations known to the caller (added to the evaluation's).

    Raises
    ------
    RuleViolation
        Wrong state; open OOS investigation; superseded or draft
        specification; evaluation for another specification version; the
        lot does not comply.
    PermissionDenied
        The releaser produced the lot's data.
    """
    new = next_state(state, LotAction.RELEASE)
    if releaser.strip().lower() in _norm(result_enterers):
        raise PermissionDenied(f"{releaser} produced results of this lot and cannot release it")
    open_ids = sorted(set(evaluation.open_investigation_ids) | set(open_investigation_ids))
    if open_ids:
        raise RuleViolation(f"open OOS investigation(s) {', '.join(open_ids)}; close them "
                            "before release")
    _check_spec(specification)
    if (evaluation.specification_name, evaluation.specification_version) != (
            specification.name, specification.version):
        raise RuleViolation(
            f"evaluation is against {evaluation.specification_name} "
            f"{evaluation.specification_version}, not {specification.name} "
            f"{specification.version}; evaluate again")
    if evaluation.conclusion != Conclusion.COMPLIES:
        raise RuleViolation(f"lot {evaluation.conclusion.value} with its specification; "
                            "it cannot be released")
    return new


def guard_disposition(*, state: LotState | str, action: LotAction | str, user: str,
                      reason: str | None, result_enterers: Iterable[str | None] = ()) -> LotState:
    """Check a reject or quarantine decision; returns the new state.

    Raises
    ------
    InvalidInput
        ``action`` is not reject/quarantine, or the reason is empty.
    RuleViolation
        Not allowed in the current state.
    PermissionDenied
        The user produced the lot's data.
    """
    action = LotAction(action)
    if action not in (LotAction.REJECT, LotAction.QUARANTINE):
        raise InvalidInput(f"{action.value} is not a QA disposition (reject, quarantine)")
    new = next_state(state, action)
    if not reason or not reason.strip():
        raise InvalidInput(f"{action.value} needs a reason")
    if user.strip().lower() in _norm(result_enterers):
        raise PermissionDenied(f"{user} produced results of this lot and cannot {action.value} it")
    return new
