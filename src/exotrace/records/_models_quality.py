"""Quality records: specifications, release results, OOS investigations, verification, disposition.

Every table is audited by the records layer's automatic hash chain (``Base``
defaults); updates need a reason (GMP data). Result references between tables
are text ``M<id>`` (a :class:`~exotrace.records.Measurement`) or ``R<id>`` (a
:class:`QualityResult`), the ids the pure evaluation in :mod:`exotrace.quality`
works with.
"""

from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from ..quality import InvestigationConclusion, InvestigationPhase, SpecStatus
from ._base import Base, enum_column_type, utcnow

__all__ = [
    "DispositionAction",
    "LotDisposition",
    "LotReferenceValue",
    "LotSizeDistribution",
    "LotSpecification",
    "LotVerification",
    "OOSInvestigationRecord",
    "QualityResult",
    "SpecificationRecord",
]


class DispositionAction(StrEnum):
    """QA decisions on a lot (each signed with meaning *approval*)."""

    RELEASE = "release"
    REJECT = "reject"
    QUARANTINE = "quarantine"


class SpecificationRecord(Base):
    """One version of a specification, stored as its YAML text and parsed tests.

    ``(name, version)`` is unique. Importing a new effective version of a name
    marks the previous effective version ``superseded``.
    """

    __tablename__ = "specification"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(sa.String(200))
    version: Mapped[str] = mapped_column(sa.String(32))
    product_type: Mapped[str] = mapped_column(sa.String(200))
    status: Mapped[SpecStatus] = mapped_column(enum_column_type(SpecStatus, "spec_status"))
    effective_date: Mapped[date]
    yaml_text: Mapped[str] = mapped_column(sa.Text)
    tests_json: Mapped[str] = mapped_column(sa.Text)
    sha256: Mapped[str] = mapped_column(sa.String(64))
    imported_by_id: Mapped[int] = mapped_column(sa.ForeignKey("user_account.id"))
    imported_at: Mapped[datetime] = mapped_column(default=utcnow)

    __table_args__ = (sa.UniqueConstraint("name", "version"),)


class LotSpecification(Base):
    """Which specification (by name) a lot is judged against; the version in force is used."""

    __tablename__ = "lot_specification"

    id: Mapped[int] = mapped_column(primary_key=True)
    lot_id: Mapped[int] = mapped_column(sa.ForeignKey("lot.id"), unique=True)
    specification_name: Mapped[str] = mapped_column(sa.String(200))
    assigned_by_id: Mapped[int] = mapped_column(sa.ForeignKey("user_account.id"))
    assigned_at: Mapped[datetime] = mapped_column(default=utcnow)


class LotReferenceValue(Base):
    """A lot's reference value for ``relative`` criteria (e.g. the label claim)."""

    __tablename__ = "lot_reference_value"

    id: Mapped[int] = mapped_column(primary_key=True)
    lot_id: Mapped[int] = mapped_column(sa.ForeignKey("lot.id"), index=True)
    name: Mapped[str] = mapped_column(sa.String(64))
    value: Mapped[float]
    unit: Mapped[str] = mapped_column(sa.String(32))
    entered_by_id: Mapped[int] = mapped_column(sa.ForeignKey("user_account.id"))
    entered_at: Mapped[datetime] = mapped_column(default=utcnow)

    __table_args__ = (sa.UniqueConstraint("lot_id", "name"),)


class QualityResult(Base):
    """A release-test result entered for a lot (numeric with unit, or a word).

    Never updated: a retest is a new row whose ``retest_of`` names the
    original (``M<id>`` or ``R<id>``).
    """

    __tablename__ = "quality_result"

    id: Mapped[int] = mapped_column(primary_key=True)
    lot_id: Mapped[int] = mapped_column(sa.ForeignKey("lot.id"), index=True)
    test: Mapped[str] = mapped_column(sa.String(64))
    value: Mapped[float | None]
    unit: Mapped[str | None] = mapped_column(sa.String(32))
    qualitative: Mapped[str | None] = mapped_column(sa.String(64))
    method: Mapped[str | None] = mapped_column(sa.String(200))
    retest_of: Mapped[str | None] = mapped_column(sa.String(16))
    entered_by_id: Mapped[int] = mapped_column(sa.ForeignKey("user_account.id"))
    entered_at: Mapped[datetime] = mapped_column(default=utcnow)


class OOSInvestigationRecord(Base):
    """An out-of-specification investigation of one original result (never overwritten)."""

    __tablename__ = "oos_investigation"

    id: Mapped[int] = mapped_column(primary_key=True)
    lot_id: Mapped[int] = mapped_column(sa.ForeignKey("lot.id"), index=True)
    original_result: Mapped[str] = mapped_column(sa.String(16))
    test: Mapped[str] = mapped_column(sa.String(64))
    phase: Mapped[InvestigationPhase] = mapped_column(
        enum_column_type(InvestigationPhase, "oos_phase"))
    conclusion: Mapped[InvestigationConclusion] = mapped_column(
        enum_column_type(InvestigationConclusion, "oos_conclusion"))
    retest_result: Mapped[str | None] = mapped_column(sa.String(16))
    summary: Mapped[str | None] = mapped_column(sa.Text)
    opened_by_id: Mapped[int] = mapped_column(sa.ForeignKey("user_account.id"))
    opened_at: Mapped[datetime] = mapped_column(default=utcnow)
    closed_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey("user_account.id"))
    closed_at: Mapped[datetime | None]

    __table_args__ = (sa.UniqueConstraint("lot_id", "original_result"),)


class LotVerification(Base):
    """Second-person verification of a lot's results (signed with meaning *review*).

    ``results_digest`` is the SHA-256 of the results it covered: a later
    result makes the verification stale (the lot must be verified again).
    """

    __tablename__ = "lot_verification"

    id: Mapped[int] = mapped_column(primary_key=True)
    lot_id: Mapped[int] = mapped_column(sa.ForeignKey("lot.id"), index=True)
    specification_id: Mapped[int] = mapped_column(sa.ForeignKey("specification.id"))
    results_digest: Mapped[str] = mapped_column(sa.String(64))
    conclusion: Mapped[str] = mapped_column(sa.String(32))
    verified_by_id: Mapped[int] = mapped_column(sa.ForeignKey("user_account.id"))
    verified_at: Mapped[datetime] = mapped_column(default=utcnow)


class LotDisposition(Base):
    """A QA decision (release, reject, quarantine), signed with meaning *approval*."""

    __tablename__ = "lot_disposition"

    id: Mapped[int] = mapped_column(primary_key=True)
    lot_id: Mapped[int] = mapped_column(sa.ForeignKey("lot.id"), index=True)
    action: Mapped[DispositionAction] = mapped_column(
        enum_column_type(DispositionAction, "disposition_action"))
    specification_id: Mapped[int | None] = mapped_column(sa.ForeignKey("specification.id"))
    verification_id: Mapped[int | None] = mapped_column(sa.ForeignKey("lot_verification.id"))
    conclusion: Mapped[str | None] = mapped_column(sa.String(32))
    reason: Mapped[str] = mapped_column(sa.Text)
    decided_by_id: Mapped[int] = mapped_column(sa.ForeignKey("user_account.id"))
    decided_at: Mapped[datetime] = mapped_column(default=utcnow)


class LotSizeDistribution(Base):
    """A lot's number-weighted particle size distribution (bins in nm, weights any scale)."""

    __tablename__ = "lot_size_distribution"

    id: Mapped[int] = mapped_column(primary_key=True)
    lot_id: Mapped[int] = mapped_column(sa.ForeignKey("lot.id"), index=True)
    diameters_nm_json: Mapped[str] = mapped_column(sa.Text)
    weights_json: Mapped[str] = mapped_column(sa.Text)
    source: Mapped[str] = mapped_column(sa.String(400))
    entered_by_id: Mapped[int] = mapped_column(sa.ForeignKey("user_account.id"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
