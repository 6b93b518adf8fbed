"""Clinic records: protocols, subjects, study consent, enrolment, administrations,
adverse events, observations and dose decisions.

Every table is audited (hash chain) and GMP (a change needs a reason), like
the rest of the records layer. Values are stored in the protocol's units; the
units appear in column names where a column has one fixed unit.
"""

from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from ._base import Base, enum_column_type, utcnow
from ._enums import Sex

__all__ = [
    "Administration",
    "ClinicalAdverseEvent",
    "ClinicalProtocol",
    "DecisionStatus",
    "DecisionTrigger",
    "DoseDecision",
    "Enrolment",
    "Observation",
    "StudyConsent",
    "Subject",
]


class DecisionStatus(StrEnum):
    """Life of a dose proposal made by the rule engine."""

    PROPOSED = "proposed"        # a change waits for a clinician
    NO_CHANGE = "no_change"      # nothing fired: continue at the current level
    ACCEPTED = "accepted"
    OVERRIDDEN = "overridden"
    SUPERSEDED = "superseded"    # a newer proposal replaced it before anyone decided


class DecisionTrigger(StrEnum):
    ADVERSE_EVENT = "adverse_event"
    OBSERVATION = "observation"
    CONSENT_WITHDRAWAL = "consent_withdrawal"
    CLINICIAN = "clinician"      # an override made without a pending proposal


class ClinicalProtocol(Base):
    """A protocol version as imported: the YAML text and its SHA-256."""

    __tablename__ = "clinical_protocol"

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(sa.String(64))
    version: Mapped[str] = mapped_column(sa.String(32))
    title: Mapped[str] = mapped_column(sa.Text)
    yaml_text: Mapped[str] = mapped_column(sa.Text)
    sha256: Mapped[str] = mapped_column(sa.String(64))
    source_name: Mapped[str | None] = mapped_column(sa.String(400))
    imported_by_id: Mapped[int] = mapped_column(sa.ForeignKey("user_account.id"))
    imported_at: Mapped[datetime] = mapped_column(default=utcnow)

    __table_args__ = (sa.UniqueConstraint("code", "version"),)


class Subject(Base):
    """A pseudonymized study subject: the code links to identity only outside exotrace."""

    __tablename__ = "subject"

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(sa.String(64), unique=True)
    sex: Mapped[Sex] = mapped_column(enum_column_type(Sex, "subject_sex"))
    age_years: Mapped[int | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class StudyConsent(Base):
    """A subject's study consent (separate from donor consent); the latest one counts."""

    __tablename__ = "study_consent"

    id: Mapped[int] = mapped_column(primary_key=True)
    subject_id: Mapped[int] = mapped_column(sa.ForeignKey("subject.id"), index=True)
    protocol_id: Mapped[int] = mapped_column(sa.ForeignKey("clinical_protocol.id"), index=True)
    version: Mapped[str] = mapped_column(sa.String(32))
    signed_on: Mapped[date]
    withdrawn_on: Mapped[date | None]
    withdrawal_reason: Mapped[str | None] = mapped_column(sa.Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Enrolment(Base):
    """A subject in one arm of one protocol version from ``enrolled_on`` (day 0)."""

    __tablename__ = "enrolment"

    id: Mapped[int] = mapped_column(primary_key=True)
    subject_id: Mapped[int] = mapped_column(sa.ForeignKey("subject.id"), unique=True)
    protocol_id: Mapped[int] = mapped_column(sa.ForeignKey("clinical_protocol.id"), index=True)
    arm_code: Mapped[str] = mapped_column(sa.String(20))
    enrolled_on: Mapped[date]
    body_weight_kg: Mapped[float | None]
    site: Mapped[str | None] = mapped_column(sa.String(64))
    enrolled_by_id: Mapped[int] = mapped_column(sa.ForeignKey("user_account.id"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Administration(Base):
    """One vial given to one subject, with the dose actually given."""

    __tablename__ = "administration"

    id: Mapped[int] = mapped_column(primary_key=True)
    subject_id: Mapped[int] = mapped_column(sa.ForeignKey("subject.id"), index=True)
    enrolment_id: Mapped[int] = mapped_column(sa.ForeignKey("enrolment.id"), index=True)
    vial_id: Mapped[int] = mapped_column(sa.ForeignKey("vial.id"), unique=True)
    lot_id: Mapped[int] = mapped_column(sa.ForeignKey("lot.id"), index=True)
    slot: Mapped[str] = mapped_column(sa.String(64))
    administered_at: Mapped[datetime]
    site: Mapped[str | None] = mapped_column(sa.String(200))
    dose_level: Mapped[int | None]
    dose_amount: Mapped[float]
    dose_unit: Mapped[str] = mapped_column(sa.String(32))
    particles: Mapped[float]
    volume_ml: Mapped[float]
    protein_ug: Mapped[float | None]
    body_weight_kg: Mapped[float | None]
    lot_particles_per_ml: Mapped[float]
    lot_particles_per_ug: Mapped[float | None]
    window_flag: Mapped[str | None] = mapped_column(sa.Text)
    operator_id: Mapped[int] = mapped_column(sa.ForeignKey("user_account.id"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class ClinicalAdverseEvent(Base):
    """An adverse event: CTCAE v5 grade, ICH E2A seriousness, relatedness, reporting clock."""

    __tablename__ = "adverse_event"

    id: Mapped[int] = mapped_column(primary_key=True)
    subject_id: Mapped[int] = mapped_column(sa.ForeignKey("subject.id"), index=True)
    administration_id: Mapped[int | None] = mapped_column(
        sa.ForeignKey("administration.id"), index=True)
    term: Mapped[str] = mapped_column(sa.String(200))
    grade: Mapped[int]
    seriousness: Mapped[str] = mapped_column(sa.String(200))  # comma-separated criteria; '' = not serious
    relatedness: Mapped[str] = mapped_column(sa.String(32))
    onset_on: Mapped[date]
    resolved_on: Mapped[date | None]
    outcome: Mapped[str] = mapped_column(sa.String(64))
    expected: Mapped[bool] = mapped_column(default=False)
    awareness_on: Mapped[date | None]
    expedited: Mapped[bool] = mapped_column(default=False)
    report_due_on: Mapped[date | None]
    reporting_note: Mapped[str] = mapped_column(sa.Text)
    recorded_by_id: Mapped[int] = mapped_column(sa.ForeignKey("user_account.id"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    __table_args__ = (sa.CheckConstraint("grade >= 1 AND grade <= 5", name="ctcae_grade"),)


class Observation(Base):
    """An outcome value at a visit, in the protocol's unit, with its window check."""

    __tablename__ = "observation"

    id: Mapped[int] = mapped_column(primary_key=True)
    subject_id: Mapped[int] = mapped_column(sa.ForeignKey("subject.id"), index=True)
    enrolment_id: Mapped[int] = mapped_column(sa.ForeignKey("enrolment.id"), index=True)
    outcome_code: Mapped[str] = mapped_column(sa.String(64))
    visit_name: Mapped[str] = mapped_column(sa.String(64))
    value: Mapped[float]
    unit: Mapped[str] = mapped_column(sa.String(32))
    entered_value: Mapped[float]
    entered_unit: Mapped[str] = mapped_column(sa.String(32))
    observed_on: Mapped[date]
    days_outside_window: Mapped[int] = mapped_column(default=0)
    window_flag: Mapped[str | None] = mapped_column(sa.Text)
    baseline_value: Mapped[float | None]
    change_absolute: Mapped[float | None]
    change_percent: Mapped[float | None]
    entered_by_id: Mapped[int] = mapped_column(sa.ForeignKey("user_account.id"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    __table_args__ = (sa.UniqueConstraint("subject_id", "outcome_code", "visit_name"),)


class DoseDecision(Base):
    """A dose proposal of the rule engine and what the clinician decided."""

    __tablename__ = "dose_decision"

    id: Mapped[int] = mapped_column(primary_key=True)
    subject_id: Mapped[int] = mapped_column(sa.ForeignKey("subject.id"), index=True)
    enrolment_id: Mapped[int] = mapped_column(sa.ForeignKey("enrolment.id"), index=True)
    trigger: Mapped[DecisionTrigger] = mapped_column(
        enum_column_type(DecisionTrigger, "decision_trigger"))
    trigger_id: Mapped[int | None]
    evaluated_on: Mapped[date]
    current_level: Mapped[int]
    proposed_action: Mapped[str] = mapped_column(sa.String(16))
    proposed_level: Mapped[int | None]
    proposed_dose: Mapped[float | None]
    dose_unit: Mapped[str] = mapped_column(sa.String(32))
    rule_ids: Mapped[str] = mapped_column(sa.String(400))  # comma-separated, deciding rule first
    fired_json: Mapped[str] = mapped_column(sa.Text)
    reason: Mapped[str] = mapped_column(sa.Text)
    status: Mapped[DecisionStatus] = mapped_column(
        enum_column_type(DecisionStatus, "decision_status"))
    decided_level: Mapped[int | None]
    decided_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey("user_account.id"))
    decided_at: Mapped[datetime | None]
    decision_reason: Mapped[str | None] = mapped_column(sa.Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
