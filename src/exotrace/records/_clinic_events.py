"""Clinic services: what happens to a subject after dosing: adverse events and visits
with outcome observations; each proposes the next dose.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import replace
from datetime import date, timedelta

from sqlalchemy.orm import Session

from .._text import check_text
from ..clinic import (
    AdverseEvent,
    ObservationInput,
    change_from_baseline,
    check_observation,
    expedited_reporting,
)
from ..errors import Conflict, InvalidInput
from . import _repositories_clinic as crepo
from ._auth import Permission, require_permission
from ._clinic_common import _enrolment, _not_future, _subject
from ._clinic_dosing import _propose
from ._context import acting_as
from ._models_auth import User
from ._models_clinic import (
    ClinicalAdverseEvent,
    DecisionTrigger,
    DoseDecision,
    Enrolment,
    Observation,
    Subject,
)

__all__ = [
    "AE_TERM_MAX_LENGTH", "add_adverse_event", "adverse_event_view", "observation_view",
    "record_observation", "record_visit",
]


#: Longest adverse event term stored (the column's width), characters.
AE_TERM_MAX_LENGTH = 200


def add_adverse_event(session: Session, user: User, subject_code: str, *, term: str, grade: int,
                      serious: bool, relatedness: str, onset_on: date,
                      criteria: Iterable[str] = (), outcome: str | None = None,
                      resolved_on: date | None = None, expected: bool = False,
                      awareness_on: date | None = None
                      ) -> tuple[ClinicalAdverseEvent, object, DoseDecision]:
    """Record an adverse event, classify it for expedited reporting, and propose the next dose.

    Parameters
    ----------
    grade : int
        CTCAE v5 grade 1-5.
    serious : bool
        ICH E2A seriousness; ``criteria`` names which (default "important
        medical event" when serious without criteria). Grade 5 is serious.
    relatedness : str
        not related, unlikely, possible, probable, definite.
    onset_on, resolved_on, awareness_on : datetime.date

    Returns
    -------
    (ClinicalAdverseEvent, ExpeditedReport, DoseDecision)
        The suspect administration is the last one on or before onset.
    """
    require_permission(user, Permission.RECORD_CLINICAL, action="record adverse events")
    subject = _subject(session, subject_code)
    enrolment, _, protocol, arm = _enrolment(session, subject)
    _not_future(onset_on, "onset date")
    if onset_on < enrolment.enrolled_on - timedelta(days=protocol.schedule.baseline_visit
                                                    .window_before_days):
        raise InvalidInput(f"onset {onset_on} is before the subject's study period")
    crit = {str(c).strip().lower() for c in criteria if str(c).strip()}
    if serious and not crit:
        crit = {"important medical event"}
    if not serious and crit and grade != 5:
        raise InvalidInput("seriousness criteria given for an event marked not serious")
    # the stored term is the reported term: refused when too long, never cut
    term = check_text(term, "adverse event term", max_length=AE_TERM_MAX_LENGTH, required=True)
    event = AdverseEvent(term=term.strip(), grade=grade,
                         onset_date=onset_on, relatedness=relatedness,
                         seriousness=frozenset(crit), resolution_date=resolved_on,
                         outcome=outcome or ("recovered/resolved" if resolved_on else "unknown"),
                         expected=expected, awareness_date=awareness_on)
    report = expedited_reporting(event)
    suspects = [a for a in crepo.subject_administrations(session, subject.id)
                if a.administered_at.date() <= onset_on]
    row = ClinicalAdverseEvent(
        subject_id=subject.id, administration_id=suspects[-1].id if suspects else None,
        term=event.term, grade=event.grade,
        seriousness=",".join(sorted(c.value for c in event.seriousness)),
        relatedness=event.relatedness.value, onset_on=onset_on, resolved_on=resolved_on,
        outcome=event.outcome.value, expected=expected, awareness_on=awareness_on,
        expedited=report.expedited, report_due_on=report.due_date,
        reporting_note=report.reason, recorded_by_id=user.id)
    with acting_as(session, user):
        session.add(row)
        session.flush()
    decision = _propose(session, user, subject, enrolment, protocol, arm,
                        DecisionTrigger.ADVERSE_EVENT, row.id, max(onset_on, enrolment.enrolled_on))
    return row, replace(report, ae_id=str(row.id)), decision


def adverse_event_view(row: ClinicalAdverseEvent) -> dict:
    return {"id": row.id, "term": row.term, "grade": row.grade,
            "serious": bool(row.seriousness), "seriousness": [c for c in row.seriousness.split(",")
                                                              if c],
            "relatedness": row.relatedness, "onset": row.onset_on, "resolved": row.resolved_on,
            "outcome": row.outcome, "expected": row.expected, "expedited": row.expedited,
            "report_due": row.report_due_on, "reporting": row.reporting_note,
            "administration_id": row.administration_id}


def _observation_row(subject: Subject, enrolment: Enrolment, c, baseline: float | None,
                     user: User, direction=None) -> Observation:
    ch = None
    if baseline is not None and direction is not None:
        ch = change_from_baseline(baseline, c.value, direction)
    return Observation(subject_id=subject.id, enrolment_id=enrolment.id,
                       outcome_code=c.outcome_code, visit_name=c.visit_name, value=c.value,
                       unit=c.unit, entered_value=c.entered_value, entered_unit=c.entered_unit,
                       observed_on=c.observed_on, days_outside_window=c.days_outside_window,
                       window_flag=c.flag, baseline_value=baseline,
                       change_absolute=ch.absolute if ch else None,
                       change_percent=ch.percent if ch else None, entered_by_id=user.id)


def record_observation(session: Session, user: User, subject_code: str, *, visit: str,
                       outcome: str, value: float, unit: str, observed_on: date | None = None
                       ) -> tuple[Observation, DoseDecision]:
    """Record an outcome value at a visit, then propose the next dose.

    The value is converted to the protocol's unit where that is meaningful
    and refused (UnitError) otherwise; a date outside the visit window is
    kept and flagged. Change from baseline is stored when a baseline exists.
    """
    rows, decision = record_visit(session, user, subject_code, visit=visit,
                                  values={outcome: (value, unit)}, observed_on=observed_on)
    return rows[0], decision


def record_visit(session: Session, user: User, subject_code: str, *, visit: str,
                 values: Mapping[str, tuple[float, str | None]],
                 observed_on: date | None = None) -> tuple[list[Observation], DoseDecision]:
    """Record several outcomes of one visit, then propose the next dose once.

    Every value is checked (unit, window) before anything is written, so one
    bad value leaves the whole visit unwritten. ``values`` maps outcome codes
    to ``(value, unit)``; a ``None`` unit means the protocol's unit.
    """
    require_permission(user, Permission.RECORD_CLINICAL, action="record observations")
    if not values:
        raise InvalidInput(f"visit {visit}: no outcome values given")
    subject = _subject(session, subject_code)
    enrolment, _, protocol, arm = _enrolment(session, subject)
    day = _not_future(observed_on or date.today(), "observation date")
    existing = {(o.outcome_code, o.visit_name): o for o in crepo.observations_of(session,
                                                                               subject.id)}
    baseline_name = protocol.schedule.baseline_visit.name
    rows = []
    for outcome, (value, unit) in values.items():
        unit = unit or protocol.outcome(outcome).unit
        checked = check_observation(protocol, ObservationInput(outcome, visit, value, unit, day),
                                    enrolment_date=enrolment.enrolled_on)
        if (checked.outcome_code, checked.visit_name) in existing:
            raise Conflict(f"subject {subject.code}: {checked.outcome_code} at "
                           f"{checked.visit_name} is already recorded")
        baseline = None
        if checked.visit_name != baseline_name:
            b = existing.get((checked.outcome_code, baseline_name))
            baseline = b.value if b is not None else None
        rows.append(_observation_row(subject, enrolment, checked, baseline, user,
                                     protocol.outcome(checked.outcome_code).direction))
        existing[(checked.outcome_code, checked.visit_name)] = rows[-1]
    with acting_as(session, user):
        session.add_all(rows)
        session.flush()
    decision = _propose(session, user, subject, enrolment, protocol, arm,
                        DecisionTrigger.OBSERVATION, rows[-1].id, day)
    return rows, decision


def observation_view(o: Observation) -> dict:
    return {"id": o.id, "visit": o.visit_name, "outcome": o.outcome_code, "value": o.value,
            "unit": o.unit, "entered": f"{o.entered_value:g} {o.entered_unit}",
            "observed_on": o.observed_on, "window_flag": o.window_flag,
            "baseline": o.baseline_value, "change": o.change_absolute,
            "change_percent": o.change_percent}
