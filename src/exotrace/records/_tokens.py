"""Personal API tokens: for scripts and the API, never for signatures.

A token acts with its user's role (checked at every use, so a deactivated,
locked or tampered account stops its tokens too). Only the SHA-256 of the
token is stored; the token is shown once, at creation. Signing always needs
the password (21 CFR 11.200), so a token alone can never sign.
"""

from __future__ import annotations

import hashlib
import secrets

from sqlalchemy.orm import Session

from ..errors import AuthError, InvalidInput, NotFound, PermissionDenied
from . import _repositories as repo
from ._accounts import check_demo_allowed, check_not_locked
from ._audit import check_matches_trail
from ._base import utcnow
from ._context import acting_as
from ._models_auth import ApiToken, User

__all__ = ["TOKEN_PREFIX", "authenticate_token", "create_token", "list_tokens", "revoke_token",
           "token_view"]

TOKEN_PREFIX = "exo_"
_TOKEN_BYTES = 32


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def create_token(session: Session, user: User, name: str) -> tuple[str, ApiToken]:
    """A new token for ``user`` (already signed in with the password); returns (token, row)."""
    name = (name or "").strip()
    if not name or len(name) > ApiToken.__table__.c.name.type.length:
        raise InvalidInput("token name: give 1-100 characters")
    token = TOKEN_PREFIX + secrets.token_urlsafe(_TOKEN_BYTES)
    row = ApiToken(user_id=user.id, name=name, token_sha256=_digest(token))
    with acting_as(session, user):
        session.add(row)
        session.flush()
    return token, row


def authenticate_token(session: Session, token: str) -> User:
    """The user a valid, unrevoked token belongs to; AuthError otherwise."""
    row = repo.find_by(session, ApiToken, token_sha256=_digest(token or ""))
    if row is None or row.revoked_at is not None:
        raise AuthError("API token unknown or revoked")
    user = session.get(User, row.user_id)
    if not user.active:
        raise AuthError(f"user {user.username} is inactive")
    check_not_locked(user)
    check_demo_allowed(session, user)
    check_matches_trail(session, user)
    check_matches_trail(session, row)
    return user


def list_tokens(session: Session, user: User) -> list[ApiToken]:
    """``user``'s tokens (all tokens for an administrator)."""
    from ._auth import Permission, has_permission

    tokens = repo.list_all(session, ApiToken, order_by=ApiToken.id)
    if has_permission(user, Permission.MANAGE_USERS):
        return tokens
    return [t for t in tokens if t.user_id == user.id]


def revoke_token(session: Session, user: User, token_id: int) -> ApiToken:
    """Revoke a token (its owner or an administrator)."""
    from ._auth import Permission, has_permission

    row = session.get(ApiToken, token_id)
    if row is None:
        raise NotFound(f"no API token {token_id}")
    if row.user_id != user.id and not has_permission(user, Permission.MANAGE_USERS):
        raise PermissionDenied(f"user {user.username} may revoke only their own tokens")
    if row.revoked_at is None:
        with acting_as(session, user):
            row.revoked_at = utcnow()
            session.flush()
    return row


def token_view(session: Session, row: ApiToken) -> dict:
    owner = session.get(User, row.user_id)
    return {"id": row.id, "name": row.name, "user": owner.username,
            "created_at": row.created_at, "revoked_at": row.revoked_at,
            "active": row.revoked_at is None}
