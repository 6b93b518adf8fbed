"""Repositories of the quality records: every SQL statement of the release workflow.

Functions take a session and return model instances or plain values; they
never commit and hold no business rules (see the ``_quality_*`` service modules).
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.orm import Session

from ..errors import NotFound
from ..quality import InvestigationConclusion, SpecStatus
from ._models_auth import User
from ._models_lot import Lot, Measurement, Storage
from ._models_quality import (
    DispositionAction,
    LotDisposition,
    LotReferenceValue,
    LotSizeDistribution,
    LotSpecification,
    LotVerification,
    OOSInvestigationRecord,
    QualityResult,
    SpecificationRecord,
)

__all__ = [
    "effective_specification",
    "find_specification",
    "get_investigation",
    "get_specification",
    "latest_disposition",
    "latest_storage",
    "latest_verification",
    "list_investigations",
    "list_specifications",
    "lot_assignment",
    "lot_dispositions",
    "lot_quality_results",
    "lot_numbers",
    "lot_reference_values",
    "lots_by_numbers",
    "lots_in_manufacture_order",
    "measurements_of_lots",
    "quality_results_of_lots",
    "investigations_of_lots",
    "size_distributions_of_lots",
    "specification_names",
    "usernames",
]


def list_specifications(session: Session, *, name: str | None = None) -> list[SpecificationRecord]:
    stmt = sa.select(SpecificationRecord).order_by(SpecificationRecord.name,
                                                   SpecificationRecord.id)
    if name is not None:
        stmt = stmt.where(SpecificationRecord.name == name)
    return list(session.scalars(stmt))


def specification_names(session: Session) -> list[str]:
    return list(session.scalars(sa.select(SpecificationRecord.name).distinct()
                                .order_by(SpecificationRecord.name)))


def find_specification(session: Session, name: str, version: str) -> SpecificationRecord | None:
    return session.scalars(sa.select(SpecificationRecord).where(
        SpecificationRecord.name == name, SpecificationRecord.version == version)).first()


def get_specification(session: Session, name: str, version: str | None = None
                      ) -> SpecificationRecord:
    """A version of ``name`` (default: the effective one, else the latest imported)."""
    if version is not None:
        found = find_specification(session, name, version)
        if found is None:
            raise NotFound(f"no specification {name!r} version {version!r}")
        return found
    found = effective_specification(session, name)
    if found is None:
        versions = list_specifications(session, name=name)
        if not versions:
            raise NotFound(f"no specification {name!r}")
        found = versions[-1]
    return found


def effective_specification(session: Session, name: str) -> SpecificationRecord | None:
    return session.scalars(sa.select(SpecificationRecord).where(
        SpecificationRecord.name == name, SpecificationRecord.status == SpecStatus.EFFECTIVE)
        .order_by(SpecificationRecord.id.desc()).limit(1)).first()


def lot_assignment(session: Session, lot_id: int) -> LotSpecification | None:
    return session.scalars(sa.select(LotSpecification)
                           .where(LotSpecification.lot_id == lot_id)).first()


def lot_quality_results(session: Session, lot_id: int) -> list[QualityResult]:
    return list(session.scalars(sa.select(QualityResult).where(QualityResult.lot_id == lot_id)
                                .order_by(QualityResult.id)))


def lot_reference_values(session: Session, lot_id: int) -> list[LotReferenceValue]:
    return list(session.scalars(sa.select(LotReferenceValue)
                                .where(LotReferenceValue.lot_id == lot_id)
                                .order_by(LotReferenceValue.id)))


def list_investigations(session: Session, *, lot_id: int | None = None,
                        open_only: bool = False) -> list[OOSInvestigationRecord]:
    stmt = sa.select(OOSInvestigationRecord).order_by(OOSInvestigationRecord.id)
    if lot_id is not None:
        stmt = stmt.where(OOSInvestigationRecord.lot_id == lot_id)
    if open_only:
        stmt = stmt.where(OOSInvestigationRecord.conclusion == InvestigationConclusion.OPEN)
    return list(session.scalars(stmt))


def get_investigation(session: Session, investigation_id: int) -> OOSInvestigationRecord:
    found = session.get(OOSInvestigationRecord, investigation_id)
    if found is None:
        raise NotFound(f"no OOS investigation with id {investigation_id}")
    return found


def latest_verification(session: Session, lot_id: int) -> LotVerification | None:
    return session.scalars(sa.select(LotVerification).where(LotVerification.lot_id == lot_id)
                           .order_by(LotVerification.id.desc()).limit(1)).first()


def lot_dispositions(session: Session, lot_id: int) -> list[LotDisposition]:
    return list(session.scalars(sa.select(LotDisposition).where(LotDisposition.lot_id == lot_id)
                                .order_by(LotDisposition.id)))


def latest_disposition(session: Session, lot_id: int,
                       actions: tuple[DispositionAction, ...] | None = None
                       ) -> LotDisposition | None:
    stmt = sa.select(LotDisposition).where(LotDisposition.lot_id == lot_id)
    if actions:
        stmt = stmt.where(LotDisposition.action.in_(actions))
    return session.scalars(stmt.order_by(LotDisposition.id.desc()).limit(1)).first()


def latest_storage(session: Session, lot_id: int) -> Storage | None:
    return session.scalars(sa.select(Storage).where(Storage.lot_id == lot_id)
                           .order_by(Storage.id.desc()).limit(1)).first()


def usernames(session: Session, ids) -> dict[int, str]:
    ids = sorted({i for i in ids if i is not None})
    if not ids:
        return {}
    return dict(session.execute(sa.select(User.id, User.username).where(User.id.in_(ids))).all())


def lot_numbers(session: Session, ids) -> dict[int, str]:
    ids = sorted(set(ids))
    if not ids:
        return {}
    return dict(session.execute(sa.select(Lot.id, Lot.number).where(Lot.id.in_(ids))).all())


def lots_in_manufacture_order(session: Session) -> list[Lot]:
    """All lots by manufacture date, then creation order (the trending order)."""
    return list(session.scalars(sa.select(Lot).order_by(Lot.manufactured_on, Lot.id)))


def lots_by_numbers(session: Session, numbers: list[str]) -> list[Lot]:
    """Lots in the order of ``numbers``; NotFound names the first unknown number."""
    found = {x.number: x for x in session.scalars(sa.select(Lot).where(Lot.number.in_(numbers)))}
    for n in numbers:
        if n not in found:
            raise NotFound(f"no lot with number {n!r}")
    return [found[n] for n in numbers]


def measurements_of_lots(session: Session, lot_ids: list[int]) -> list[Measurement]:
    if not lot_ids:
        return []
    return list(session.scalars(sa.select(Measurement).where(Measurement.lot_id.in_(lot_ids))
                                .order_by(Measurement.id)))


def quality_results_of_lots(session: Session, lot_ids: list[int]) -> list[QualityResult]:
    if not lot_ids:
        return []
    return list(session.scalars(sa.select(QualityResult).where(QualityResult.lot_id.in_(lot_ids))
                                .order_by(QualityResult.id)))


def investigations_of_lots(session: Session, lot_ids: list[int]) -> list[OOSInvestigationRecord]:
    if not lot_ids:
        return []
    return list(session.scalars(sa.select(OOSInvestigationRecord)
                                .where(OOSInvestigationRecord.lot_id.in_(lot_ids))
                                .order_by(OOSInvestigationRecord.id)))


def size_distributions_of_lots(session: Session, lot_ids: list[int]) -> list[LotSizeDistribution]:
    if not lot_ids:
        return []
    return list(session.scalars(sa.select(LotSizeDistribution)
                                .where(LotSizeDistribution.lot_id.in_(lot_ids))
                                .order_by(LotSizeDistribution.id)))
