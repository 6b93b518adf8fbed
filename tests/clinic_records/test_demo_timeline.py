"""The demo database tells a possible story, whatever day it is loaded (both backends).

Built as ``exotrace demo load`` builds it (records, then the quality release
workflow, then the clinic). Every administration comes after its lot's QA
release signature and its vial's fill; no lot is recorded before it was made;
nothing is dated after the moment the checks run (except dates that look
ahead by nature: expiry and report-due dates); and the lists a home page shows
have entries: follow-up visits overdue and due, released lots expiring within
30 days.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa

from exotrace.records import (
    Administration,
    Base,
    Lot,
    LotStatus,
    SignatureMeaning,
    UTCDateTime,
    Vial,
    followup_due,
    make_engine,
    quality_repositories,
    unit_of_work,
)
from exotrace.records import repositories as repo
from exotrace.records._models_quality import DispositionAction

#: Columns whose dates look ahead by nature (a shelf life, a regulator's deadline).
FORWARD_LOOKING = {"lot.expires_on", "reagent_batch.expires_on", "adverse_event.report_due_on"}


@pytest.fixture
def demo_session(demo_db):
    engine = make_engine(demo_db[0])
    try:
        with unit_of_work(engine) as session:
            yield session
    finally:
        engine.dispose()


def _release_signed_at(session, lot: Lot) -> datetime:
    release = quality_repositories.latest_disposition(session, lot.id,
                                                      (DispositionAction.RELEASE,))
    assert release is not None, f"lot {lot.number} was administered without a release record"
    (signature,) = repo.signatures_for(session, "lot_disposition", release.id)
    assert signature.meaning is SignatureMeaning.APPROVAL
    return signature.signed_at


def test_every_administration_follows_its_lots_release_signature_and_its_vials_fill(
        demo_session):
    session = demo_session
    administrations = repo.list_all(session, Administration)
    assert len(administrations) >= 35
    lots_used = set()
    for adm in administrations:
        lot, vial = session.get(Lot, adm.lot_id), session.get(Vial, adm.vial_id)
        lots_used.add(lot.number)
        where = f"administration {adm.id} (lot {lot.number}, vial {vial.identifier})"
        assert adm.administered_at >= _release_signed_at(session, lot), where
        assert adm.administered_at >= lot.released_at, where
        assert adm.administered_at >= vial.created_at, where
        assert adm.administered_at.date() >= lot.manufactured_on, where
        assert adm.administered_at.date() <= lot.expires_on, where
    # four lots of two donors, among them the pool's child and SERUM-02's late fill
    assert lots_used == {"EV-2025-001", "EV-2025-002", "EV-2025-003", "EV-2025-P01-A"}


def test_lots_are_recorded_measured_and_filled_after_they_are_made(demo_session):
    session = demo_session
    lots = repo.list_lots(session)
    assert len(lots) == 28  # 12 of the records demo, 16 trend lots of the quality demo
    for lot in lots:
        assert lot.created_at.date() >= lot.manufactured_on, lot.number
        for m in repo.lot_measurements(session, lot.id):
            assert m.measured_at.date() >= lot.manufactured_on, (lot.number, m.attribute)
    for vial in repo.list_all(session, Vial):
        lot = session.get(Lot, vial.lot_id)
        assert vial.created_at.date() >= lot.manufactured_on, vial.identifier


def test_no_record_is_dated_in_the_future(demo_session):
    session = demo_session
    now = datetime.now(UTC)
    checked, future = {}, []
    for table in Base.metadata.sorted_tables:
        for column in table.columns:
            stamp = isinstance(column.type, (UTCDateTime, sa.DateTime))
            if not (stamp or isinstance(column.type, sa.Date)) \
                    or f"{table.name}.{column.name}" in FORWARD_LOOKING:
                continue
            limit = now if stamp else now.date()
            rows = session.execute(table.select().with_only_columns(column)
                                   .where(column.is_not(None))).scalars().all()
            checked[f"{table.name}.{column.name}"] = len(rows)
            future += [(f"{table.name}.{column.name}", v) for v in rows if v > limit]
    assert future == []
    # every dated column of the demo, not a handful: the audit trail, signatures, the clinic
    assert sum(checked.values()) > 1500
    assert all(checked[c] > 0 for c in ("audit_entry.at", "signature.signed_at",
                                         "administration.administered_at", "lot.manufactured_on",
                                         "observation.observed_on", "adverse_event.onset_on",
                                         "dose_decision.decided_at", "vial.created_at"))


def test_the_home_page_lists_have_entries(demo_session):
    session = demo_session
    today = datetime.now(UTC).date()
    due = followup_due(session, as_of=today)
    overdue = [r for r in due if r["status"] == "overdue"]
    window_open = [r for r in due if r["status"] == "due"]
    assert overdue and window_open
    assert all(r["window_to"] < today for r in overdue)
    assert all(r["window_from"] <= today <= r["window_to"] for r in window_open)
    soon = {x.number: (x.expires_on - today).days for x in repo.list_lots(session,
                                                                          status=LotStatus.RELEASED)
            if today <= x.expires_on <= today + timedelta(days=30)}
    assert set(soon) == {"EV-2025-002", "EV-2025-004"}
    # one of them still has vials to use up before it expires
    lot2 = repo.get_by(session, Lot, number="EV-2025-002")
    assert any(v.status.value == "available" for v in repo.list_vials(session, lot_id=lot2.id))
