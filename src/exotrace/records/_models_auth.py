"""Users and electronic signatures."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from ._base import Base, enum_column_type, utcnow
from ._enums import Role, SignatureMeaning

__all__ = ["Signature", "User"]


class User(Base):
    """A person who acts in exotrace; every audit entry and signature names one.

    User accounts are audited but not GMP data: changing one (deactivation,
    role) does not need a reason.
    """

    __tablename__ = "user_account"
    __gmp__ = False

    id: Mapped[int] = mapped_column(primary_key=True)
    username: Mapped[str] = mapped_column(sa.String(64), unique=True)
    full_name: Mapped[str] = mapped_column(sa.String(200))
    role: Mapped[Role] = mapped_column(enum_column_type(Role, "role"))
    password_hash: Mapped[str] = mapped_column(sa.String(200))
    active: Mapped[bool] = mapped_column(default=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    @property
    def printed_name(self) -> str:
        """Name shown with a signature (21 CFR 11.50): full name and user name."""
        return f"{self.full_name} ({self.username})"


class Signature(Base):
    """An electronic signature, permanently linked to the signed record.

    ``content_sha256`` is the hash of the record's stored column values at the
    moment of signing; if the record changes later the signature no longer
    matches it (see :func:`exotrace.records.signature_is_current`).
    Signatures are never updated or deleted.
    """

    __tablename__ = "signature"
    __immutable__ = True

    id: Mapped[int] = mapped_column(primary_key=True)
    table_name: Mapped[str] = mapped_column(sa.String(64))
    record_id: Mapped[int]
    content_sha256: Mapped[str] = mapped_column(sa.String(64))
    user_id: Mapped[int] = mapped_column(sa.ForeignKey("user_account.id"))
    printed_name: Mapped[str] = mapped_column(sa.String(300))
    meaning: Mapped[SignatureMeaning] = mapped_column(
        enum_column_type(SignatureMeaning, "signature_meaning"))
    signed_at: Mapped[datetime] = mapped_column(default=utcnow)

    __table_args__ = (sa.Index(None, "table_name", "record_id"),)
