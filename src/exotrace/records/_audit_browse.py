"""Reading the audit trail page by page, filtered (the web audit page and its API)."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Session

from ..errors import InvalidInput
from ._models_audit import AuditEntry
from ._views import audit_entry_view

__all__ = ["MAX_AUDIT_PAGE", "audit_page"]

MAX_AUDIT_PAGE = 200


def audit_page(session: Session, *, table: str | None = None, record: str | None = None,
               actor: str | None = None, since: datetime | None = None,
               until: datetime | None = None, page: int = 1, per_page: int = 50) -> dict:
    """Audit entries matching every filter given, newest first.

    Parameters
    ----------
    table, record, actor : str, optional
        Exact table name, record primary key (as text) and actor user name.
    since, until : datetime, optional
        Entries at or after ``since`` and strictly before ``until`` (UTC).
    page, per_page : int
        1-based page; at most :data:`MAX_AUDIT_PAGE` entries per page.

    Returns
    -------
    dict
        ``entries`` (views, secrets masked), ``total``, ``page``, ``per_page``, ``pages``.
    """
    if page < 1:
        raise InvalidInput(f"page {page}: pages start at 1")
    if not 1 <= per_page <= MAX_AUDIT_PAGE:
        raise InvalidInput(f"per_page {per_page}: give 1 to {MAX_AUDIT_PAGE}")
    if since is not None and until is not None and until <= since:
        raise InvalidInput("the end of the time range must be after its start")
    conditions = []
    if table:
        conditions.append(AuditEntry.table_name == table)
    if record:
        conditions.append(AuditEntry.record_pk == record)
    if actor:
        conditions.append(AuditEntry.actor_name == actor)
    if since is not None:
        conditions.append(AuditEntry.at >= since)
    if until is not None:
        conditions.append(AuditEntry.at < until)
    total = session.scalar(sa.select(sa.func.count()).select_from(AuditEntry).where(*conditions))
    rows = session.scalars(sa.select(AuditEntry).where(*conditions)
                           .order_by(AuditEntry.seq.desc())
                           .offset((page - 1) * per_page).limit(per_page)).all()
    return {"entries": [audit_entry_view(e) for e in rows], "total": total or 0, "page": page,
            "per_page": per_page, "pages": max(1, -(-(total or 0) // per_page))}
