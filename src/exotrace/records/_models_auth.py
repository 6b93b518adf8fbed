"""Users and electronic signatures."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from ._base import Base, enum_column_type, utcnow
from ._enums import Role, SignatureMeaning

__all__ = ["ApiToken", "DatabaseIdentity", "Signature", "User"]


class User(Base):
    """A person who acts in exotrace; every audit entry and signature names one.

    User accounts are audited but not GMP data: changing one (deactivation,
    role) does not need a reason.
    """

    __tablename__ = "user_account"
    __gmp__ = False
    #: Shown as a marker in audit images and views (see exotrace.records._audit).
    __secret_columns__ = ("password_hash",)

    id: Mapped[int] = mapped_column(primary_key=True)
    username: Mapped[str] = mapped_column(sa.String(64), unique=True)
    full_name: Mapped[str] = mapped_column(sa.String(200))
    role: Mapped[Role] = mapped_column(enum_column_type(Role, "role"))
    password_hash: Mapped[str] = mapped_column(sa.String(200))
    active: Mapped[bool] = mapped_column(default=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    #: Created by an admin: the first sign-in must set a personal password.
    must_change_password: Mapped[bool] = mapped_column(default=False, server_default=sa.false())
    #: A demo account (password ``demo``); refused outside a demo database.
    demo: Mapped[bool] = mapped_column(default=False, server_default=sa.false())
    failed_sign_ins: Mapped[int] = mapped_column(default=0, server_default="0")
    failed_since: Mapped[datetime | None]
    locked_until: Mapped[datetime | None]
    password_changed_at: Mapped[datetime | None]

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
    #: First 16 hex digits of SHA-256 of the signing key (which key made keyed_hash).
    key_id: Mapped[str | None] = mapped_column(sa.String(16))
    #: HMAC-SHA256 (server-held key) over signer, meaning, time, record and content hash.
    keyed_hash: Mapped[str | None] = mapped_column(sa.String(64))

    __table_args__ = (sa.Index(None, "table_name", "record_id"),)


class ApiToken(Base):
    """A personal API token: acts with its user's role, never signs.

    Only the SHA-256 of the token is stored; the token itself is shown once.
    """

    __tablename__ = "api_token"
    __gmp__ = False
    __secret_columns__ = ("token_sha256",)

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(sa.ForeignKey("user_account.id"), index=True)
    name: Mapped[str] = mapped_column(sa.String(100))
    token_sha256: Mapped[str] = mapped_column(sa.String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    revoked_at: Mapped[datetime | None]


class DatabaseIdentity(Base):
    """One row: the database's random identity (named in checkpoints) and its demo flag.

    Written once, by the first user's creation (or the first checkpoint);
    never updated. Not audited: checkpoints carry ``database_id`` and report a
    database whose identity changed.
    """

    __tablename__ = "database_identity"
    __audited__ = False
    __gmp__ = False

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
    database_id: Mapped[str] = mapped_column(sa.String(36), unique=True)
    demo: Mapped[bool] = mapped_column(default=False)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class WebSession(Base):
    """A signed-in browser session: only the SHA-256 of its cookie value is stored.

    Not a GMP record and not audited (sign-ins and lock-outs are audited on the
    account row); rows are deleted at sign-out and when they expire.
    """

    __tablename__ = "web_session"
    __audited__ = False
    __gmp__ = False
    __secret_columns__ = ("sid_sha256", "csrf_token")

    id: Mapped[int] = mapped_column(primary_key=True)
    sid_sha256: Mapped[str] = mapped_column(sa.String(64), unique=True)
    user_id: Mapped[int] = mapped_column(sa.ForeignKey("user_account.id"), index=True)
    csrf_token: Mapped[str] = mapped_column(sa.String(64))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_seen_at: Mapped[datetime] = mapped_column(default=utcnow)
