"""Accounts, signatures and segregation: the edges mutation testing found unpinned.

Each test fails when one rule of :mod:`exotrace.records._auth` is loosened:
an inactive account keeping its rights, a password one character short,
signing something that cannot be signed, a signature that follows another
record, or a person who changed a result (without entering it) verifying it.
"""

from __future__ import annotations

import pytest
from argon2 import PasswordHasher

from _db_fixtures import TEST_PASSWORD
from exotrace.errors import AuthError, InvalidInput, PermissionDenied
from exotrace.records import (
    MIN_PASSWORD_LENGTH,
    Measurement,
    Permission,
    Role,
    Signature,
    User,
    acting_as,
    add_measurement,
    add_storage,
    add_user,
    change_reason,
    check_not_author,
    check_segregation,
    has_permission,
    lot_data_producers,
    set_user_active,
    sign,
    signature_is_current,
)


@pytest.fixture(autouse=True)
def _cheap_argon2(monkeypatch):
    monkeypatch.setattr("exotrace.records._auth._hasher",
                        PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1))


def test_permission_needs_an_active_account_with_the_role(session, record_users):
    admin, qa, analyst = record_users["admin"], record_users["qa"], record_users["analyst"]
    assert has_permission(qa, Permission.APPROVE) is True
    assert has_permission(analyst, Permission.APPROVE) is False
    set_user_active(session, admin, "qa1", False)
    assert has_permission(qa, Permission.APPROVE) is False
    with pytest.raises(PermissionDenied) as info:
        set_user_active(session, analyst, "qa2", False)
    assert str(info.value) == ("user analyst1 (role analyst) may not change user accounts; "
                               "needs permission manage_users")


def test_password_length_boundary(session, record_users):
    assert MIN_PASSWORD_LENGTH == 12
    add_user(session, "twelve", Role.VIEWER, password="quiet-lab-42",
             acting=record_users["admin"])
    with pytest.raises(InvalidInput, match=r"at least 12 characters \(it has 11\)"):
        add_user(session, "eleven", Role.VIEWER, password="quiet-lab-4",
                 acting=record_users["admin"])


def test_sign_checks_identity_and_what_can_be_signed(session, record_users, chain):
    qa = record_users["qa"]
    impostor = User(id=qa.id + 1000, username="qa1", full_name="Q", role=Role.QA,
                    password_hash=qa.password_hash, active=True)
    with pytest.raises(AuthError) as info:
        sign(session, impostor, TEST_PASSWORD, chain["lot"], "approval")
    assert str(info.value) == "user qa1: identity mismatch"
    with pytest.raises(InvalidInput) as info:
        sign(session, qa, TEST_PASSWORD, object(), "approval")
    assert str(info.value) == "object records cannot be signed"
    first = sign(session, qa, TEST_PASSWORD, chain["lot"], "approval")
    with pytest.raises(InvalidInput) as info:  # a signature is never signed (immutable)
        sign(session, qa, TEST_PASSWORD, first, "approval")
    assert str(info.value) == "Signature records cannot be signed"


def test_sign_a_record_not_yet_flushed_binds_its_new_id(session, record_users, chain):
    analyst = record_users["analyst"]
    from exotrace.records import Storage

    with acting_as(session, analyst):
        storage = Storage(lot_id=chain["lot"].id, buffer="PBS", temperature_c=-80.0,
                          container="vial", location="F1")
        session.add(storage)
        sig = sign(session, analyst, TEST_PASSWORD, storage, "authorship")
    assert storage.id is not None and sig.record_id == storage.id
    assert signature_is_current(session, sig, storage)


def test_signature_belongs_to_one_record(session, record_users, chain):
    analyst = record_users["analyst"]
    one = add_storage(session, analyst, chain["lot"].number, buffer="PBS", temperature_c=-80,
                      container="vial", location="F1")
    two = add_storage(session, analyst, chain["lot"].number, buffer="PBS", temperature_c=-80,
                      container="vial", location="F1")
    sig = sign(session, analyst, TEST_PASSWORD, one, "authorship")
    assert isinstance(sig, Signature) and signature_is_current(session, sig, one)
    assert not signature_is_current(session, sig, two)            # same table, other record
    assert not signature_is_current(session, sig, chain["lot"])   # another table


def _change(session, user, m: Measurement, value: float):
    with acting_as(session, user), change_reason(session, "transcription corrected"):
        m.value = value
        session.flush()


def test_whoever_changed_a_result_is_a_producer_and_may_not_verify_it(session, record_users,
                                                                      chain):
    lot, analyst = chain["lot"], record_users["analyst"]
    m = add_measurement(session, analyst, lot.number, attribute="size_mode", value=104.5,
                        unit="nm", method="NTA")
    reviewer = record_users["reviewer"]
    _change(session, reviewer, m, 105.5)  # a reviewer who edits is no longer independent
    producers = lot_data_producers(session, lot)
    assert producers[reviewer.id] == f"changed a measurement of lot {lot.number}"
    with pytest.raises(PermissionDenied) as info:
        check_segregation(session, reviewer, lot, action="verify")
    assert str(info.value) == (f"user reviewer1 changed a measurement of lot {lot.number}; the "
                               "same person may not verify it (segregation of duties)")
    with pytest.raises(PermissionDenied) as info:
        check_not_author(session, reviewer, m, action="verify")
    assert str(info.value) == (f"user reviewer1 wrote measurement {m.id}; the same person may "
                               "not verify it (segregation of duties)")
    check_not_author(session, record_users["qa"], m, action="verify")


def test_the_recorded_enterer_is_an_author_even_when_someone_else_typed_it(session,
                                                                          record_users, chain):
    lot = chain["lot"]
    analyst, analyst2 = record_users["analyst"], record_users["analyst2"]
    # analyst1 types in a result that analyst2 measured and is recorded as entering
    with acting_as(session, analyst):
        m = Measurement(lot_id=lot.id, attribute="size_d50", value=121.0, unit="nm",
                        method="NTA", entered_by_id=analyst2.id)
        session.add(m)
        session.flush()
    with pytest.raises(PermissionDenied, match=f"analyst2 wrote measurement {m.id}"):
        check_not_author(session, analyst2, m, action="verify")


def test_an_admin_cannot_deactivate_their_own_account(session, record_users):
    from exotrace.records import Role, add_user

    admin = record_users["admin"]
    with pytest.raises(PermissionDenied) as info:
        set_user_active(session, admin, "admin1", False)
    assert str(info.value) == ("user admin1: an admin cannot deactivate their own account; "
                               "another admin must")
    assert admin.active is True
    # activating oneself is no escalation (an inactive account cannot act anyway)
    assert set_user_active(session, admin, "admin1", True).active is True
    other = add_user(session, "admin2", Role.ADMIN, password="second-admin-key-7",
                     acting=admin)
    assert set_user_active(session, other, "admin1", False).active is False


def test_a_password_reset_revokes_the_users_api_tokens(session, record_users):
    from exotrace.records import authenticate_token, create_token, reset_user_password

    admin, analyst = record_users["admin"], record_users["analyst"]
    token, row = create_token(session, analyst, "instrument")
    other_token, _ = create_token(session, record_users["qa"], "qa script")
    assert authenticate_token(session, token).id == analyst.id
    reset_user_password(session, admin, "analyst1", "temporary-pass-19",
                        reason="password seen on a sticky note")
    assert row.revoked_at is not None
    with pytest.raises(AuthError, match="API token unknown or revoked"):
        authenticate_token(session, token)
    assert authenticate_token(session, other_token).username == "qa1"  # others keep theirs
