"""Release rules of a lot (expiry, lineage, consent), refusals pinned word for word.

Each test fails when one rule of :mod:`exotrace.records._services_lot` is
loosened or its refusal names the wrong cause (found by mutation testing,
docs/reliability.md): the operator reads the message to know what to fix.
"""

from __future__ import annotations

from datetime import date

import pytest

from exotrace.errors import RuleViolation
from exotrace.records import check_releasable, create_lot


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
