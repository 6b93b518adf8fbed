"""Clinic services: the dosing state of a subject and dose decisions.

The protocol's dose rules (:func:`~exotrace.clinic.evaluate_rules`) are
evaluated after every clinical event; a proposal that changes the dose waits
for a clinician, who accepts it or overrides it with a level and a reason.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date

from sqlalchemy.orm import Session

from ..clinic import (
    Arm,
    DoseAction,
    DoseComputation,
    Protocol,
    SubjectState,
    evaluate_rules,
    observations_by_visit,
)
from ..errors import Conflict, InvalidInput
from . import _repositories_clinic as crepo
from ._auth import Permission, require_permission
from ._base import utcnow
from ._clinic_common import (
    _CONCENTRATION,
    _PROTEIN,
    _RATIO,
    _ae_model,
    _enrolment,
    _reason,
    _subject,
)
from ._context import acting_as, change_reason
from ._models_auth import User
from ._models_clinic import DecisionStatus, DecisionTrigger, DoseDecision, Enrolment, Subject
from ._models_lot import Lot

__all__ = ["decide_dose", "decision_view", "lot_product_type"]


#: MSC sources (bone marrow, adipose, umbilical cord) give MSC-EV products.
_TISSUE_PRODUCT = {"bone_marrow": "msc-ev", "adipose": "msc-ev", "umbilical_cord": "msc-ev",
                   "other": "other-ev"}


def lot_product_type(session: Session, lot: Lot) -> str:
    """Product type of a lot from its cell sources: MSC tissues give ``msc-ev``.

    A lot pooled from sources of different types is ``mixed:<types>``, which
    no arm lists, so it is refused unless a protocol names it.
    """
    types = sorted({_TISSUE_PRODUCT.get(t, f"{t}-ev") for t in crepo.lot_tissues(session, lot.id)})
    if not types:
        return "unknown"
    return types[0] if len(types) == 1 else "mixed:" + "+".join(types)


def _lot_dosing_measurements(session: Session, lot: Lot) -> tuple[float | None, float | None]:
    """(particles/mL, particles per ug protein) of the lot, from its latest measurements."""
    m = crepo.latest_measurements(session, [lot.id], [_CONCENTRATION, _RATIO, _PROTEIN])
    conc = m.get((lot.id, _CONCENTRATION))
    ratio = m.get((lot.id, _RATIO))
    if ratio is None and conc is not None and m.get((lot.id, _PROTEIN)):
        ratio = conc / m[(lot.id, _PROTEIN)]  # particles/mL over ug/mL
    return conc, ratio


@dataclass(frozen=True)
class _DosingState:
    level: int                 # level in effect (decided), 1-based
    blocked: str | None        # why no administration may happen now
    applied_rule_ids: frozenset[str]
    in_effect: tuple[str, int | None]  # (action, level) of the last decision taken


def _dosing_state(session: Session, subject: Subject, arm: Arm) -> _DosingState:
    level, blocked, applied = arm.starting_level, None, set()
    in_effect: tuple[str, int | None] = ("continue", level)
    pending = []
    for d in crepo.decisions_of(session, subject.id):
        if d.status is DecisionStatus.PROPOSED:
            pending.append(d)
        elif d.status is DecisionStatus.ACCEPTED:
            in_effect = (d.proposed_action, d.proposed_level)
            if d.proposed_action == DoseAction.STOP.value:
                blocked = (f"dosing was stopped by dose decision {d.id} ({d.reason}); "
                           "a clinician's override is needed to resume")
            elif d.proposed_action == DoseAction.HOLD.value:
                blocked = (f"dosing is on hold by dose decision {d.id} ({d.reason}); record a "
                           "dose override with the level to resume")
                level = d.proposed_level or level
            else:
                blocked = None
                level = d.proposed_level or level
            if d.proposed_action == DoseAction.ESCALATE.value:
                applied.update(r for r in d.rule_ids.split(",") if r)
        elif d.status is DecisionStatus.OVERRIDDEN:
            in_effect = ("override", d.decided_level)
            blocked = None
            level = d.decided_level or level
            if d.proposed_action == DoseAction.ESCALATE.value:
                applied.update(r for r in d.rule_ids.split(",") if r)
    if pending:
        d = pending[-1]
        blocked = (f"dose proposal {d.id} ({d.proposed_action}: {d.reason}) awaits a clinician; "
                   "run exotrace dose accept or dose override first")
    return _DosingState(level, blocked, frozenset(applied), in_effect)


def _screening_dose(arm: Arm) -> DoseComputation:
    # Placeholder used only to ask the core for the non-dose refusals (consent, lot,
    # vial, product) before the real dose is computed, so those come first; every
    # "dose" refusal from this screening is discarded.
    return DoseComputation(arm.code, 1, arm.dose_levels[0], arm.dose_unit, 1.0, 1.0, None, None,
                           1.0, None, arm.maximum_dose, arm.dose_levels[0] / arm.maximum_dose)


def _propose(session: Session, user: User, subject: Subject, enrolment: Enrolment,
             protocol: Protocol, arm: Arm, trigger: DecisionTrigger, trigger_id: int | None,
             as_of: date, *, status: DecisionStatus | None = None) -> DoseDecision:
    """Evaluate the protocol's dose rules for the subject on ``as_of`` and record the proposal.

    The engine judges the cycle since the last administration, so its
    ``current_level`` is the level of that administration (or the level in
    effect before any). A proposal equal to what is already in effect, or a
    plain ``continue``, needs no decision (``no_change``); anything else
    waits for a clinician and supersedes older pending proposals.
    """
    state = _dosing_state(session, subject, arm)
    given = [a for a in crepo.subject_administrations(session, subject.id)
             if a.administered_at.date() <= as_of]
    current = state.level
    if given and given[-1].dose_level is not None:
        current = given[-1].dose_level
    consent = crepo.latest_study_consent(session, subject.id)
    withdrawn = consent is not None and consent.withdrawn_on is not None \
        and consent.withdrawn_on <= as_of
    events = tuple(_ae_model(r) for r in crepo.adverse_events_of(session, subject.id)
                   if r.onset_on <= as_of)
    obs = [o for o in crepo.observations_of(session, subject.id) if o.observed_on <= as_of]
    proposal = evaluate_rules(protocol, arm, SubjectState(
        current_level=current, as_of=as_of, adverse_events=events,
        observations=observations_by_visit(obs),
        consent="withdrawn" if withdrawn else "valid",
        last_administration_date=given[-1].administered_at.date() if given else None,
        applied_rule_ids=state.applied_rule_ids))
    key = (proposal.action.value, proposal.next_level)
    pending = crepo.pending_decisions(session, subject.id)
    same_as_pending = bool(pending) and key == (pending[-1].proposed_action,
                                                pending[-1].proposed_level)
    if status is None:
        # continue, what is already in effect, or what already waits: nothing new to decide
        status = (DecisionStatus.NO_CHANGE
                  if proposal.action is DoseAction.CONTINUE or key == state.in_effect
                  or same_as_pending else DecisionStatus.PROPOSED)
    fired = [{"rule": f.rule_id, "kind": f.kind.value, "action": f.action.value,
              "priority": f.priority, "reason": f.reason} for f in proposal.fired]
    decision = DoseDecision(
        subject_id=subject.id, enrolment_id=enrolment.id, trigger=trigger, trigger_id=trigger_id,
        evaluated_on=as_of, current_level=current, proposed_action=proposal.action.value,
        proposed_level=proposal.next_level, proposed_dose=proposal.next_dose,
        dose_unit=proposal.dose_unit, rule_ids=",".join(proposal.rule_ids),
        fired_json=json.dumps(fired, sort_keys=True), reason=proposal.reason,
        status=status)
    with acting_as(session, user):
        if status is not DecisionStatus.NO_CHANGE:
            for old in pending:
                with change_reason(session, "superseded by a newer dose proposal"):
                    old.status = DecisionStatus.SUPERSEDED
        session.add(decision)
        session.flush()
    return decision


def decision_view(d: DoseDecision, users: Mapping[int, str] | None = None) -> dict:
    return {"id": d.id, "trigger": d.trigger.value, "trigger_id": d.trigger_id,
            "evaluated_on": d.evaluated_on, "current_level": d.current_level,
            "action": d.proposed_action, "proposed_level": d.proposed_level,
            "proposed_dose": d.proposed_dose, "dose_unit": d.dose_unit,
            "rules": [r for r in d.rule_ids.split(",") if r], "fired": json.loads(d.fired_json),
            "reason": d.reason, "status": d.status.value, "decided_level": d.decided_level,
            "decided_by": (users or {}).get(d.decided_by_id, d.decided_by_id),
            "decided_at": d.decided_at, "decision_reason": d.decision_reason}


def decide_dose(session: Session, user: User, subject_code: str, *, accept: bool,
                level: int | None = None, reason: str | None = None,
                on: date | None = None) -> DoseDecision:
    """Accept the pending dose proposal, or override it with a level and a reason.

    ``accept`` needs a pending proposal. An override needs ``level`` and a
    reason; without a pending proposal the rules are evaluated first (on
    ``on``, default today) so the record shows what the engine said.
    """
    require_permission(user, Permission.RECORD_CLINICAL, action="decide doses")
    subject = _subject(session, subject_code)
    enrolment, _, protocol, arm = _enrolment(session, subject)
    pending = crepo.pending_decisions(session, subject.id)
    if accept:
        if level is not None:
            raise InvalidInput("accept takes the proposed level; use dose override --level N")
        if not pending:
            raise Conflict(f"subject {subject.code} has no dose proposal waiting for a decision")
        d = pending[-1]
        why = reason.strip() if reason and reason.strip() else "proposal accepted"
        with acting_as(session, user), change_reason(session, f"dose proposal accepted: {why}"):
            d.status = DecisionStatus.ACCEPTED
            d.decided_level = d.proposed_level
            d.decided_by_id = user.id
            d.decided_at = utcnow()
            d.decision_reason = why
        return d
    why = _reason(reason, "a dose override")
    if level is None:
        raise InvalidInput("an override needs the level to give (--level N)")
    arm.level(level)  # InvalidInput for a level the arm does not have
    if pending:
        d = pending[-1]
    else:
        d = _propose(session, user, subject, enrolment, protocol, arm, DecisionTrigger.CLINICIAN,
                     None, on or date.today(), status=DecisionStatus.PROPOSED)
    with acting_as(session, user), change_reason(session, f"dose proposal overridden: {why}"):
        d.status = DecisionStatus.OVERRIDDEN
        d.decided_level = level
        d.decided_by_id = user.id
        d.decided_at = utcnow()
        d.decision_reason = why
    return d
