"""Clinic services: subjects, study consent (and its withdrawal) and enrolment in an arm."""

from __future__ import annotations

import math
from collections.abc import Mapping
from datetime import date

from sqlalchemy.orm import Session

from ..clinic import ObservationInput, check_entry_criteria, check_observation
from ..errors import Conflict, InvalidInput, RuleViolation
from . import _repositories as repo
from . import _repositories_clinic as crepo
from ._auth import Permission, require_permission
from ._clinic_common import _code, _enrolment, _not_future, _reason, _subject
from ._clinic_dosing import _propose
from ._clinic_events import _observation_row
from ._clinic_protocols import get_protocol
from ._context import acting_as, change_reason
from ._enums import Sex
from ._models_auth import User
from ._models_clinic import DecisionTrigger, DoseDecision, Enrolment, StudyConsent, Subject

__all__ = ["enrol_subject", "record_study_consent", "withdraw_study_consent"]


def enrol_subject(session: Session, user: User, code: str, *, protocol_code: str, arm_code: str,
                  enrolled_on: date, consent_version: str, consent_signed_on: date,
                  body_weight_kg: float | None = None, sex: Sex | str = Sex.UNKNOWN,
                  age_years: int | None = None, site: str | None = None,
                  baseline: Mapping[str, tuple[float, str | None]] | None = None) -> Enrolment:
    """Record a pseudonymized subject, their study consent and their enrolment in an arm.

    Parameters
    ----------
    code : str
        Pseudonym (never a name).
    enrolled_on : datetime.date
        Day 0 of the subject's schedule.
    consent_version, consent_signed_on
        The study consent form's version and signature day (on or before
        enrolment; separate from any donor consent).
    body_weight_kg : float, optional
        Needed for arms dosed in particles/kg.
    baseline : mapping, optional
        ``{outcome: (value, unit)}`` measured at enrolment; checked against
        the protocol's entry criteria (required when it has any) and stored
        as baseline observations.

    Raises
    ------
    RuleViolation
        Entry criteria not met, consent signed after enrolment.
    Conflict
        The subject code is taken.
    """
    require_permission(user, Permission.RECORD_CLINICAL, action="enrol subjects")
    _code(code, "subject code")
    record, protocol = get_protocol(session, protocol_code)
    arm = protocol.arm(arm_code)
    _not_future(enrolled_on, "enrolment date")
    _not_future(consent_signed_on, "consent date")
    if not consent_version or len(consent_version) > 32:
        raise InvalidInput("study consent version must be 1-32 characters (the form's version)")
    if consent_signed_on > enrolled_on:
        raise RuleViolation(f"subject {code}: study consent signed {consent_signed_on} after "
                            f"enrolment {enrolled_on}; consent comes first")
    try:
        sex = Sex(sex)
    except ValueError:
        raise InvalidInput(f"sex {sex!r} unknown; choose one of "
                           f"{', '.join(s.value for s in Sex)}") from None
    if age_years is not None and (isinstance(age_years, bool) or not 0 <= int(age_years) <= 130):
        raise InvalidInput(f"age {age_years!r} years is implausible")
    weight = None
    if body_weight_kg is not None:
        weight = float(body_weight_kg)
        if not math.isfinite(weight) or not 0 < weight <= 500:
            raise InvalidInput(f"body weight {body_weight_kg!r} kg is implausible (0-500 kg)")
    elif arm.dose_unit.value == "particles/kg":
        raise InvalidInput(f"arm {arm.code} doses in particles/kg; give the body weight (kg)")
    clash = repo.find_by_casefold(session, Subject, "code", code)
    if clash is not None:
        same = "" if clash.code == code else f" as {clash.code} (codes are compared ignoring case)"
        raise Conflict(f"subject {code} already exists{same}")
    checked = []
    for outcome, (value, unit) in (baseline or {}).items():
        unit = unit or protocol.outcome(outcome).unit  # default: the protocol's unit
        checked.append(check_observation(protocol, ObservationInput(
            outcome, protocol.schedule.baseline_visit.name, value, unit, enrolled_on),
            enrolment_date=enrolled_on))
    if protocol.eligibility.entry_criteria:
        check_entry_criteria(protocol, {c.outcome_code: c.value for c in checked})
    subject = Subject(code=code, sex=sex, age_years=age_years)
    with acting_as(session, user):
        session.add(subject)
        session.flush()
        session.add(StudyConsent(subject_id=subject.id, protocol_id=record.id,
                                 version=consent_version, signed_on=consent_signed_on))
        enrolment = Enrolment(subject_id=subject.id, protocol_id=record.id, arm_code=arm.code,
                              enrolled_on=enrolled_on, body_weight_kg=weight,
                              site=site, enrolled_by_id=user.id)
        session.add(enrolment)
        session.flush()
        for c in checked:
            session.add(_observation_row(subject, enrolment, c, None, user))
        session.flush()
    return enrolment


def record_study_consent(session: Session, user: User, subject_code: str, *, version: str,
                         signed_on: date) -> StudyConsent:
    """Record a new study consent (e.g. a re-consent on a new form); it becomes current."""
    require_permission(user, Permission.RECORD_CLINICAL, action="record study consent")
    subject = _subject(session, subject_code)
    enrolment, record, _, _ = _enrolment(session, subject)
    _not_future(signed_on, "consent date")
    if not version or len(version) > 32:
        raise InvalidInput("study consent version must be 1-32 characters")
    consent = StudyConsent(subject_id=subject.id, protocol_id=record.id, version=version,
                           signed_on=signed_on)
    with acting_as(session, user):
        session.add(consent)
        session.flush()
    return consent


def withdraw_study_consent(session: Session, user: User, subject_code: str, *,
                           withdrawn_on: date, reason: str) -> tuple[StudyConsent, DoseDecision]:
    """Withdraw the subject's study consent: every later administration is refused.

    The dose rules are evaluated at once (``stop_on_consent_withdrawal``).
    """
    require_permission(user, Permission.RECORD_CLINICAL, action="record consent withdrawal")
    subject = _subject(session, subject_code)
    enrolment, _, protocol, arm = _enrolment(session, subject)
    consent = crepo.latest_study_consent(session, subject.id)
    if consent is None:
        raise RuleViolation(f"subject {subject_code} has no study consent to withdraw")
    if consent.withdrawn_on is not None:
        raise Conflict(f"study consent {consent.id} of subject {subject_code} was already "
                       f"withdrawn on {consent.withdrawn_on}")
    why = _reason(reason, "a consent withdrawal")
    _not_future(withdrawn_on, "withdrawal date")
    if withdrawn_on < consent.signed_on:
        raise InvalidInput(f"withdrawal date {withdrawn_on} is before the consent date "
                           f"{consent.signed_on}")
    with acting_as(session, user), change_reason(session, f"study consent withdrawn: {why}"):
        consent.withdrawn_on = withdrawn_on
        consent.withdrawal_reason = why
    decision = _propose(session, user, subject, enrolment, protocol, arm,
                        DecisionTrigger.CONSENT_WITHDRAWAL, consent.id, withdrawn_on)
    return consent, decision
