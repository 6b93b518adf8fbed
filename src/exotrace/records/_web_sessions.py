"""Browser sessions: opened at sign-in, resolved at every request, closed at sign-out.

The cookie carries a random session id; the database keeps only its SHA-256,
so a copy of the database does not let anyone take over a session. Each
session has its own CSRF token (forms and htmx requests send it back). A
session idle for longer than the configured time is refused and deleted.
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import timedelta

import sqlalchemy as sa
from sqlalchemy.orm import Session

from ..errors import AuthError
from ._accounts import check_demo_allowed, check_not_locked
from ._audit import check_matches_trail
from ._base import utcnow
from ._models_auth import User, WebSession

__all__ = ["close_web_session", "open_web_session", "resolve_web_session"]

_SID_BYTES = 32
#: last_seen_at is rewritten at most this often (a write per request would serialize readers).
_TOUCH_EVERY = timedelta(seconds=30)


def _digest(sid: str) -> str:
    return hashlib.sha256(sid.encode("utf-8")).hexdigest()


def open_web_session(session: Session, user: User, *, idle: timedelta) -> tuple[str, str]:
    """A new session for ``user`` (already authenticated); returns (session id, CSRF token).

    Sessions of any user idle for longer than ``idle`` are deleted on the way.
    """
    now = utcnow()
    session.execute(sa.delete(WebSession).where(WebSession.last_seen_at < now - idle))
    sid = secrets.token_urlsafe(_SID_BYTES)
    csrf = secrets.token_urlsafe(_SID_BYTES)
    session.add(WebSession(sid_sha256=_digest(sid), user_id=user.id, csrf_token=csrf,
                           created_at=now, last_seen_at=now))
    session.flush()
    return sid, csrf


def resolve_web_session(session: Session, sid: str, *, idle: timedelta
                        ) -> tuple[User, WebSession]:
    """The user and session row of a session id; AuthError when unknown, idle too long,
    when the password was changed or reset since the session began, or when the account
    may no longer sign in (inactive, locked, altered outside the trail)."""
    row = session.execute(sa.select(WebSession).where(
        WebSession.sid_sha256 == _digest(sid or ""))).scalar_one_or_none()
    if row is None:
        raise AuthError("not signed in (session unknown or ended)")
    now = utcnow()
    if now - row.last_seen_at > idle:
        session.delete(row)
        session.flush()
        raise AuthError("session expired after inactivity; sign in again")
    user = session.get(User, row.user_id)
    if not user.active:
        raise AuthError(f"user {user.username} is inactive")
    # A password reset by an administrator (must change) or a password changed since this
    # session began ends the session: whoever held the old password is signed out too.
    if user.must_change_password or (user.password_changed_at is not None
                                     and user.password_changed_at > row.created_at):
        session.delete(row)
        session.flush()
        raise AuthError(f"the password of user {user.username} was changed or reset since "
                        "this session began; sign in again")
    check_not_locked(user)
    check_demo_allowed(session, user)
    check_matches_trail(session, user)
    if now - row.last_seen_at > _TOUCH_EVERY:
        row.last_seen_at = now
        session.flush()
    return user, row


def close_web_session(session: Session, sid: str) -> None:
    """End a session (sign-out); unknown ids are ignored."""
    session.execute(sa.delete(WebSession).where(WebSession.sid_sha256 == _digest(sid or "")))
