"""Release rules of a lot (expiry, lineage, consent), refusals pinned word for word.

Each test fails when one rule of :mod:`exotrace.records._services_lot` is
loosened or its refusal names the wrong cause (found by mutation testing,
docs/reliability.md): the operator reads the message to know what to fix.
"""

from __future__ import annotations

from datetime import date

import pytest
import sqlalchemy as sa

from exotrace.errors import ConsentError, RuleViolation
from exotrace.records import Consent, check_lot_consent, check_releasable, create_lot


def _refusal(call, *args, **kwargs) -> str:
    with pytest.raises(RuleViolation) as info:
        call(*args, **kwargs)
    return str(info.value)


def test_release_refusals_for_expiry_word_for_word(session, record_users, chain):
    lot = chain["lot"]  # expires 2036-03-01
    check_releasable(session, lot, today=date(2036, 3, 1))
    assert _refusal(check_releasable, session, lot, today=date(2036, 3, 2)) == (
        f"lot {lot.number} expired on 2036-03-01; an expired lot cannot be released")
    undated = create_lot(session, record_users["analyst"], "L-NO-EXPIRY",
                         isolation_code=chain["run"].code, intended_use="clinical_manufacturing",
                         manufactured_on=date(2025, 3, 1), volume_ml=1.0)
    assert _refusal(check_releasable, session, undated, today=date(2026, 1, 1)) == (
        "lot L-NO-EXPIRY has no expiry date; a lot is released only with one")


def test_donor_without_a_consent_row_stops_the_lot(session, chain):
    # The services never make such a lot (no cell bank without a consent); a consent
    # row lost behind the application's back (a partial restore, a hand edit) must
    # still stop every use of the lot, naming the donor.
    lot = chain["lot"]
    check_lot_consent(session, lot, purpose="release it")
    session.execute(sa.delete(Consent.__table__))
    with pytest.raises(ConsentError) as info:
        check_lot_consent(session, lot, purpose=f"release lot {lot.number}")
    assert str(info.value) == ("donor D-001 has no recorded consent; cannot release lot "
                               f"{lot.number}")
