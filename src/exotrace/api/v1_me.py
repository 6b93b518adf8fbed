"""``/api/v1/me``: who the caller is (user, role, permissions, how they signed in)."""

from __future__ import annotations

from fastapi import APIRouter, Depends
from pydantic import BaseModel

from ._principal import Principal, require

__all__ = ["router"]

router = APIRouter(prefix="/api/v1", tags=["account"])


class Me(BaseModel):
    username: str
    full_name: str
    role: str
    permissions: list[str]
    via_token: bool


@router.get("/me", response_model=Me)
def me(caller: Principal = Depends(require())) -> Me:
    """The signed-in user."""
    return Me(username=caller.username, full_name=caller.full_name, role=caller.role.value,
              permissions=sorted(p.value for p in caller.permissions),
              via_token=caller.via_token)
