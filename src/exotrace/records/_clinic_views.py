"""Clinic services: subject views and the follow-up visits due."""

from __future__ import annotations

from datetime import date

from sqlalchemy.orm import Session

from ..clinic import due_visits
from . import _repositories as repo
from . import _repositories_clinic as crepo
from ._clinic_administration import administration_view
from ._clinic_common import _consent_valid_on, protocol_model
from ._clinic_dosing import _dosing_state, decision_view
from ._clinic_events import adverse_event_view, observation_view
from ._clinic_protocols import get_protocol
from ._models_auth import User
from ._models_clinic import ClinicalProtocol, Enrolment, Subject

__all__ = ["followup_due", "list_subjects", "subject_view"]


def subject_view(session: Session, subject: Subject | str, *, detail: bool = False) -> dict:
    """JSON-ready view of a subject (a row or a subject code), with enrolment, consent and
    dosing state."""
    if isinstance(subject, str):
        subject = repo.get_by(session, Subject, code=subject)
    view: dict = {"code": subject.code, "sex": subject.sex.value, "age_years": subject.age_years}
    enrolment = repo.find_by(session, Enrolment, subject_id=subject.id)
    consent = crepo.latest_study_consent(session, subject.id)
    view["consent"] = None if consent is None else {
        "id": consent.id, "version": consent.version, "signed_on": consent.signed_on,
        "withdrawn_on": consent.withdrawn_on, "withdrawal_reason": consent.withdrawal_reason,
        "withdrawn": consent.withdrawn_on is not None}
    if enrolment is None:
        view["protocol"] = view["arm"] = None
        return view
    record = session.get(ClinicalProtocol, enrolment.protocol_id)
    protocol = protocol_model(record)
    arm = protocol.arm(enrolment.arm_code)
    state = _dosing_state(session, subject, arm)
    admins = crepo.subject_administrations(session, subject.id)
    view.update(protocol=record.code, protocol_version=record.version, arm=arm.code,
                enrolled_on=enrolment.enrolled_on, body_weight_kg=enrolment.body_weight_kg,
                site=enrolment.site, administrations=len(admins),
                current_level=state.level,
                current_dose=arm.dose_levels[state.level - 1], dose_unit=arm.dose_unit.value,
                dosing_blocked=state.blocked)
    if detail:
        users = {u.id: u.username for u in repo.list_all(session, User)}
        view["administrations"] = [administration_view(session, a) for a in admins]
        view["observations"] = [observation_view(o) for o in crepo.observations_of(session, subject.id)]
        view["adverse_events"] = [adverse_event_view(a) for a in crepo.adverse_events_of(session, subject.id)]
        view["dose_decisions"] = [decision_view(d, users) for d in crepo.decisions_of(session, subject.id)]
    return view


def list_subjects(session: Session, *, protocol_code: str | None = None) -> list[dict]:
    """Every subject (optionally of one protocol) with enrolment and dosing state."""
    protocol_id = None
    if protocol_code is not None:
        protocol_id = get_protocol(session, protocol_code)[0].id
    return [subject_view(session, s) for _, s, _ in crepo.all_enrolments(session, protocol_id)]


def followup_due(session: Session, *, as_of: date | None = None, horizon_days: int = 14
                 ) -> list[dict]:
    """Visits overdue, due (window open) or upcoming within ``horizon_days``, for every subject.

    Subjects whose study consent is withdrawn are left out (no further data
    may be collected from them).
    """
    day = as_of or date.today()
    rows = []
    # Three queries whatever the number of subjects (consents and outcomes read in bulk,
    # each protocol version parsed once).
    consents = crepo.latest_study_consents(session)
    recorded = crepo.recorded_outcomes(session)
    protocols: dict[int, object] = {}
    for enrolment, subject, record in crepo.all_enrolments(session):
        consent = consents.get(subject.id)
        if not _consent_valid_on(consent, day) and consent is not None \
                and consent.withdrawn_on is not None:
            continue
        if record.id not in protocols:
            protocols[record.id] = protocol_model(record)
        protocol = protocols[record.id]
        outcomes_needed = {v.name: set(v.outcomes) for v in protocol.schedule.visits}
        done_outcomes = recorded.get(subject.id, {})
        # a visit counts as done when any of its outcomes was recorded
        done = [v for v in outcomes_needed if done_outcomes.get(v)]
        for v in due_visits(protocol, enrolment.enrolled_on, done, as_of=day,
                            horizon_days=horizon_days):
            rows.append({"subject": subject.code, "protocol": record.code,
                         "arm": enrolment.arm_code, "visit": v.name, "status": v.status,
                         "target": v.target_date, "window_from": v.earliest_date,
                         "window_to": v.latest_date, "days_overdue": v.days_overdue})
    order = {"overdue": 0, "due": 1, "upcoming": 2}
    rows.sort(key=lambda r: (order[r["status"]], r["target"], r["subject"]))
    return rows
