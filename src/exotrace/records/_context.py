"""Who is acting, and why, for the writes of a session.

The audit trail reads both from ``session.info``; services and commands set
them once per unit of work. A write without an acting user is refused.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from sqlalchemy.orm import Session

__all__ = ["Actor", "BOOTSTRAP_ACTOR", "acting_as", "change_reason", "current_actor",
           "current_reason", "set_actor"]

_ACTOR_KEY = "exotrace.actor"
_REASON_KEY = "exotrace.reason"


@dataclass(frozen=True)
class Actor:
    """The user a write is attributed to (``user_id`` is None only at bootstrap)."""

    user_id: int | None
    username: str


#: Used only to create the first administrator of an empty database.
BOOTSTRAP_ACTOR = Actor(None, "bootstrap")


def _as_actor(user) -> Actor:
    if isinstance(user, Actor):
        return user
    return Actor(user.id, user.username)


def set_actor(session: Session, user) -> None:
    """Attribute the session's following writes to ``user`` (a User or Actor)."""
    session.info[_ACTOR_KEY] = _as_actor(user)


def current_actor(session: Session) -> Actor | None:
    return session.info.get(_ACTOR_KEY)


def current_reason(session: Session) -> str | None:
    return session.info.get(_REASON_KEY)


@contextmanager
def acting_as(session: Session, user) -> Iterator[Session]:
    """Within the block, writes are attributed to ``user``; the previous actor is restored."""
    previous = session.info.get(_ACTOR_KEY)
    session.info[_ACTOR_KEY] = _as_actor(user)
    try:
        yield session
    finally:
        if previous is None:
            session.info.pop(_ACTOR_KEY, None)
        else:
            session.info[_ACTOR_KEY] = previous


@contextmanager
def change_reason(session: Session, reason: str | None) -> Iterator[Session]:
    """Within the block, updates and deletes are recorded with ``reason``.

    The session is flushed on leaving so the reason applies to the changes
    made inside the block and not to later ones.
    """
    from .._text import check_text

    # The reason is stored in the audit entry: the text rules of every stored text apply
    # (PostgreSQL would refuse a NUL with a driver error instead of a message).
    check_text(reason, "reason", multiline=True)
    previous = session.info.get(_REASON_KEY)
    session.info[_REASON_KEY] = reason.strip() if reason and reason.strip() else None
    try:
        yield session
        session.flush()
    finally:
        if previous is None:
            session.info.pop(_REASON_KEY, None)
        else:
            session.info[_REASON_KEY] = previous
