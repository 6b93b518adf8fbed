"""Quality services: submission, second-person verification and the signed QA disposition
(release, rejection, quarantine) of a lot.
"""

from __future__ import annotations

from sqlalchemy.orm import Session

from ..errors import Conflict, PermissionDenied, RuleViolation
from ..quality import LotAction, LotState, guard_disposition, guard_release, guard_verify
from . import _repositories as repo
from . import _repositories_quality as qrepo
from ._auth import (
    Permission,
    authenticate,
    check_segregation,
    require_permission,
    require_signature,
    sign,
)
from ._context import acting_as
from ._enums import LotStatus, SignatureMeaning
from ._models_auth import User
from ._models_lot import Lot
from ._models_quality import DispositionAction, LotDisposition, LotVerification, SpecificationRecord
from ._quality_common import _evaluate, _lot_data
from ._quality_evaluation import _current_verification, release_state
from ._quality_investigations import _open_missing_investigations
from ._quality_specs import specification_in_force
from ._services_lot import check_releasable, set_lot_status
from ._settings import get_settings

__all__ = ["quarantine_lot", "reject_lot", "release_lot", "submit_for_release", "verify_lot"]


def submit_for_release(session: Session, user: User, lot_number: str, *,
                       reason: str | None = None) -> Lot:
    """Send a lot with results to ``awaiting_release`` (from in process or quarantine)."""
    lot = repo.get_by(session, Lot, number=lot_number)
    state = release_state(session, lot)
    if state is LotState.RESULTS_PENDING:
        raise RuleViolation(f"lot {lot.number} has no results; enter them before submitting")
    return set_lot_status(session, user, lot.number, LotStatus.AWAITING_RELEASE,
                          reason=reason or "results entered; submitted for verification and "
                                           "QA disposition")


def verify_lot(session: Session, user: User, password: str, lot_number: str) -> dict:
    """Second-person verification of a lot's results, signed with meaning *review*.

    Raises
    ------
    AuthError
        Wrong password.
    PermissionDenied
        No review permission; the user entered a result or produced the lot's data.
    RuleViolation
        Wrong state (already verified, released, ...), incomplete results.
    """
    require_permission(user, Permission.REVIEW, action="verify results")
    authenticate(session, user.username, password)
    lot = repo.get_by(session, Lot, number=lot_number)
    # Two reviewers verifying at once: the second waits here for the first's
    # commit, then reads its verification and is refused by the guard.
    repo.lock_lot_status(session, lot.id)
    record = specification_in_force(session, lot)
    evaluation, data, _ = _evaluate(session, lot, record)
    state = release_state(session, lot)
    guard_verify(state=state, verifier=user.username, result_enterers=data.enterers,
                 evaluation=evaluation)
    check_segregation(session, user, lot, action="verify")
    _open_missing_investigations(session, user, lot, evaluation, data)
    ver = LotVerification(lot_id=lot.id, specification_id=record.id, results_digest=data.digest,
                          conclusion=evaluation.conclusion.value, verified_by_id=user.id)
    with acting_as(session, user):
        session.add(ver)
        session.flush()
    signature = sign(session, user, password, ver, SignatureMeaning.REVIEW)
    return {"lot": lot.number, "release_state": LotState.VERIFIED.value,
            "verification": ver.id, "conclusion": ver.conclusion,
            "specification": {"name": record.name, "version": record.version},
            "signature": _signature_view(signature)}


def _signature_view(sig) -> dict:
    return {"id": sig.id, "printed_name": sig.printed_name, "meaning": sig.meaning.value,
            "signed_at": sig.signed_at}


def _dispose(session: Session, user: User, lot: Lot, action: DispositionAction, reason: str,
             password: str, record: SpecificationRecord | None,
             verification: LotVerification | None, conclusion: str | None) -> dict:
    status = {DispositionAction.RELEASE: LotStatus.RELEASED,
              DispositionAction.REJECT: LotStatus.REJECTED,
              DispositionAction.QUARANTINE: LotStatus.QUARANTINED}[action]
    # Two QA users deciding on one lot at once: the second waits for the first
    # one's commit here and must not decide on the state it read before it.
    committed = repo.lock_lot_status(session, lot.id)
    if committed is not lot.status:
        raise Conflict(f"lot {lot.number} became {committed.value} while this "
                       f"{action.value} was prepared (another user decided first); "
                       "nothing was written, look at the lot again")
    set_lot_status(session, user, lot.number, status, reason=reason,
                   release_workflow=status is LotStatus.RELEASED)
    disposition = LotDisposition(lot_id=lot.id, action=action,
                                 specification_id=record.id if record else None,
                                 verification_id=verification.id if verification else None,
                                 conclusion=conclusion, reason=reason, decided_by_id=user.id)
    with acting_as(session, user):
        session.add(disposition)
        session.flush()
    signature = sign(session, user, password, disposition, SignatureMeaning.APPROVAL)
    return {"lot": lot.number, "status": status.value, "disposition": disposition.id,
            "action": action.value, "reason": reason, "conclusion": conclusion,
            "specification": ({"name": record.name, "version": record.version}
                              if record else None),
            "signature": _signature_view(signature)}


def _check_records_status_for_release(lot: Lot) -> None:
    if lot.status is LotStatus.IN_PROCESS:
        raise RuleViolation(f"lot {lot.number} is in_process; the analyst submits it for "
                            f"release first (exotrace lot submit {lot.number})")
    if lot.status is LotStatus.QUARANTINED:
        raise RuleViolation(f"lot {lot.number} is quarantined; submit it again (exotrace lot "
                            "submit) and verify it before release")


def release_lot(session: Session, user: User, password: str, lot_number: str, *,
                reason: str | None = None) -> dict:
    """QA release, signed with meaning *approval*.

    Refused (RuleViolation) before verification, with an open OOS
    investigation, against a superseded specification, when the lot does not
    comply or is not awaiting release, has no expiry date or is expired, or
    when a lot it was pooled or split from is rejected, quarantined or under
    an open or confirmed OOS investigation (:func:`check_releasable`);
    refused (PermissionDenied) to whoever produced the lot's data, to the
    user who verified it (unless the setting ``allow_verifier_release`` is
    on) or lacks the approve permission; AuthError for a wrong password.
    """
    require_permission(user, Permission.APPROVE, action="release lots")
    authenticate(session, user.username, password)
    lot = repo.get_by(session, Lot, number=lot_number)
    check_releasable(session, lot)
    state = release_state(session, lot)
    verification = None
    if state in (LotState.VERIFIED, LotState.RESULTS_ENTERED):
        # A verification against a version superseded since counts here, so that the
        # guard names the superseded specification instead of a missing verification.
        verification = _current_verification(session, lot, any_spec=True)
    if verification is not None:
        state = LotState.VERIFIED
        # The verification counts only with its reviewer's valid (keyed) signature.
        require_signature(session, verification, SignatureMeaning.REVIEW,
                          signer_id=verification.verified_by_id)
        if verification.verified_by_id == user.id and not get_settings().allow_verifier_release:
            raise PermissionDenied(
                f"user {user.username} verified lot {lot.number} (verification "
                f"{verification.id}); the same person may not also release it (segregation "
                "of duties; EXOTRACE_ALLOW_VERIFIER_RELEASE=true permits it)")
    record = (session.get(SpecificationRecord, verification.specification_id)
              if verification is not None else specification_in_force(session, lot))
    evaluation, data, spec = _evaluate(session, lot, record)
    uninvestigated = [f"(none yet for {r})" for r in evaluation.oos_result_ids
                      if r not in {i.original_result_id for i in data.investigations}]
    guard_release(state=state, releaser=user.username, result_enterers=data.enterers,
                  evaluation=evaluation, specification=spec,
                  open_investigation_ids=uninvestigated)
    _check_records_status_for_release(lot)
    reason = reason or (f"complies with {record.name} version {record.version}; "
                        f"verified (verification {verification.id})")
    return _dispose(session, user, lot, DispositionAction.RELEASE, reason, password, record,
                    verification, evaluation.conclusion.value)


def _disposition(session: Session, user: User, password: str, lot_number: str,
                 action: DispositionAction, reason: str | None) -> dict:
    require_permission(user, Permission.APPROVE, action=f"{action.value} lots")
    authenticate(session, user.username, password)
    lot = repo.get_by(session, Lot, number=lot_number)
    state = release_state(session, lot)
    data = _lot_data(session, lot, None)
    lot_action = LotAction.REJECT if action is DispositionAction.REJECT else LotAction.QUARANTINE
    guard_disposition(state=state, action=lot_action, user=user.username, reason=reason,
                      result_enterers=data.enterers)
    if action is DispositionAction.REJECT:
        # Like a release, a rejection is an approval decision: not by a data producer.
        check_segregation(session, user, lot, action="reject")
    verification = qrepo.latest_verification(session, lot.id)
    record = session.get(SpecificationRecord, verification.specification_id) \
        if verification is not None else None
    return _dispose(session, user, lot, action, reason.strip(), password, record, verification,
                    verification.conclusion if verification is not None else None)


def reject_lot(session: Session, user: User, password: str, lot_number: str, *,
               reason: str | None) -> dict:
    """QA rejection (verified or quarantined lots), signed with meaning *approval*."""
    return _disposition(session, user, password, lot_number, DispositionAction.REJECT, reason)


def quarantine_lot(session: Session, user: User, password: str, lot_number: str, *,
                   reason: str | None) -> dict:
    """QA quarantine (lots with results), signed with meaning *approval*."""
    return _disposition(session, user, password, lot_number, DispositionAction.QUARANTINE,
                        reason)
