"""Clinic services: what every clinic workflow shares (codes, dates, the stored protocol,
the subject's enrolment, the lot measurements used for doses).

The clinic services gather facts from the database, call the pure core
(:mod:`exotrace.clinic`), and write the result. They check the acting user's
authority, attribute every write to that user (so the audit trail records it) and
never commit: the command or request owns the transaction, so a refusal leaves
nothing written.
"""

from __future__ import annotations

import re
from datetime import date
from functools import lru_cache

from sqlalchemy.orm import Session

from .._text import check_identifier
from ..clinic import AdverseEvent, Arm, Protocol, protocol_from_yaml
from ..errors import InvalidInput, NotFound, RuleViolation
from . import _repositories as repo
from ._enums import Sex
from ._models_clinic import ClinicalAdverseEvent, ClinicalProtocol, Enrolment, StudyConsent, Subject

_CODE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,63}$")
#: Lot measurements (records attribute names) used for doses and the lot-to-outcome model.
_CONCENTRATION = "particle_concentration"   # particles/mL
_RATIO = "particle_protein_ratio"           # particles per ug protein
_PROTEIN = "protein_concentration"          # ug/mL
_SDTM_SEX = {Sex.FEMALE: "F", Sex.MALE: "M", Sex.OTHER: "UNDIFFERENTIATED", Sex.UNKNOWN: "U"}


def _code(value: str, what: str) -> str:
    return check_identifier(value, what, _CODE, "use 1-64 letters, digits and _ . - "
                                                "(starting with a letter or digit)")


def _reason(reason: str | None, what: str) -> str:
    if not reason or not reason.strip():
        raise InvalidInput(f"{what} needs a reason (--reason)")
    return reason.strip()


def _not_future(day: date, what: str) -> date:
    if not isinstance(day, date):
        raise InvalidInput(f"{what} must be a date, got {day!r}")
    if day > date.today():
        raise InvalidInput(f"{what} {day.isoformat()} is in the future")
    return day


@lru_cache(maxsize=64)
def _parse_stored(yaml_text: str, source: str) -> Protocol:
    return protocol_from_yaml(yaml_text, source=source)


def protocol_model(record: ClinicalProtocol) -> Protocol:
    """The validated :class:`~exotrace.clinic.Protocol` of a stored protocol version."""
    return _parse_stored(record.yaml_text, f"protocol {record.code} v{record.version} (database)")


def _subject(session: Session, code: str) -> Subject:
    found = repo.find_by(session, Subject, code=code)
    if found is None:
        raise NotFound(f"no subject with code {code!r}")
    return found


def _enrolment(session: Session, subject: Subject) -> tuple[Enrolment, ClinicalProtocol,
                                                            Protocol, Arm]:
    enrolment = repo.find_by(session, Enrolment, subject_id=subject.id)
    if enrolment is None:
        raise RuleViolation(f"subject {subject.code} is not enrolled in any protocol")
    record = session.get(ClinicalProtocol, enrolment.protocol_id)
    protocol = protocol_model(record)
    return enrolment, record, protocol, protocol.arm(enrolment.arm_code)


def _consent_valid_on(consent: StudyConsent | None, day: date) -> bool:
    return (consent is not None and consent.signed_on <= day
            and (consent.withdrawn_on is None or consent.withdrawn_on > day))


def _ae_model(row: ClinicalAdverseEvent) -> AdverseEvent:
    return AdverseEvent(term=row.term, grade=row.grade, onset_date=row.onset_on,
                        relatedness=row.relatedness,
                        seriousness=frozenset(c for c in row.seriousness.split(",") if c),
                        resolution_date=row.resolved_on, outcome=row.outcome,
                        expected=row.expected, ae_id=str(row.id),
                        awareness_date=row.awareness_on)
