"""Quality services: OOS investigations (opened on out-of-specification results, closed by
QA with a phase and a conclusion).
"""

from __future__ import annotations

from collections.abc import Mapping

from sqlalchemy.orm import Session

from ..errors import InvalidInput, RuleViolation
from ..quality import Evaluation, InvestigationConclusion, InvestigationPhase
from . import _repositories as repo
from . import _repositories_quality as qrepo
from ._auth import Permission, require_permission
from ._base import utcnow
from ._context import acting_as, change_reason
from ._models_auth import User
from ._models_lot import Lot
from ._models_quality import OOSInvestigationRecord
from ._quality_common import _LotData

__all__ = ["close_investigation", "describe_investigation", "investigation_view",
           "list_investigation_views"]


def _open_investigation(session: Session, user: User, lot: Lot, ref: str, test: str
                        ) -> OOSInvestigationRecord:
    inv = OOSInvestigationRecord(lot_id=lot.id, original_result=ref, test=test,
                                 phase=InvestigationPhase.PHASE_I,
                                 conclusion=InvestigationConclusion.OPEN,
                                 summary="opened automatically: result out of specification",
                                 opened_by_id=user.id)
    with acting_as(session, user):
        session.add(inv)
        session.flush()
    return inv


def _open_missing_investigations(session: Session, user: User, lot: Lot, evaluation: Evaluation,
                                 data: _LotData) -> list[OOSInvestigationRecord]:
    known = {inv.original_result_id for inv in data.investigations}
    made = []
    for ref in evaluation.oos_result_ids:
        if ref not in known:
            made.append(_open_investigation(session, user, lot, ref,
                                            _test_of(evaluation, ref)))
    return made


def _test_of(evaluation: Evaluation, ref: str) -> str:
    for o in evaluation.outcomes:
        if o.result_id == ref:
            return o.test
    raise KeyError(ref)


def investigation_view(inv: OOSInvestigationRecord, lot_number: str,
                       users: Mapping[int, str]) -> dict:
    return {"id": f"OOS-{inv.id}", "lot": lot_number, "test": inv.test,
            "original_result": inv.original_result, "retest_result": inv.retest_result,
            "phase": InvestigationPhase(inv.phase).value,
            "conclusion": InvestigationConclusion(inv.conclusion).value,
            "summary": inv.summary, "opened_by": users.get(inv.opened_by_id),
            "opened_at": inv.opened_at, "closed_by": users.get(inv.closed_by_id),
            "closed_at": inv.closed_at}


def list_investigation_views(session: Session, *, lot_number: str | None = None,
                             open_only: bool = False) -> list[dict]:
    lot = repo.get_by(session, Lot, number=lot_number) if lot_number else None
    invs = qrepo.list_investigations(session, lot_id=lot.id if lot else None,
                                     open_only=open_only)
    numbers = qrepo.lot_numbers(session, [i.lot_id for i in invs])
    users = qrepo.usernames(session, [i.opened_by_id for i in invs] +
                            [i.closed_by_id for i in invs])
    return [investigation_view(i, numbers.get(i.lot_id), users) for i in invs]


def describe_investigation(session: Session, inv: OOSInvestigationRecord) -> dict:
    """:func:`investigation_view` of one investigation, its lot number and user names read."""
    numbers = qrepo.lot_numbers(session, [inv.lot_id])
    users = qrepo.usernames(session, [inv.opened_by_id, inv.closed_by_id])
    return investigation_view(inv, numbers.get(inv.lot_id), users)


def _investigation_id(value: int | str) -> int:
    text = str(value).strip().upper().removeprefix("OOS-")
    try:
        return int(text)
    except ValueError:
        raise InvalidInput(f"investigation id {value!r}: write OOS-12 or 12") from None


def close_investigation(session: Session, user: User, investigation_id: int | str, *,
                        conclusion: InvestigationConclusion | str,
                        phase: InvestigationPhase | str, summary: str) -> OOSInvestigationRecord:
    """Close an OOS investigation (QA): phase I (lab error) or II (process), with a conclusion.

    ``lab_error`` invalidates the original only with a linked retest, which then
    counts in the evaluation; ``confirmed_oos`` and ``inconclusive`` leave the
    original standing. The original result is never changed.
    """
    require_permission(user, Permission.APPROVE, action="close OOS investigations")
    inv = qrepo.get_investigation(session, _investigation_id(investigation_id))
    try:
        conclusion = InvestigationConclusion(conclusion)
        phase = InvestigationPhase(phase)
    except ValueError as exc:
        raise InvalidInput(f"{exc}; conclusion: lab_error, confirmed_oos, inconclusive; "
                           "phase: phase_I, phase_II") from None
    if inv.conclusion != InvestigationConclusion.OPEN:
        raise RuleViolation(f"OOS-{inv.id} is already closed ({inv.conclusion.value})")
    if conclusion is InvestigationConclusion.OPEN:
        raise InvalidInput("closing needs a conclusion: lab_error, confirmed_oos or inconclusive")
    if not summary or not summary.strip():
        raise InvalidInput(f"closing OOS-{inv.id} needs a summary of the findings")
    if conclusion is InvestigationConclusion.LAB_ERROR and inv.retest_result is None:
        raise RuleViolation(f"OOS-{inv.id}: a lab error conclusion needs the retest; enter it "
                            f"with --retest-of {inv.original_result}")
    with acting_as(session, user), change_reason(
            session, f"OOS investigation closed: {conclusion.value}"):
        inv.conclusion, inv.phase, inv.summary = conclusion, phase, summary.strip()
        inv.closed_by_id, inv.closed_at = user.id, utcnow()
    return inv
