"""Repositories: every SQL statement of the records layer lives here (traces in ``_trace``).

Functions take a session and return model instances or plain values; they
never commit and hold no business rules. Other packages copy the pattern:
``get_<thing>(session, key)`` raises NotFound, ``find_<thing>`` returns None.
"""

from __future__ import annotations

from typing import TypeVar

import sqlalchemy as sa
from sqlalchemy.orm import Session

from ..errors import NotFound
from ._base import Base
from ._enums import LotStatus
from ._models_audit import AuditEntry
from ._models_auth import Signature, User
from ._models_lot import Lot, LotLink, Measurement, ResultFile, Vial
from ._models_source import Consent, Donor, IsolationRun

__all__ = [
    "audit_actor_ids",
    "audit_entries",
    "count_users",
    "count_vials",
    "existing_vial_identifiers",
    "lot_result_files",
    "donor_by_code",
    "find_by",
    "find_by_casefold",
    "find_result_file",
    "get_by",
    "get_by_id",
    "isolation_operator_ids",
    "latest_consent",
    "list_all",
    "list_lots",
    "list_vials",
    "lot_ancestors",
    "lock_lot_status",
    "lot_children",
    "lot_measurements",
    "lot_parents",
    "signatures_for",
]

M = TypeVar("M", bound=Base)


def find_by(session: Session, model: type[M], **criteria) -> M | None:
    """The one row of ``model`` matching ``criteria`` (column=value), or None."""
    return session.scalars(sa.select(model).filter_by(**criteria).limit(1)).first()


def find_by_casefold(session: Session, model: type[M], column: str, value: str) -> M | None:
    """The row of ``model`` whose ``column`` equals ``value`` ignoring case, or None."""
    col = getattr(model, column)
    return session.scalars(sa.select(model).where(sa.func.lower(col) == value.lower())
                           .limit(1)).first()


def get_by(session: Session, model: type[M], **criteria) -> M:
    """Like :func:`find_by`, raising NotFound that names the table and key."""
    found = find_by(session, model, **criteria)
    if found is None:
        key = ", ".join(f"{k} {v!r}" for k, v in criteria.items())
        raise NotFound(f"no {model.__tablename__.replace('_', ' ')} with {key}")
    return found


def get_by_id(session: Session, model: type[M], id_: int) -> M:
    found = session.get(model, id_)
    if found is None:
        raise NotFound(f"no {model.__tablename__.replace('_', ' ')} with id {id_}")
    return found


def list_all(session: Session, model: type[M], *, order_by=None) -> list[M]:
    order = order_by if order_by is not None else sa.inspect(model).primary_key[0]
    return list(session.scalars(sa.select(model).order_by(order)))


def count_users(session: Session) -> int:
    return session.scalar(sa.select(sa.func.count()).select_from(User)) or 0


def latest_consent(session: Session, donor_id: int) -> Consent | None:
    """The donor's current consent: the latest recorded (by date, then id)."""
    return session.scalars(
        sa.select(Consent).where(Consent.donor_id == donor_id)
        .order_by(Consent.consented_on.desc(), Consent.id.desc()).limit(1)
    ).first()


def list_lots(session: Session, *, status: LotStatus | None = None) -> list[Lot]:
    stmt = sa.select(Lot).order_by(Lot.number)
    if status is not None:
        stmt = stmt.where(Lot.status == status)
    return list(session.scalars(stmt))


def lock_lot_status(session: Session, lot_id: int) -> LotStatus:
    """Lock the lot's row to the end of the transaction and return its committed status.

    ``SELECT ... FOR UPDATE`` on PostgreSQL: a second transaction deciding on
    the same lot waits here, then reads the status the first one committed.
    SQLite ignores the clause; its ``BEGIN IMMEDIATE`` already serializes writers.
    """
    return session.execute(sa.select(Lot.status).where(Lot.id == lot_id)
                           .with_for_update()).scalar_one()


def list_vials(session: Session, *, lot_id: int | None = None, limit: int | None = None) -> list[Vial]:
    stmt = sa.select(Vial).order_by(Vial.id)
    if lot_id is not None:
        stmt = stmt.where(Vial.lot_id == lot_id)
    if limit is not None:
        stmt = stmt.limit(limit)
    return list(session.scalars(stmt))


def lot_parents(session: Session, lot_id: int) -> list[tuple[LotLink, Lot]]:
    stmt = (sa.select(LotLink, Lot).join(Lot, Lot.id == LotLink.parent_lot_id)
            .where(LotLink.child_lot_id == lot_id).order_by(Lot.number))
    return [tuple(r) for r in session.execute(stmt)]


def lot_children(session: Session, lot_id: int) -> list[tuple[LotLink, Lot]]:
    stmt = (sa.select(LotLink, Lot).join(Lot, Lot.id == LotLink.child_lot_id)
            .where(LotLink.parent_lot_id == lot_id).order_by(Lot.number))
    return [tuple(r) for r in session.execute(stmt)]


def lot_ancestors(session: Session, lot_ids: list[int]) -> list[Lot]:
    """Every lot ``lot_ids`` were pooled or split from, transitively (not the lots themselves).

    One query per generation; a cycle (impossible through the services) ends the walk.
    """
    seen: set[int] = set(lot_ids)
    found: list[Lot] = []
    frontier = list(lot_ids)
    while frontier:
        stmt = (sa.select(Lot).join(LotLink, LotLink.parent_lot_id == Lot.id)
                .where(LotLink.child_lot_id.in_(frontier)).order_by(Lot.number))
        parents = [p for p in session.scalars(stmt).unique() if p.id not in seen]
        seen.update(p.id for p in parents)
        found.extend(parents)
        frontier = [p.id for p in parents]
    return found


def lot_measurements(session: Session, lot_id: int) -> list[Measurement]:
    return list(session.scalars(
        sa.select(Measurement).where(Measurement.lot_id == lot_id).order_by(Measurement.id)))


def find_result_file(session: Session, lot_id: int, sha256: str) -> ResultFile | None:
    return find_by(session, ResultFile, lot_id=lot_id, sha256=sha256)


def isolation_operator_ids(session: Session, lot_id: int) -> set[int]:
    stmt = (sa.select(IsolationRun.operator_id).join(Lot, Lot.isolation_run_id == IsolationRun.id)
            .where(Lot.id == lot_id))
    return set(session.scalars(stmt))


def audit_actor_ids(session: Session, table_name: str, record_pks: list[str]) -> set[int]:
    """Users who created or changed the given records, according to the audit trail."""
    if not record_pks:
        return set()
    stmt = sa.select(AuditEntry.actor_id).where(
        AuditEntry.table_name == table_name, AuditEntry.record_pk.in_(record_pks),
        AuditEntry.actor_id.is_not(None)).distinct()
    return set(session.scalars(stmt))


def audit_entries(session: Session, *, table_name: str | None = None,
                  record_pk: str | None = None, limit: int | None = None) -> list[AuditEntry]:
    """Audit entries, oldest first (the last ``limit`` when given)."""
    stmt = sa.select(AuditEntry)
    if table_name is not None:
        stmt = stmt.where(AuditEntry.table_name == table_name)
    if record_pk is not None:
        stmt = stmt.where(AuditEntry.record_pk == record_pk)
    if limit is not None:
        stmt = stmt.order_by(AuditEntry.seq.desc()).limit(limit)
        return list(reversed(list(session.scalars(stmt))))
    return list(session.scalars(stmt.order_by(AuditEntry.seq)))


def signatures_for(session: Session, table_name: str, record_id: int) -> list[Signature]:
    return list(session.scalars(
        sa.select(Signature).where(Signature.table_name == table_name,
                                   Signature.record_id == record_id).order_by(Signature.id)))


def donor_by_code(session: Session, code: str) -> Donor:
    return get_by(session, Donor, code=code)


def count_vials(session: Session, lot_id: int) -> int:
    return session.scalar(sa.select(sa.func.count()).select_from(Vial)
                          .where(Vial.lot_id == lot_id)) or 0


def existing_vial_identifiers(session: Session, identifiers: list[str]) -> set[str]:
    found: set[str] = set()
    for start in range(0, len(identifiers), 1000):
        chunk = identifiers[start:start + 1000]
        found.update(session.scalars(sa.select(Vial.identifier).where(Vial.identifier.in_(chunk))))
    return found


def lot_result_files(session: Session, lot_id: int) -> list[ResultFile]:
    return list(session.scalars(sa.select(ResultFile).where(ResultFile.lot_id == lot_id)))
