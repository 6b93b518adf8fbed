"""Repositories of the clinic records: every SQL statement of the clinic lives here.

Functions take a session and return model instances or plain rows; they never
commit and hold no business rules. The recall query walks the same graph as
the records layer's forward trace (cell-bank lineage, lot pools and splits,
reagent use) and ends at the administrations, in one statement.
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.orm import Session

from ._base import UTCDateTime
from ._models_clinic import (
    Administration,
    ClinicalAdverseEvent,
    ClinicalProtocol,
    DecisionStatus,
    DoseDecision,
    Enrolment,
    Observation,
    StudyConsent,
    Subject,
)
from ._models_lot import Measurement
from ._trace import FORWARD_LOTS_CTE

__all__ = [
    "administrations_for_lots",
    "adverse_events_of",
    "all_enrolments",
    "decisions_of",
    "latest_measurements",
    "latest_protocol",
    "latest_study_consent",
    "lot_tissues",
    "observations_of",
    "pending_decisions",
    "protocol_versions",
    "recall_rows",
    "study_consents_of",
    "subject_administrations",
]


def protocol_versions(session: Session, code: str | None = None) -> list[ClinicalProtocol]:
    """Imported protocol versions (all, or those of ``code``), oldest first."""
    stmt = sa.select(ClinicalProtocol).order_by(ClinicalProtocol.code, ClinicalProtocol.id)
    if code is not None:
        stmt = stmt.where(ClinicalProtocol.code == code)
    return list(session.scalars(stmt))


def latest_protocol(session: Session, code: str) -> ClinicalProtocol | None:
    """The most recently imported version of protocol ``code``."""
    return session.scalars(sa.select(ClinicalProtocol).where(ClinicalProtocol.code == code)
                           .order_by(ClinicalProtocol.id.desc()).limit(1)).first()


def latest_study_consent(session: Session, subject_id: int) -> StudyConsent | None:
    """The subject's current study consent: the latest signed (by date, then id)."""
    return session.scalars(
        sa.select(StudyConsent).where(StudyConsent.subject_id == subject_id)
        .order_by(StudyConsent.signed_on.desc(), StudyConsent.id.desc()).limit(1)).first()


def latest_study_consents(session: Session) -> dict[int, StudyConsent]:
    """Every subject's current study consent (as :func:`latest_study_consent`), by subject id,
    in one query."""
    latest: dict[int, StudyConsent] = {}
    for consent in session.scalars(sa.select(StudyConsent).order_by(
            StudyConsent.subject_id, StudyConsent.signed_on, StudyConsent.id)):
        latest[consent.subject_id] = consent  # the last one of each subject wins
    return latest


def recorded_outcomes(session: Session) -> dict[int, dict[str, set[str]]]:
    """Outcome codes recorded per subject id and visit name, in one query."""
    found: dict[int, dict[str, set[str]]] = {}
    for subject_id, visit, outcome in session.execute(sa.select(
            Observation.subject_id, Observation.visit_name, Observation.outcome_code)):
        found.setdefault(subject_id, {}).setdefault(visit, set()).add(outcome)
    return found


def study_consents_of(session: Session, subject_id: int) -> list[StudyConsent]:
    return list(session.scalars(sa.select(StudyConsent).where(StudyConsent.subject_id == subject_id)
                                .order_by(StudyConsent.id)))


def all_enrolments(session: Session, protocol_id: int | None = None
                   ) -> list[tuple[Enrolment, Subject, ClinicalProtocol]]:
    stmt = (sa.select(Enrolment, Subject, ClinicalProtocol)
            .join(Subject, Subject.id == Enrolment.subject_id)
            .join(ClinicalProtocol, ClinicalProtocol.id == Enrolment.protocol_id)
            .order_by(Subject.code))
    if protocol_id is not None:
        stmt = stmt.where(Enrolment.protocol_id == protocol_id)
    return [tuple(r) for r in session.execute(stmt)]


def subject_administrations(session: Session, subject_id: int) -> list[Administration]:
    return list(session.scalars(
        sa.select(Administration).where(Administration.subject_id == subject_id)
        .order_by(Administration.administered_at, Administration.id)))


def adverse_events_of(session: Session, subject_id: int) -> list[ClinicalAdverseEvent]:
    return list(session.scalars(
        sa.select(ClinicalAdverseEvent).where(ClinicalAdverseEvent.subject_id == subject_id)
        .order_by(ClinicalAdverseEvent.onset_on, ClinicalAdverseEvent.id)))


def observations_of(session: Session, subject_id: int) -> list[Observation]:
    return list(session.scalars(
        sa.select(Observation).where(Observation.subject_id == subject_id)
        .order_by(Observation.observed_on, Observation.id)))


def decisions_of(session: Session, subject_id: int) -> list[DoseDecision]:
    return list(session.scalars(
        sa.select(DoseDecision).where(DoseDecision.subject_id == subject_id)
        .order_by(DoseDecision.id)))


def pending_decisions(session: Session, subject_id: int) -> list[DoseDecision]:
    return list(session.scalars(
        sa.select(DoseDecision).where(DoseDecision.subject_id == subject_id,
                                      DoseDecision.status == DecisionStatus.PROPOSED)
        .order_by(DoseDecision.id)))


def latest_measurements(session: Session, lot_ids: list[int], attributes: list[str]
                        ) -> dict[tuple[int, str], float]:
    """``{(lot_id, attribute): value}`` of the latest measurement (by time, then id)."""
    if not lot_ids:
        return {}
    stmt = (sa.select(Measurement.lot_id, Measurement.attribute, Measurement.value)
            .where(Measurement.lot_id.in_(lot_ids), Measurement.attribute.in_(attributes))
            .order_by(Measurement.measured_at, Measurement.id))
    out: dict[tuple[int, str], float] = {}
    for lot_id, attribute, value in session.execute(stmt):
        out[(lot_id, attribute)] = value  # later rows win
    return out


_TISSUE_SQL = sa.text("""
WITH RECURSIVE
anc(id) AS (
    SELECT :lot_id
    UNION
    SELECT ll.parent_lot_id FROM lot_link ll JOIN anc ON ll.child_lot_id = anc.id
),
banks(id) AS (
    SELECT c.cell_bank_id FROM lot l JOIN anc ON anc.id = l.id
        JOIN isolation_run i ON i.id = l.isolation_run_id
        JOIN collection c ON c.id = i.collection_id
    UNION
    SELECT cb.parent_id FROM cell_bank cb JOIN banks ON banks.id = cb.id
    WHERE cb.parent_id IS NOT NULL
)
SELECT DISTINCT cb.tissue FROM cell_bank cb JOIN banks ON banks.id = cb.id
""").bindparams(sa.bindparam("lot_id", type_=sa.Integer))


def lot_tissues(session: Session, lot_id: int) -> set[str]:
    """Source tissues of every cell bank behind a lot (through pools and splits)."""
    return {r[0] for r in session.connection().execute(_TISSUE_SQL, {"lot_id": lot_id})}


def administrations_for_lots(session: Session, lot_ids: list[int]) -> list[sa.Row]:
    """Per subject and lot: protocol, arm, administrations and last date (trace-forward extension).

    Aggregated in SQL, so a lot given to thousands of people returns one row per
    subject and lot.
    """
    if not lot_ids:
        return []
    from ._models_lot import Lot

    rows: list[sa.Row] = []
    for start in range(0, len(lot_ids), 1000):
        chunk = lot_ids[start:start + 1000]
        stmt = (sa.select(Subject.code, ClinicalProtocol.code.label("protocol"),
                          Enrolment.arm_code, Lot.number,
                          sa.func.count(Administration.id).label("n"),
                          sa.func.max(Administration.administered_at).label("last"))
                .join(Subject, Subject.id == Administration.subject_id)
                .join(Enrolment, Enrolment.id == Administration.enrolment_id)
                .join(ClinicalProtocol, ClinicalProtocol.id == Enrolment.protocol_id)
                .join(Lot, Lot.id == Administration.lot_id)
                .where(Administration.lot_id.in_(chunk))
                .group_by(Subject.code, ClinicalProtocol.code, Enrolment.arm_code, Lot.number))
        rows.extend(session.execute(stmt))
    return rows


_INT = sa.Integer

# One statement per recall question: the forward walk (cell-bank lineage,
# lot genealogy, reagent use) joined to the administrations of the lots reached.
_RECALL_SQL = sa.text(FORWARD_LOTS_CTE + """SELECT a.id AS administration_id, s.code AS subject, p.code AS protocol, e.arm_code AS arm,
       v.identifier AS vial, l.number AS lot, a.administered_at AS administered_at,
       a.dose_amount AS dose_amount, a.dose_unit AS dose_unit, a.particles AS particles,
       a.volume_ml AS volume_ml
FROM lots
    JOIN administration a ON a.lot_id = lots.id
    JOIN subject s ON s.id = a.subject_id
    JOIN enrolment e ON e.id = a.enrolment_id
    JOIN clinical_protocol p ON p.id = e.protocol_id
    JOIN vial v ON v.id = a.vial_id
    JOIN lot l ON l.id = a.lot_id
ORDER BY s.code, a.administered_at, a.id
""").bindparams(sa.bindparam("donor_id", type_=_INT), sa.bindparam("cell_bank_id", type_=_INT),
                sa.bindparam("lot_id", type_=_INT), sa.bindparam("reagent_id", type_=_INT)
                ).columns(administered_at=UTCDateTime(), dose_amount=sa.Float(),
                          particles=sa.Float(), volume_ml=sa.Float())


def recall_rows(session: Session, *, donor_id: int | None = None,
                cell_bank_id: int | None = None, lot_id: int | None = None,
                reagent_id: int | None = None) -> list[sa.Row]:
    """Every administration of material from one source, in one query."""
    return list(session.connection().execute(
        _RECALL_SQL, {"donor_id": donor_id, "cell_bank_id": cell_bank_id, "lot_id": lot_id,
                      "reagent_id": reagent_id}))
