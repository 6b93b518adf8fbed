"""An administration's time lies after its lot's release and its vial's fill, on or before
the expiry day, and not in the future (SQLite and PostgreSQL).

A backdated administration once passed every check: dated before the release
it reached a lot that was not yet released, and dated before the expiry it
reached a lot that had expired since. Subject C1 (enrolled 2025-06-02, arm IV,
70 kg: 7.0 mL per dose from a 10 mL vial) receives the vials.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest

from exotrace.errors import InvalidInput, RuleViolation
from exotrace.records import (
    Administration,
    Lot,
    Vial,
    administer,
    clock_set_to,
    create_vials,
)
from exotrace.records import repositories as repo
from exotrace.records._clinic_administration import FUTURE_TOLERANCE

from .conftest import made_at, make_lot


def _give(session, world, vial, at):
    return administer(session, world["doc"], subject_code="C1", vial_identifier=vial, at=at)


def _administrations(session):
    return len(repo.list_all(session, Administration))


def test_no_administration_before_the_release(session, world):
    # made 2025-06-09, recorded, filled and released on 2025-06-10 from 09:00 UTC
    late = make_lot(session, world["users"], "D-A", "L-LATE", new_donor=False,
                    manufactured=date(2025, 6, 9), products=("INJ",), vials=2)
    released_at = repo.get_by(session, Lot, number="L-LATE").released_at
    assert made_at(date(2025, 6, 9)) <= released_at < made_at(date(2025, 6, 9)) + \
        timedelta(minutes=1)  # the clock runs on from 09:00 while the lot is built
    first_minute_before = datetime(2025, 6, 10, 8, 59, tzinfo=UTC)
    with pytest.raises(RuleViolation, match="is before lot L-LATE was released"):
        _give(session, world, late["INJ"][0], first_minute_before)
    assert _administrations(session) == 0
    adm = _give(session, world, late["INJ"][0], datetime(2025, 6, 10, 9, 1, tzinfo=UTC))
    assert adm.administered_at > released_at


def test_no_administration_before_the_vial_is_filled(session, world):
    with clock_set_to(datetime(2025, 6, 12, 9, 0, tzinfo=UTC), frozen=True):
        (vial,) = create_vials(session, world["users"]["analyst"], "L-A", 1,
                               product_code="INJ-L-A")
    filled_at = repo.get_by(session, Vial, identifier=vial).created_at
    assert filled_at == datetime(2025, 6, 12, 9, 0, tzinfo=UTC)
    with pytest.raises(RuleViolation, match="before the vial was filled"):
        _give(session, world, vial, filled_at - timedelta(minutes=1))
    assert _give(session, world, vial, filled_at).administered_at == filled_at


def test_expiry_cannot_be_dodged_by_backdating(session, world):
    # released 2025-06-02, expires 2025-06-20: usable on the expiry day, not the day after
    make_lot(session, world["users"], "D-A", "L-SHORT", new_donor=False,
             manufactured=date(2025, 6, 1), expires=date(2025, 6, 20), products=("INJ",),
             vials=2)
    vials = [v.identifier for v in repo.list_vials(
        session, lot_id=repo.get_by(session, Lot, number="L-SHORT").id)]
    with pytest.raises(RuleViolation, match="expired on 2025-06-20 \\(1 day ago\\)"):
        _give(session, world, vials[0], datetime(2025, 6, 21, 0, 0, tzinfo=UTC))
    # before the release (2025-06-02 09:00): the backdated time is refused too
    with pytest.raises(RuleViolation, match="before lot L-SHORT was released"):
        _give(session, world, vials[0], datetime(2025, 6, 2, 8, 0, tzinfo=UTC))
    adm = _give(session, world, vials[0], datetime(2025, 6, 20, 23, 59, tzinfo=UTC))
    assert adm.lot_id == repo.get_by(session, Lot, number="L-SHORT").id


def test_future_time_boundary_is_the_clock_skew_tolerance(session, world):
    assert FUTURE_TOLERANCE == timedelta(minutes=5)
    now = datetime(2025, 6, 3, 12, 0, tzinfo=UTC)
    with clock_set_to(now, frozen=True):
        with pytest.raises(InvalidInput, match="is in the future"):
            _give(session, world, world["A"]["INJ"][0],
                  now + FUTURE_TOLERANCE + timedelta(microseconds=1))
        assert _administrations(session) == 0
        adm = _give(session, world, world["A"]["INJ"][0], now + FUTURE_TOLERANCE)
    assert adm.administered_at == now + FUTURE_TOLERANCE
