"""Source-side records: donor, consent, cell bank, collection, reagents, isolation."""

from __future__ import annotations

from datetime import date, datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship

from ._base import Base, enum_column_type, utcnow
from ._enums import ConsentScope, IsolationMethod, SerumCondition, Sex, Tissue

__all__ = [
    "CellBank",
    "Collection",
    "Consent",
    "Donor",
    "IsolationRun",
    "ReagentBatch",
    "ReagentUse",
]


class Donor(Base):
    """A pseudonymous donor: the code links to identity only outside exotrace."""

    __tablename__ = "donor"

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(sa.String(64), unique=True)
    age_band: Mapped[str] = mapped_column(sa.String(16))
    sex: Mapped[Sex] = mapped_column(enum_column_type(Sex, "sex"))
    exposures: Mapped[str | None] = mapped_column(sa.Text)
    disease_history: Mapped[str | None] = mapped_column(sa.Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    consents: Mapped[list[Consent]] = relationship(
        back_populates="donor", order_by="Consent.id")


class Consent(Base):
    """A donor's consent: the uses it covers, its version and date, and withdrawal.

    ``scopes`` is a comma-separated, sorted list of :class:`ConsentScope`
    values (validated by the service). The donor's current consent is the
    latest one recorded; once withdrawn it blocks every later use.
    """

    __tablename__ = "consent"

    id: Mapped[int] = mapped_column(primary_key=True)
    donor_id: Mapped[int] = mapped_column(sa.ForeignKey("donor.id"), index=True)
    scopes: Mapped[str] = mapped_column(sa.String(200))
    version: Mapped[str] = mapped_column(sa.String(32))
    consented_on: Mapped[date]
    withdrawn_on: Mapped[date | None]
    withdrawal_reason: Mapped[str | None] = mapped_column(sa.Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    donor: Mapped[Donor] = relationship(back_populates="consents")

    @property
    def scope_set(self) -> frozenset[ConsentScope]:
        return frozenset(ConsentScope(s) for s in self.scopes.split(",") if s)


class CellBank(Base):
    """Banked source cells of one donor (a working bank may derive from a master bank).

    Identity results are percentages of positive cells by flow cytometry
    (MSC criteria: CD73/CD90/CD105 >= 95 %, CD45/CD34/CD11b/HLA-DR <= 2 %).
    """

    __tablename__ = "cell_bank"

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(sa.String(64), unique=True)
    donor_id: Mapped[int] = mapped_column(sa.ForeignKey("donor.id"), index=True)
    parent_id: Mapped[int | None] = mapped_column(sa.ForeignKey("cell_bank.id"), index=True)
    tissue: Mapped[Tissue] = mapped_column(enum_column_type(Tissue, "tissue"))
    intended_use: Mapped[ConsentScope] = mapped_column(
        enum_column_type(ConsentScope, "cell_bank_use"))
    passage: Mapped[int]
    cd73_pct: Mapped[float | None]
    cd90_pct: Mapped[float | None]
    cd105_pct: Mapped[float | None]
    cd45_pct: Mapped[float | None]
    cd34_pct: Mapped[float | None]
    cd11b_pct: Mapped[float | None]
    hla_dr_pct: Mapped[float | None]
    banked_on: Mapped[date | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    donor: Mapped[Donor] = relationship()


class Collection(Base):
    """Conditioned medium collected from a cell bank's culture."""

    __tablename__ = "collection"

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(sa.String(64), unique=True)
    cell_bank_id: Mapped[int] = mapped_column(sa.ForeignKey("cell_bank.id"), index=True)
    medium: Mapped[str] = mapped_column(sa.String(200))
    serum_condition: Mapped[SerumCondition] = mapped_column(
        enum_column_type(SerumCondition, "serum_condition"))
    volume_ml: Mapped[float]
    culture_days: Mapped[float]
    cell_count: Mapped[float | None]
    collected_on: Mapped[date | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    cell_bank: Mapped[CellBank] = relationship()


class ReagentBatch(Base):
    """A batch of a reagent or consumable (medium, buffer, kit) used in manufacturing."""

    __tablename__ = "reagent_batch"

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(sa.String(64), unique=True)
    name: Mapped[str] = mapped_column(sa.String(200))
    supplier: Mapped[str | None] = mapped_column(sa.String(200))
    batch_number: Mapped[str] = mapped_column(sa.String(64))
    expires_on: Mapped[date | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class IsolationRun(Base):
    """One EV separation run (method and its parameters) on a collection."""

    __tablename__ = "isolation_run"

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(sa.String(64), unique=True)
    collection_id: Mapped[int] = mapped_column(sa.ForeignKey("collection.id"), index=True)
    method: Mapped[IsolationMethod] = mapped_column(
        enum_column_type(IsolationMethod, "isolation_method"))
    g_force: Mapped[float | None]
    duration_min: Mapped[float | None]
    rotor: Mapped[str | None] = mapped_column(sa.String(64))
    k_factor: Mapped[float | None]
    input_volume_ml: Mapped[float]
    output_volume_ml: Mapped[float]
    operator_id: Mapped[int] = mapped_column(sa.ForeignKey("user_account.id"))
    performed_on: Mapped[date | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    collection: Mapped[Collection] = relationship()


class ReagentUse(Base):
    """A reagent batch used by an isolation run or a lot (exactly one of the two)."""

    __tablename__ = "reagent_use"

    id: Mapped[int] = mapped_column(primary_key=True)
    reagent_batch_id: Mapped[int] = mapped_column(sa.ForeignKey("reagent_batch.id"), index=True)
    isolation_run_id: Mapped[int | None] = mapped_column(
        sa.ForeignKey("isolation_run.id"), index=True)
    lot_id: Mapped[int | None] = mapped_column(sa.ForeignKey("lot.id"), index=True)
    quantity: Mapped[float | None]
    unit: Mapped[str | None] = mapped_column(sa.String(32))

    __table_args__ = (
        sa.CheckConstraint(
            "(isolation_run_id IS NULL) <> (lot_id IS NULL)", name="one_user"),
    )
