"""Accounts, signatures and segregation of duties: rules pinned at their edge.

Each test fails when one rule of :mod:`exotrace.records._auth` is loosened
(found by mutation testing, docs/reliability.md): a signature of one meaning
standing in for another, a signature that no longer matches its record still
counted, the wrong signer's signature accepted, a refusal naming the wrong
cause. Every role is a different person (``record_users``).
"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from argon2 import PasswordHasher

from _db_fixtures import TEST_PASSWORD
from exotrace.errors import AuthError, IntegrityFailure, InvalidInput, PermissionDenied
from exotrace.records import (
    Permission,
    Role,
    Signature,
    Storage,
    User,
    acting_as,
    add_storage,
    add_user,
    authenticate,
    change_password,
    change_reason,
    require_permission,
    require_signature,
    set_user_active,
    sign,
    signature_is_current,
)


@pytest.fixture(autouse=True)
def _cheap_argon2(monkeypatch):
    monkeypatch.setattr("exotrace.records._auth._hasher",
                        PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1))


def _storage(session, analyst, lot_number):
    return add_storage(session, analyst, lot_number, buffer="PBS", temperature_c=-80,
                       container="vial", location="F1")


def _missing(record, meaning: str) -> str:
    return (f"storage {record.id} has no valid {meaning} signature (missing, forged or the "
            "record changed since it was signed)")


def test_required_signature_has_the_meaning_asked_for(session, record_users, chain):
    analyst, reviewer = record_users["analyst"], record_users["reviewer"]
    box = _storage(session, analyst, chain["lot"].number)
    review = sign(session, reviewer, TEST_PASSWORD, box, "review")
    assert require_signature(session, box, "review") is review
    # A current review signature is not an approval.
    with pytest.raises(IntegrityFailure) as info:
        require_signature(session, box, "approval")
    assert str(info.value) == _missing(box, "approval")


def test_required_signature_is_the_newest_by_the_signer_asked_for(session, record_users, chain):
    analyst, reviewer, qa = record_users["analyst"], record_users["reviewer"], record_users["qa"]
    box = _storage(session, analyst, chain["lot"].number)
    by_reviewer = sign(session, reviewer, TEST_PASSWORD, box, "review")
    by_qa = sign(session, qa, TEST_PASSWORD, box, "review")
    assert by_qa.id > by_reviewer.id
    assert require_signature(session, box, "review") is by_qa
    assert require_signature(session, box, "review", signer_id=reviewer.id) is by_reviewer
    assert require_signature(session, box, "review", signer_id=qa.id) is by_qa
    with pytest.raises(IntegrityFailure) as info:
        require_signature(session, box, "review", signer_id=record_users["qa2"].id)
    assert str(info.value) == _missing(box, "review")


def test_required_signature_no_longer_counts_once_the_record_changed(session, record_users,
                                                                     chain):
    analyst, reviewer = record_users["analyst"], record_users["reviewer"]
    box = _storage(session, analyst, chain["lot"].number)
    sign(session, reviewer, TEST_PASSWORD, box, "review")
    with acting_as(session, analyst), change_reason(session, "moved to freezer F2"):
        box.location = "F2"
        session.flush()
    for signer_id in (None, reviewer.id):
        with pytest.raises(IntegrityFailure) as info:
            require_signature(session, box, "review", signer_id=signer_id)
        assert str(info.value) == _missing(box, "review")


def test_signature_with_a_keyed_hash_that_does_not_match_is_not_current(session, record_users,
                                                                        chain):
    analyst, reviewer = record_users["analyst"], record_users["reviewer"]
    box = _storage(session, analyst, chain["lot"].number)
    genuine = sign(session, reviewer, TEST_PASSWORD, box, "review")
    assert signature_is_current(session, genuine, box)
    fields = {name: getattr(genuine, name) for name in (
        "table_name", "record_id", "content_sha256", "user_id", "printed_name", "meaning",
        "signed_at", "key_id", "keyed_hash")}
    # The same content hash, another printed name: the keyed hash no longer covers it.
    altered = Signature(**{**fields, "printed_name": "Qa One (qa1)"})
    assert altered.content_sha256 == genuine.content_sha256
    assert not signature_is_current(session, altered, box)
    assert not signature_is_current(session, Signature(**{**fields, "keyed_hash": None}), box)


def test_new_password_is_checked_against_the_user_name_and_the_old_one(session, record_users):
    with pytest.raises(InvalidInput) as info:
        change_password(session, "analyst1", TEST_PASSWORD, "my-analyst1-secret")
    assert str(info.value) == "password must not contain the user name"
    with pytest.raises(InvalidInput) as info:
        change_password(session, "analyst1", TEST_PASSWORD, TEST_PASSWORD)
    assert str(info.value) == "the new password must differ from the old one"
    before = datetime.now(UTC)
    user = change_password(session, "analyst1", TEST_PASSWORD, "quiet-bench-77")
    assert before <= user.password_changed_at <= datetime.now(UTC)  # the account shows when
    assert authenticate(session, "analyst1", "quiet-bench-77").username == "analyst1"


def test_sign_flushes_a_new_record_itself_to_bind_its_id(session, record_users, chain):
    # Without autoflush, the password check's queries leave the new record unsaved:
    # sign must flush it and bind the id it gets, not sign "no record".
    analyst = record_users["analyst"]
    with acting_as(session, analyst), session.no_autoflush:
        box = Storage(lot_id=chain["lot"].id, buffer="PBS", temperature_c=-80.0,
                      container="vial", location="F3")
        session.add(box)
        assert box.id is None
        sig = sign(session, analyst, TEST_PASSWORD, box, "authorship")
    assert box.id is not None and sig.record_id == box.id
    assert signature_is_current(session, sig, box)
    assert require_signature(session, box, "authorship") is sig


def _refusal(error, call, *args, **kwargs) -> str:
    with pytest.raises(error) as info:
        call(*args, **kwargs)
    return str(info.value)


def test_add_user_refusals_word_for_word(session, test_password_hash):
    h = test_password_hash
    assert _refusal(PermissionDenied, add_user, session, "ann", Role.ANALYST, password_hash=h) \
        == "the first user of a new database must be an admin"
    admin = add_user(session, "root", Role.ADMIN, password_hash=h)
    assert _refusal(AuthError, add_user, session, "bob", Role.ANALYST, password_hash=h) \
        == "adding a user needs an acting admin (--user NAME)"
    assert _refusal(InvalidInput, add_user, session, "Bob", Role.ANALYST, password_hash=h,
                    acting=admin) == ("user name 'Bob': use 2-64 lower-case letters, digits, "
                                      "'_', '.', '-', starting with a letter")
    assert _refusal(InvalidInput, add_user, session, "bob", "chef", password_hash=h,
                    acting=admin) == ("role 'chef' unknown; choose one of "
                                      + ", ".join(r.value for r in Role))
    assert _refusal(InvalidInput, add_user, session, "bob", Role.ANALYST, acting=admin) \
        == "a password is required"
    assert _refusal(InvalidInput, add_user, session, "bob", Role.ANALYST,
                    password="bob-at-the-bench-7", acting=admin) \
        == "password must not contain the user name"


def test_full_name_length_boundary_and_new_account_state(session, test_password_hash):
    admin = add_user(session, "root", Role.ADMIN, password_hash=test_password_hash)
    longest = User.__table__.c.full_name.type.length
    user = add_user(session, "fay", Role.QA, password_hash=test_password_hash, acting=admin,
                    full_name="F" * longest)
    assert user.full_name == "F" * longest
    assert user.active is True and user.must_change_password is True
    session.expire(user)
    assert user.active is True  # as stored
    assert _refusal(InvalidInput, add_user, session, "gus", Role.QA,
                    password_hash=test_password_hash, acting=admin,
                    full_name="G" * (longest + 1)) == f"full name: at most {longest} characters"


def test_require_permission_refusals_word_for_word(session, record_users):
    analyst, viewer = record_users["analyst"], record_users["viewer"]
    assert _refusal(PermissionDenied, require_permission, viewer, Permission.ENTER_RESULTS) \
        == "user viewer1 (role viewer) may not enter results; needs permission enter_results"
    require_permission(analyst, Permission.ENTER_RESULTS)
    set_user_active(session, record_users["admin"], "analyst1", False)
    assert _refusal(AuthError, require_permission, analyst, Permission.ENTER_RESULTS) \
        == "user analyst1 is inactive"
