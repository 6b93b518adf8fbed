"""Quality services: a lot's release state and its evaluation against the specification
in force.

One state machine
-----------------
The pure :mod:`exotrace.quality` release machine (``results_pending ->
results_entered -> verified -> released | rejected | quarantined``) is *derived*
from the records, never stored twice:

* ``released`` / ``rejected`` / ``quarantined``: the lot's
  :class:`~exotrace.records.LotStatus`;
* otherwise ``verified`` when the latest :class:`LotVerification` covers the
  lot's current results (same results digest) and is newer than the lot's last
  quarantine; ``results_entered`` when the lot has any result;
  ``results_pending`` when it has none.

Every move is checked by the pure guards (:func:`~exotrace.quality.guard_verify`,
:func:`~exotrace.quality.guard_release`, :func:`~exotrace.quality.guard_disposition`)
*and* applied through the records layer's :func:`~exotrace.records.set_lot_status`,
so its transitions, the segregation-of-duties check and the consent check apply
too. Releasing therefore needs the lot in ``awaiting_release`` (records), which the
analyst sets with :func:`submit_for_release` once the results are in.
"""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy.orm import Session

from ..errors import RuleViolation
from ..quality import Evaluation, InvestigationConclusion, LotState, SpecStatus
from . import _repositories as repo
from . import _repositories_quality as qrepo
from ._auth import Permission
from ._enums import LotStatus
from ._models_auth import User
from ._models_lot import Lot
from ._models_quality import (
    DispositionAction,
    LotVerification,
    OOSInvestigationRecord,
    SpecificationRecord,
)
from ._quality_common import _evaluate, _lot_data, _LotData, _perms, _results_digest
from ._quality_investigations import _open_missing_investigations
from ._quality_specs import specification_in_force

__all__ = ["evaluate_lot", "evaluate_lot_row", "release_state"]


def _last_quarantine_at(session: Session, lot: Lot):
    d = qrepo.latest_disposition(session, lot.id, (DispositionAction.QUARANTINE,))
    return d.decided_at if d is not None else None


def _current_verification(session: Session, lot: Lot, *, any_spec: bool = False,
                          data: _LotData | None = None) -> LotVerification | None:
    """The latest verification if it covers the current results (and, unless ``any_spec``,
    was made against the specification version now in force). ``data``: the lot's results
    when the caller has them."""
    ver = qrepo.latest_verification(session, lot.id)
    if ver is None:
        return None
    digest, _ = _results_digest(session, lot, data)
    if ver.results_digest != digest:
        return None
    quarantined_at = _last_quarantine_at(session, lot)
    if quarantined_at is not None and quarantined_at >= ver.verified_at:
        return None
    if not any_spec:
        try:
            in_force = specification_in_force(session, lot)
        except RuleViolation:
            return None
        if in_force.id != ver.specification_id:
            return None
    return ver


def release_state(session: Session, lot: Lot) -> LotState:
    """The lot's state in the pure release machine, derived from the records (module doc)."""
    return _release_state(session, lot, None)


def _release_state(session: Session, lot: Lot, data: _LotData | None) -> LotState:
    # ``data``: the lot's results when the caller loaded them (no second read).
    status = LotStatus(lot.status)
    if status is LotStatus.RELEASED:
        return LotState.RELEASED
    if status is LotStatus.REJECTED:
        return LotState.REJECTED
    if status is LotStatus.QUARANTINED:
        return LotState.QUARANTINED
    if data is None:
        data = _lot_data(session, lot, None)
    if _current_verification(session, lot, data=data) is not None:
        return LotState.VERIFIED
    _, has_results = _results_digest(session, lot, data)
    return LotState.RESULTS_ENTERED if has_results else LotState.RESULTS_PENDING


def _evaluation_view(lot: Lot, state: LotState, record: SpecificationRecord,
                     evaluation: Evaluation, data: _LotData,
                     investigations: Iterable[OOSInvestigationRecord]) -> dict:
    inv_by_ref = {i.original_result: i for i in investigations}
    oos = set(evaluation.oos_result_ids)
    tests = []
    for o in evaluation.outcomes:
        inv = inv_by_ref.get(o.superseded_result_id or o.result_id or "")
        tests.append({
            "test": o.test, "method": o.method, "criterion": o.criterion,
            "outcome": o.outcome.value, "result": o.result_text or None,
            "result_id": o.result_id, "value": o.value, "unit": o.unit, "reason": o.reason,
            "oos": o.result_id in oos, "alternative_group": o.alternative_group,
            "superseded_result_id": o.superseded_result_id,
            "investigation": f"OOS-{inv.id}" if inv is not None else None})
    return {
        "lot": lot.number, "status": LotStatus(lot.status).value, "release_state": state.value,
        "specification": {"name": record.name, "version": record.version,
                          "status": SpecStatus(record.status).value},
        "conclusion": evaluation.conclusion.value, "tests": tests,
        "groups": {k: v.value for k, v in evaluation.groups.items()},
        "oos_result_ids": list(evaluation.oos_result_ids),
        "open_investigations": [f"OOS-{i.id}" for i in investigations
                                if i.conclusion == InvestigationConclusion.OPEN],
        "unused_result_ids": list(evaluation.unused_result_ids),
        "results_digest": data.digest,
    }


def evaluate_lot(session: Session, lot_number: str, *, user: User | None = None) -> dict:
    """Evaluate a lot against the specification version in force.

    With a ``user`` who may enter, review or approve results, every OOS result
    without an investigation gets one opened (phase I); without, the
    evaluation only reads.

    Returns
    -------
    dict
        ``lot, status, release_state, specification, conclusion, tests`` (per
        test: outcome pass/fail/missing/report_only, criterion, result, ``oos``,
        ``investigation``), ``oos_result_ids, open_investigations``.
    """
    return evaluate_lot_row(session, repo.get_by(session, Lot, number=lot_number), user=user)


def evaluate_lot_row(session: Session, lot: Lot, *, user: User | None = None) -> dict:
    """:func:`evaluate_lot` for a lot row the caller has already read."""
    record = specification_in_force(session, lot)
    evaluation, data, _ = _evaluate(session, lot, record)
    opened = []
    if user is not None and _perms(user) & {Permission.ENTER_RESULTS, Permission.REVIEW,
                                            Permission.APPROVE}:
        opened = _open_missing_investigations(session, user, lot, evaluation, data)
    investigations = (qrepo.list_investigations(session, lot_id=lot.id) if opened
                      else data.investigation_records)
    view = _evaluation_view(lot, _release_state(session, lot, data), record, evaluation, data,
                            investigations)
    view["opened_investigations"] = [f"OOS-{i.id}" for i in opened]
    return view
