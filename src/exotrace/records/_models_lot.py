"""Lot-side records: lots and their genealogy, storage, results, products and vials."""

from __future__ import annotations

from datetime import date, datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship

from ._base import Base, enum_column_type, utcnow
from ._enums import ConsentScope, LinkKind, LotStatus, ProductForm, VialStatus

__all__ = ["Lot", "LotLink", "Measurement", "Product", "ResultFile", "Storage", "Vial"]


class Lot(Base):
    """An EV preparation.

    A lot either comes from one isolation run or from other lots (pooled from
    several parents, or split from one); :class:`LotLink` holds that graph.
    """

    __tablename__ = "lot"

    id: Mapped[int] = mapped_column(primary_key=True)
    number: Mapped[str] = mapped_column(sa.String(64), unique=True)
    isolation_run_id: Mapped[int | None] = mapped_column(
        sa.ForeignKey("isolation_run.id"), index=True)
    status: Mapped[LotStatus] = mapped_column(
        enum_column_type(LotStatus, "lot_status"), default=LotStatus.IN_PROCESS)
    intended_use: Mapped[ConsentScope] = mapped_column(enum_column_type(ConsentScope, "lot_use"))
    volume_ml: Mapped[float | None]
    manufactured_on: Mapped[date]
    expires_on: Mapped[date | None]
    #: When the lot last became ``released`` (UTC); administrations must come after it.
    released_at: Mapped[datetime | None]
    description: Mapped[str | None] = mapped_column(sa.Text)
    created_by_id: Mapped[int] = mapped_column(sa.ForeignKey("user_account.id"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    # The lot list filters and sorts by these in SQL (ties broken by number).
    __table_args__ = (sa.Index(None, "status", "number"), sa.Index(None, "expires_on", "number"),
                      sa.Index(None, "created_at", "number"))


class LotLink(Base):
    """An edge of the lot genealogy: ``quantity_ml`` of ``parent`` went into ``child``."""

    __tablename__ = "lot_link"

    id: Mapped[int] = mapped_column(primary_key=True)
    parent_lot_id: Mapped[int] = mapped_column(sa.ForeignKey("lot.id"), index=True)
    child_lot_id: Mapped[int] = mapped_column(sa.ForeignKey("lot.id"), index=True)
    kind: Mapped[LinkKind] = mapped_column(enum_column_type(LinkKind, "link_kind"))
    quantity_ml: Mapped[float | None]

    __table_args__ = (
        sa.UniqueConstraint("parent_lot_id", "child_lot_id"),
        sa.CheckConstraint("parent_lot_id <> child_lot_id", name="not_self"),
    )


class Storage(Base):
    """Where and how (part of) a lot is stored; freeze-thaw cycles change EVs."""

    __tablename__ = "storage"

    id: Mapped[int] = mapped_column(primary_key=True)
    lot_id: Mapped[int] = mapped_column(sa.ForeignKey("lot.id"), index=True)
    buffer: Mapped[str] = mapped_column(sa.String(200))
    temperature_c: Mapped[float]
    container: Mapped[str] = mapped_column(sa.String(200))
    freeze_thaw_count: Mapped[int] = mapped_column(default=0)
    location: Mapped[str] = mapped_column(sa.String(200))
    stored_on: Mapped[date | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class ResultFile(Base):
    """An instrument file imported for a lot, stored once per (lot, SHA-256)."""

    __tablename__ = "result_file"

    id: Mapped[int] = mapped_column(primary_key=True)
    lot_id: Mapped[int] = mapped_column(sa.ForeignKey("lot.id"), index=True)
    file_name: Mapped[str] = mapped_column(sa.String(400))
    sha256: Mapped[str] = mapped_column(sa.String(64))
    result_json: Mapped[str | None] = mapped_column(sa.Text)
    imported_by_id: Mapped[int] = mapped_column(sa.ForeignKey("user_account.id"))
    imported_at: Mapped[datetime] = mapped_column(default=utcnow)

    __table_args__ = (sa.UniqueConstraint("lot_id", "sha256"),)


class Measurement(Base):
    """One measured attribute of a lot (value with unit, method and provenance)."""

    __tablename__ = "measurement"

    id: Mapped[int] = mapped_column(primary_key=True)
    lot_id: Mapped[int] = mapped_column(sa.ForeignKey("lot.id"), index=True)
    attribute: Mapped[str] = mapped_column(sa.String(64))
    value: Mapped[float]
    unit: Mapped[str] = mapped_column(sa.String(32))
    method: Mapped[str] = mapped_column(sa.String(100))
    instrument: Mapped[str | None] = mapped_column(sa.String(100))
    source_file_name: Mapped[str | None] = mapped_column(sa.String(400))
    source_sha256: Mapped[str | None] = mapped_column(sa.String(64))
    result_file_id: Mapped[int | None] = mapped_column(sa.ForeignKey("result_file.id"))
    entered_by_id: Mapped[int] = mapped_column(sa.ForeignKey("user_account.id"))
    measured_at: Mapped[datetime] = mapped_column(default=utcnow)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Product(Base):
    """A formulation of a lot: dosage form, excipients, target concentration, fill."""

    __tablename__ = "product"

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(sa.String(64), unique=True)
    lot_id: Mapped[int] = mapped_column(sa.ForeignKey("lot.id"), index=True)
    form: Mapped[ProductForm] = mapped_column(enum_column_type(ProductForm, "product_form"))
    excipients: Mapped[str | None] = mapped_column(sa.Text)
    target_particles_per_ml: Mapped[float | None]
    fill_volume_ml: Mapped[float | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Vial(Base):
    """A filled unit; ``identifier`` ends with an ISO 7064 MOD 37-2 check character."""

    __tablename__ = "vial"

    id: Mapped[int] = mapped_column(primary_key=True)
    identifier: Mapped[str] = mapped_column(sa.String(64), unique=True)
    lot_id: Mapped[int] = mapped_column(sa.ForeignKey("lot.id"), index=True)
    product_id: Mapped[int | None] = mapped_column(sa.ForeignKey("product.id"), index=True)
    fill_volume_ml: Mapped[float | None]
    status: Mapped[VialStatus] = mapped_column(
        enum_column_type(VialStatus, "vial_status"), default=VialStatus.AVAILABLE)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    lot: Mapped[Lot] = relationship()
