"""Workflow rules that hold across lots: genealogy, expiry, and who may release.

Each finding that the records once accepted is a test here (SQLite and
PostgreSQL): a split of a rejected pool released; a lot under an OOS
investigation pooled and split; a pool without expiry, or expiring after its
parents, released; the verifier releasing the lot they verified. Every user
is a different person with one role (``record_users``).
"""

from __future__ import annotations

from datetime import date

import pytest

from _db_fixtures import TEST_PASSWORD
from exotrace.errors import PermissionDenied, RuleViolation
from exotrace.records import (
    Lot,
    add_measurement,
    check_releasable,
    close_investigation,
    create_lot,
    get_settings,
    pool_lots,
    release_lot,
    set_lot_status,
    split_lot,
    submit_for_release,
    verify_lot,
)
from exotrace.records import repositories as repo

from .conftest import build_source, enter_release_results, make_lot

_MEASURED = (("size_d50", 121.0, "nm", "NTA"),
             ("particle_concentration", 1.0e11, "particles/mL", "NTA"),
             ("particle_protein_ratio", 3.0e10, "particles/ug", "calculated"),
             ("protein_concentration", 1.0e11 / 3.0e10, "ug/mL", "BCA"))


def _lot(session, number) -> Lot:
    return repo.get_by(session, Lot, number=number)


def _ready(session, analyst, number, *, endotoxin=0.12):
    """Measurements and passing release results for a lot made from other lots."""
    for attribute, value, unit, method in _MEASURED:
        add_measurement(session, analyst, number, attribute=attribute, value=value, unit=unit,
                        method=method)
    return enter_release_results(session, analyst, number, endotoxin=endotoxin)


@pytest.fixture
def two_lots(session, record_users, spec_record):
    """Lots WA (expires 2028-03-01) and WB (2028-01-15), measured, release results entered."""
    analyst = record_users["analyst"]
    iso = build_source(session, analyst)
    make_lot(session, analyst, "WA", iso)
    create_lot(session, analyst, "WB", isolation_code=iso, intended_use="clinical_manufacturing",
               manufactured_on=date(2025, 3, 2), expires_on=date(2028, 1, 15), volume_ml=2.0)
    _ready(session, analyst, "WB")
    enter_release_results(session, analyst, "WA")
    return "WA", "WB"


def _release(session, users, number):
    submit_for_release(session, users["analyst"], number)
    verify_lot(session, users["reviewer"], TEST_PASSWORD, number)
    return release_lot(session, users["qa"], TEST_PASSWORD, number)


# ---------------------------------------------------------------- genealogy

def test_split_of_a_rejected_pool_is_not_released(session, record_users, two_lots):
    users, analyst = record_users, record_users["analyst"]
    pool_lots(session, analyst, "WP", parents={"WA": 1.0, "WB": 1.0},
              manufactured_on=date(2025, 4, 1))
    split_lot(session, analyst, "WP", children={"WP-1": 1.0}, manufactured_on=date(2025, 4, 2))
    _ready(session, analyst, "WP-1")
    set_lot_status(session, analyst, "WP", "rejected", reason="pool contaminated")
    submit_for_release(session, analyst, "WP-1")
    verify_lot(session, users["reviewer"], TEST_PASSWORD, "WP-1")
    with pytest.raises(RuleViolation, match=r"lot WP \(an ancestor\) is rejected; cannot "
                                            r"release lot WP-1"):
        release_lot(session, users["qa"], TEST_PASSWORD, "WP-1")
    assert _lot(session, "WP-1").status.value == "awaiting_release"
    # and the rejected pool is split no more
    with pytest.raises(RuleViolation, match="lot WP is rejected; cannot split it"):
        split_lot(session, analyst, "WP", children={"WP-2": 0.5},
                  manufactured_on=date(2025, 4, 3))


def test_quarantined_grandparent_blocks_the_release_of_a_grandchild(session, record_users,
                                                                     two_lots):
    users, analyst = record_users, record_users["analyst"]
    pool_lots(session, analyst, "WP", parents={"WA": 1.0, "WB": 1.0},
              manufactured_on=date(2025, 4, 1))
    split_lot(session, analyst, "WP", children={"WP-1": 1.0}, manufactured_on=date(2025, 4, 2))
    _ready(session, analyst, "WP-1")
    set_lot_status(session, analyst, "WA", "quarantined", reason="deviation under review")
    with pytest.raises(RuleViolation, match=r"lot WA \(an ancestor\) is quarantined"):
        _release(session, users, "WP-1")
    # Back in process, the grandparent no longer blocks: the same release goes through.
    set_lot_status(session, analyst, "WA", "in_process", reason="deviation closed, no impact")
    out = release_lot(session, users["qa"], TEST_PASSWORD, "WP-1")
    assert out["status"] == "released"


@pytest.mark.parametrize("conclusion", ["open", "confirmed_oos"])
def test_lot_under_oos_investigation_is_neither_pooled_nor_split(session, record_users,
                                                                 spec_record, conclusion):
    analyst, qa = record_users["analyst"], record_users["qa"]
    iso = build_source(session, analyst)
    make_lot(session, analyst, "WO", iso)
    make_lot(session, analyst, "WK", iso)
    (inv,) = enter_release_results(session, analyst, "WO", endotoxin=0.92)  # limit < 0.5 EU/mL
    if conclusion == "confirmed_oos":
        close_investigation(session, qa, inv.id, conclusion="confirmed_oos", phase="phase_II",
                            summary="process cause")
    with pytest.raises(RuleViolation, match=rf"lot WO has {conclusion} OOS investigation "
                                            rf"OOS-{inv.id} \(endotoxin\); cannot pool it"):
        pool_lots(session, analyst, "WOP", parents={"WO": 1.0, "WK": 1.0},
                  manufactured_on=date(2025, 4, 1))
    with pytest.raises(RuleViolation, match=rf"lot WO has {conclusion} OOS"):
        split_lot(session, analyst, "WO", children={"WO-1": 1.0},
                  manufactured_on=date(2025, 4, 1))
    assert repo.find_by(session, Lot, number="WOP") is None
    assert repo.find_by(session, Lot, number="WO-1") is None


def test_oos_on_a_parent_after_the_split_blocks_the_childs_release(session, record_users,
                                                                   two_lots):
    users, analyst = record_users, record_users["analyst"]
    split_lot(session, analyst, "WB", children={"WB-1": 1.0}, manufactured_on=date(2025, 4, 2))
    _ready(session, analyst, "WB-1")
    from exotrace.records import add_quality_result

    _, inv = add_quality_result(session, analyst, "WB", test="endotoxin", value=0.8,
                                unit="EU/mL")
    assert inv is not None
    with pytest.raises(RuleViolation, match=rf"lot WB \(an ancestor\) has open OOS "
                                            rf"investigation OOS-{inv.id}"):
        _release(session, users, "WB-1")
    # An investigation closed as a laboratory error (with its retest) no longer blocks.
    add_quality_result(session, analyst, "WB", test="endotoxin", value=0.1, unit="EU/mL",
                       retest_of=inv.original_result)
    close_investigation(session, users["qa"], inv.id, conclusion="lab_error", phase="phase_I",
                        summary="pipetting error")
    assert release_lot(session, users["qa"], TEST_PASSWORD, "WB-1")["status"] == "released"


# ---------------------------------------------------------------- expiry

def test_pool_expires_with_its_earliest_parent(session, record_users, two_lots):
    analyst = record_users["analyst"]
    pool = pool_lots(session, analyst, "WP", parents={"WA": 1.0, "WB": 1.0},
                     manufactured_on=date(2025, 4, 1))
    assert pool.expires_on == date(2028, 1, 15)  # WB's, the earlier of 2028-03-01 and -01-15
    with pytest.raises(RuleViolation, match=r"expiry 2028-01-16 is after its earliest "
                                            r"parent's \(2028-01-15\)"):
        pool_lots(session, analyst, "WQ", parents={"WA": 0.5, "WB": 0.5},
                  manufactured_on=date(2025, 4, 1), expires_on=date(2028, 1, 16))
    same_day = pool_lots(session, analyst, "WR", parents={"WA": 0.2, "WB": 0.2},
                         manufactured_on=date(2025, 4, 1), expires_on=date(2028, 1, 15))
    assert same_day.expires_on == date(2028, 1, 15)


def test_split_expires_with_its_parent_and_grandparents(session, record_users, two_lots):
    analyst = record_users["analyst"]
    pool_lots(session, analyst, "WP", parents={"WA": 1.0, "WB": 1.0},
              manufactured_on=date(2025, 4, 1), expires_on=date(2027, 6, 1))
    (child,) = split_lot(session, analyst, "WP", children={"WP-1": 1.0},
                         manufactured_on=date(2025, 4, 2))
    assert child.expires_on == date(2027, 6, 1)
    with pytest.raises(RuleViolation, match=r"after its earliest parent's \(2027-06-01\)"):
        split_lot(session, analyst, "WP", children={"WP-2": 0.5},
                  manufactured_on=date(2025, 4, 2), expires_on=date(2027, 6, 2))


def test_release_needs_an_expiry_date(session, record_users, spec_record):
    users, analyst = record_users, record_users["analyst"]
    iso = build_source(session, analyst)
    create_lot(session, analyst, "WN", isolation_code=iso, intended_use="clinical_manufacturing",
               manufactured_on=date(2025, 3, 1), volume_ml=2.0)
    _ready(session, analyst, "WN")
    with pytest.raises(RuleViolation, match="lot WN has no expiry date; a lot is released only"):
        _release(session, users, "WN")
    assert _lot(session, "WN").status.value == "awaiting_release"


def test_expiry_day_itself_is_releasable_the_day_after_is_not(session, record_users, qlot):
    lot = _lot(session, qlot)  # expires 2028-03-01
    check_releasable(session, lot, today=date(2028, 3, 1))
    with pytest.raises(RuleViolation, match="expired on 2028-03-01"):
        check_releasable(session, lot, today=date(2028, 3, 2))


# ---------------------------------------------------------------- who releases

def test_verifier_may_not_release_by_default(session, record_users, qlot, monkeypatch):
    monkeypatch.delenv("EXOTRACE_ALLOW_VERIFIER_RELEASE", raising=False)
    assert get_settings().allow_verifier_release is False
    users = record_users
    submit_for_release(session, users["analyst"], qlot)
    verify_lot(session, users["qa"], TEST_PASSWORD, qlot)  # QA may review...
    with pytest.raises(PermissionDenied, match=r"user qa1 verified lot QL-1 .* may not also "
                                               r"release it"):
        release_lot(session, users["qa"], TEST_PASSWORD, qlot)  # ...but not also release
    assert _lot(session, qlot).status.value == "awaiting_release"
    # another QA user releases what qa1 verified
    assert release_lot(session, users["qa2"], TEST_PASSWORD, qlot)["status"] == "released"


def test_verifier_release_is_a_setting(session, record_users, qlot, monkeypatch):
    monkeypatch.setenv("EXOTRACE_ALLOW_VERIFIER_RELEASE", "true")
    users = record_users
    submit_for_release(session, users["analyst"], qlot)
    verify_lot(session, users["qa"], TEST_PASSWORD, qlot)
    assert release_lot(session, users["qa"], TEST_PASSWORD, qlot)["status"] == "released"


def test_expiry_bound_reaches_past_a_parent_with_a_later_expiry(session, record_users,
                                                                two_lots):
    from exotrace.records import acting_as, change_reason

    analyst = record_users["analyst"]
    pool = pool_lots(session, analyst, "WP", parents={"WA": 1.0, "WB": 1.0},
                     manufactured_on=date(2025, 4, 1))
    # a record from before the bound existed: the pool says it keeps longer than WB
    with acting_as(session, record_users["qa"]), change_reason(session, "legacy expiry"):
        pool.expires_on = date(2029, 1, 1)
        session.flush()
    with pytest.raises(RuleViolation, match=r"after its earliest parent's \(2028-01-15\)"):
        split_lot(session, analyst, "WP", children={"WP-1": 0.5},
                  manufactured_on=date(2025, 4, 2), expires_on=date(2028, 6, 1))
    (child,) = split_lot(session, analyst, "WP", children={"WP-2": 0.5},
                         manufactured_on=date(2025, 4, 2))
    assert child.expires_on == date(2028, 1, 15)


def test_parents_without_expiry_leave_the_pools_expiry_as_given(session, record_users,
                                                                spec_record):
    analyst = record_users["analyst"]
    iso = build_source(session, analyst)
    for number in ("WX", "WY"):
        create_lot(session, analyst, number, isolation_code=iso,
                   intended_use="clinical_manufacturing", manufactured_on=date(2025, 3, 1),
                   volume_ml=2.0)
    derived = pool_lots(session, analyst, "WXY", parents={"WX": 1.0, "WY": 1.0},
                        manufactured_on=date(2025, 4, 1))
    assert derived.expires_on is None  # nothing to derive from; its release will need one
    given = pool_lots(session, analyst, "WXY2", parents={"WX": 0.5, "WY": 0.5},
                      manufactured_on=date(2025, 4, 1), expires_on=date(2027, 1, 1))
    assert given.expires_on == date(2027, 1, 1)


def test_child_expiry_refusal_word_for_word(session, record_users, two_lots):
    with pytest.raises(RuleViolation) as info:
        pool_lots(session, record_users["analyst"], "WQ", parents={"WA": 0.5, "WB": 0.5},
                  manufactured_on=date(2025, 4, 1), expires_on=date(2028, 2, 1))
    assert str(info.value) == ("lot WQ: expiry 2028-02-01 is after its earliest parent's "
                               "(2028-01-15); a lot made from other lots expires with them at "
                               "the latest")


def test_withdrawn_donor_consent_stops_the_release_and_names_the_consent(session, record_users,
                                                                         two_lots):
    from exotrace.errors import ConsentError
    from exotrace.records import check_lot_consent, withdraw_consent

    lot = _lot(session, "WA")
    check_lot_consent(session, lot, purpose="release lot WA")  # valid: no refusal
    consent = withdraw_consent(session, record_users["analyst"], "QD-1",
                               withdrawn_on=date(2025, 6, 1), reason="letter")
    with pytest.raises(ConsentError) as info:
        check_lot_consent(session, lot, purpose="release lot WA")
    assert str(info.value) == (f"donor QD-1: consent {consent.id} (version v1) was withdrawn "
                               "on 2025-06-01; cannot release lot WA")


def test_consent_scope_refusal_names_what_the_consent_covers(session, record_users, two_lots):
    from exotrace.errors import ConsentError
    from exotrace.records import check_lot_consent

    with pytest.raises(ConsentError) as info:
        check_lot_consent(session, _lot(session, "WA"), purpose="make a serum", use="cosmetic")
    assert str(info.value).endswith("(version v1) covers clinical_manufacturing, research, not "
                                    "cosmetic; cannot make a serum")
    assert str(info.value).startswith("donor QD-1: consent ")
