"""The audit trail table: one row per create/update/delete, chained by SHA-256."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from ._base import Base, enum_column_type
from ._enums import AuditAction

__all__ = ["GENESIS_HASH", "AuditEntry"]

#: ``prev_hash`` of the first entry of the chain.
GENESIS_HASH = "0" * 64


class AuditEntry(Base):
    """One audited change.

    ``seq`` numbers the chain 1, 2, 3, ...; ``prev_hash`` is the previous
    entry's ``entry_hash`` and is unique, so two writers can never append to
    the same head (the chain cannot fork even if the lock were bypassed).
    ``before_json``/``after_json`` hold the canonical JSON image of the row
    exactly as hashed.
    """

    __tablename__ = "audit_entry"
    __audited__ = False  # the trail does not audit itself
    __gmp__ = False

    seq: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
    table_name: Mapped[str] = mapped_column(sa.String(64))
    record_pk: Mapped[str] = mapped_column(sa.String(64))
    action: Mapped[AuditAction] = mapped_column(enum_column_type(AuditAction, "audit_action"))
    actor_id: Mapped[int | None]
    actor_name: Mapped[str] = mapped_column(sa.String(64))
    at: Mapped[datetime]
    reason: Mapped[str | None] = mapped_column(sa.Text)
    before_json: Mapped[str | None] = mapped_column(sa.Text)
    after_json: Mapped[str | None] = mapped_column(sa.Text)
    prev_hash: Mapped[str] = mapped_column(sa.String(64), unique=True)
    entry_hash: Mapped[str] = mapped_column(sa.String(64))

    __table_args__ = (sa.Index(None, "table_name", "record_pk"),)
