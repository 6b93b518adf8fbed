"""Declarative base, constraint naming convention and UTC timestamp type.

Every model of exotrace (records, quality, clinic) derives from :class:`Base`;
the naming convention gives each constraint a stable name so Alembic
migrations can drop or alter it on SQLite and PostgreSQL alike.

Two class attributes steer the audit trail (see :mod:`exotrace.records._audit`):

``__audited__`` (default ``True``)
    every insert, update and delete of the model writes an audit entry.
``__gmp__`` (default ``True``)
    the table holds GMP data: an update or delete needs a reason.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import UTC, date, datetime, timedelta
from enum import StrEnum

import sqlalchemy as sa
from sqlalchemy.orm import DeclarativeBase
from sqlalchemy.types import TypeDecorator

from ..errors import InvalidInput

__all__ = ["NAMING_CONVENTION", "Base", "UTCDateTime", "clock_set_to", "enum_column_type",
           "utcnow"]

NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


#: (offset from the real clock, or a frozen instant); set only by :func:`clock_set_to`.
_CLOCK: ContextVar[timedelta | datetime | None] = ContextVar("exotrace_clock", default=None)


def utcnow() -> datetime:
    """The current time, timezone-aware, in UTC (the records layer's one clock).

    Every timestamp the records layer writes, and every "not in the future"
    or "after the release" check, reads this clock, so that a demo or a test
    that replays a past timeline (:func:`clock_set_to`) stays consistent.
    """
    setting = _CLOCK.get()
    if isinstance(setting, datetime):
        return setting
    now = datetime.now(UTC)
    return now + setting if setting is not None else now


@contextmanager
def clock_set_to(at: datetime, *, frozen: bool = False) -> Iterator[None]:
    """Run the block as if the current time were ``at`` (time zone-aware).

    The clock keeps ticking from ``at`` unless ``frozen``. Used to replay a
    dated timeline (the demo, tests of the time rules); it changes nothing
    for other threads or tasks (a context variable).
    """
    if not isinstance(at, datetime) or at.tzinfo is None:
        raise InvalidInput(f"clock time {at!r} needs a time zone")
    at = at.astimezone(UTC)
    token = _CLOCK.set(at if frozen else at - datetime.now(UTC))
    try:
        yield
    finally:
        _CLOCK.reset(token)


class UTCDateTime(TypeDecorator):
    """A timestamp stored in UTC and always returned timezone-aware.

    SQLite has no time zone type, so values are normalised to UTC before
    they are written and marked UTC when read; PostgreSQL uses
    ``timestamptz``. Naive datetimes are refused: they are ambiguous.
    """

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value, dialect):
        if value is None:
            return None
        if not isinstance(value, datetime):
            raise InvalidInput(f"expected a datetime, got {type(value).__name__}")
        if value.tzinfo is None:
            raise InvalidInput(f"naive datetime {value.isoformat()} refused: give a time zone")
        value = value.astimezone(UTC)
        if dialect.name == "sqlite":
            return value.replace(tzinfo=None)
        return value

    def process_result_value(self, value, dialect):
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


def enum_column_type(enum_cls: type[StrEnum], name: str) -> sa.Enum:
    """A portable enum column: VARCHAR plus a CHECK constraint named ``name``.

    Values (not member names) are stored, so the database reads like the
    JSON output.
    """
    return sa.Enum(
        enum_cls,
        name=name,
        native_enum=False,
        create_constraint=True,
        length=max(len(m.value) for m in enum_cls) + 8,
        values_callable=lambda cls: [m.value for m in cls],
        validate_strings=True,
    )


class Base(DeclarativeBase):
    """Declarative base of every exotrace table."""

    metadata = sa.MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map = {datetime: UTCDateTime(), date: sa.Date()}

    __audited__ = True
    __gmp__ = True
