"""What needs attention now: the lists of the home page, by what the user may act on.

Each list is bounded (``limit``) and ordered by urgency, so the page stays fast
on a database of many years.
"""

from __future__ import annotations

from datetime import date, timedelta

import sqlalchemy as sa
from sqlalchemy.orm import Session

from ._auth import Permission, has_permission
from ._enums import LotStatus
from ._models_auth import User
from ._models_clinic import ClinicalAdverseEvent, Subject
from ._models_lot import Lot

__all__ = ["attention_lists"]


def _lots_awaiting(session: Session, limit: int) -> list[dict]:
    from . import release_state

    lots = session.scalars(sa.select(Lot).where(Lot.status == LotStatus.AWAITING_RELEASE)
                           .order_by(Lot.created_at).limit(limit)).all()
    rows = []
    for lot in lots:
        state = release_state(session, lot).value
        rows.append({"lot": lot.number, "state": state,
                     "waiting_for": "QA release" if state == "verified" else "verification",
                     "expires_on": lot.expires_on})
    return rows


def _lots_expiring(session: Session, today: date, days: int, limit: int) -> list[dict]:
    stmt = (sa.select(Lot.number, Lot.status, Lot.expires_on)
            .where(Lot.expires_on.is_not(None), Lot.expires_on >= today,
                   Lot.expires_on <= today + timedelta(days=days),
                   Lot.status.not_in([LotStatus.REJECTED]))
            .order_by(Lot.expires_on, Lot.number).limit(limit))
    return [{"lot": n, "status": LotStatus(s).value, "expires_on": e,
             "days_left": (e - today).days} for n, s, e in session.execute(stmt)]


def _serious_events(session: Session, today: date, limit: int) -> list[dict]:
    stmt = (sa.select(ClinicalAdverseEvent, Subject.code)
            .join(Subject, Subject.id == ClinicalAdverseEvent.subject_id)
            .where(ClinicalAdverseEvent.expedited.is_(True))
            .order_by(ClinicalAdverseEvent.report_due_on.desc().nulls_last())
            .limit(limit))
    rows = []
    for event, subject in session.execute(stmt):
        due = event.report_due_on
        rows.append({"subject": subject, "term": event.term, "grade": event.grade,
                     "onset": event.onset_on, "report_due_on": due,
                     "days_left": (due - today).days if due else None})
    return rows


def attention_lists(session: Session, user: User, *, today: date | None = None,
                    expiring_within_days: int = 30, limit: int = 20) -> dict:
    """The home page's lists for ``user`` (only those the role can act on or must see).

    Keys present by permission: ``awaiting_release`` (REVIEW or APPROVE),
    ``open_investigations`` (ENTER_RESULTS, REVIEW or APPROVE), ``expiring``
    (VIEW), ``followup_due`` and ``serious_adverse_events`` (RECORD_CLINICAL).
    """
    from . import followup_due, list_investigation_views

    day = today or date.today()
    lists: dict[str, list[dict]] = {}
    may = lambda p: has_permission(user, p)  # noqa: E731
    if may(Permission.REVIEW) or may(Permission.APPROVE):
        lists["awaiting_release"] = _lots_awaiting(session, limit)
    if may(Permission.ENTER_RESULTS) or may(Permission.REVIEW) or may(Permission.APPROVE):
        lists["open_investigations"] = list_investigation_views(session, open_only=True)[:limit]
    if may(Permission.VIEW):
        lists["expiring"] = _lots_expiring(session, day, expiring_within_days, limit)
    if may(Permission.RECORD_CLINICAL):
        lists["followup_due"] = followup_due(session, as_of=day)[:limit]
        lists["serious_adverse_events"] = _serious_events(session, day, limit)
    return lists
