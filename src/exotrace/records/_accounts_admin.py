"""Account administration by an admin: unlock a locked account, give a temporary password.

Both are audited changes of the account row, with the admin as actor and a
reason; a temporary password must be changed at the next sign-in. An admin
cannot use them on their own account (they would approve their own access).
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.orm import Session

from ..errors import InvalidInput, PermissionDenied
from . import _repositories as repo
from ._accounts import check_password_policy
from ._auth import Permission, hash_password, require_permission
from ._base import utcnow
from ._context import acting_as, change_reason
from ._models_auth import ApiToken, User
from ._views import user_view

__all__ = ["list_user_views", "reset_user_password", "unlock_user"]


def _target(session: Session, acting: User, username: str, action: str, reason: str) -> User:
    require_permission(acting, Permission.MANAGE_USERS, action=action)
    if not (reason or "").strip():
        raise InvalidInput(f"{action}: give a reason (it goes into the audit trail)")
    user = repo.get_by(session, User, username=username)
    if user.id == acting.id:
        raise PermissionDenied(f"{action}: an admin cannot do this to their own account")
    return user


def unlock_user(session: Session, acting: User, username: str, *, reason: str) -> User:
    """End a lock-out and forget the failed sign-ins of ``username``."""
    user = _target(session, acting, username, "unlock accounts", reason)
    with acting_as(session, acting), change_reason(session, reason):
        user.locked_until = None
        user.failed_sign_ins, user.failed_since = 0, None
    return user


def reset_user_password(session: Session, acting: User, username: str,
                        temporary_password: str, *, reason: str) -> User:
    """Give ``username`` a temporary password, to be changed at the next sign-in.

    A reset is what an admin does when a password may be known to someone else:
    the user's API tokens are revoked with it (and their browser sessions end).
    """
    user = _target(session, acting, username, "reset passwords", reason)
    if user.demo:
        raise InvalidInput(f"user {username} is a demo account; its password stays 'demo'")
    check_password_policy(temporary_password, username)
    with acting_as(session, acting), change_reason(session, reason):
        user.password_hash = hash_password(temporary_password)
        user.must_change_password = True
        user.locked_until = None
        user.failed_sign_ins, user.failed_since = 0, None
        now = utcnow()
        for token in session.scalars(sa.select(ApiToken).where(
                ApiToken.user_id == user.id, ApiToken.revoked_at.is_(None))):
            token.revoked_at = now
        session.flush()
    return user


def list_user_views(session: Session) -> list[dict]:
    """Every account (accounts are never deleted), by user name."""
    return [user_view(u) for u in session.scalars(sa.select(User).order_by(User.username))]
