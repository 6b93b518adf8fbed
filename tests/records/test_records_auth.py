"""Users, roles, passwords, electronic signatures and segregation of duties."""

import hashlib

import pytest

from _db_fixtures import TEST_PASSWORD
from exotrace.errors import AuthError, Conflict, InvalidInput, PermissionDenied, RuleViolation
from exotrace.records import (
    Permission,
    Role,
    add_measurement,
    add_user,
    authenticate,
    check_not_author,
    check_segregation,
    record_image,
    require_permission,
    set_lot_status,
    set_user_active,
    sign,
    signature_is_current,
)
from exotrace.records import repositories as repo


def test_bootstrap_creates_only_a_first_admin(session, test_password_hash):
    with pytest.raises(PermissionDenied, match="first user"):
        add_user(session, "ann", Role.ANALYST, password_hash=test_password_hash)
    admin = add_user(session, "root", Role.ADMIN, password_hash=test_password_hash)
    entry = repo.audit_entries(session, table_name="user_account")[0]
    assert entry.actor_name == "bootstrap" and entry.actor_id is None
    with pytest.raises(AuthError, match="acting admin"):
        add_user(session, "bob", Role.ANALYST, password_hash=test_password_hash)
    bob = add_user(session, "bob", Role.ANALYST, password_hash=test_password_hash, acting=admin)
    with pytest.raises(PermissionDenied, match="bob .role analyst. may not add users"):
        add_user(session, "eve", Role.ADMIN, password_hash=test_password_hash, acting=bob)
    with pytest.raises(Conflict, match="already exists"):
        add_user(session, "bob", Role.VIEWER, password_hash=test_password_hash, acting=admin)


def test_passwords_are_argon2_and_checked(session):
    admin = add_user(session, "root", Role.ADMIN, password="long-enough-1")
    assert admin.password_hash.startswith("$argon2id$")
    assert "long-enough-1" not in admin.password_hash
    assert authenticate(session, "root", "long-enough-1").id == admin.id
    with pytest.raises(AuthError, match="wrong password"):
        authenticate(session, "root", "long-enough-2")
    with pytest.raises(AuthError, match="unknown user or wrong password"):
        authenticate(session, "nobody", "long-enough-1")
    with pytest.raises(InvalidInput, match="at least 12"):
        add_user(session, "shorty", Role.VIEWER, password="short", acting=admin)


def test_inactive_user_cannot_log_in(session, record_users):
    set_user_active(session, record_users["admin"], "viewer1", False)
    with pytest.raises(AuthError, match="inactive"):
        authenticate(session, "viewer1", TEST_PASSWORD)


def test_role_permissions(record_users):
    require_permission(record_users["qa"], Permission.APPROVE)
    with pytest.raises(PermissionDenied, match="reviewer1 .role reviewer. may not approve"):
        require_permission(record_users["reviewer"], Permission.APPROVE)
    with pytest.raises(PermissionDenied):
        require_permission(record_users["viewer"], Permission.ENTER_RESULTS)


def test_signature_binds_name_meaning_time_and_content(session, chain, record_users):
    qa, lot = record_users["qa"], chain["lot"]
    sig = sign(session, qa, TEST_PASSWORD, lot, "review")
    assert sig.printed_name == "Qa One (qa1)"
    assert sig.meaning.value == "review" and sig.signed_at.tzinfo is not None
    assert sig.table_name == "lot" and sig.record_id == lot.id
    expected = hashlib.sha256(record_image(session, lot).encode()).hexdigest()
    assert sig.content_sha256 == expected
    assert signature_is_current(session, sig, lot)
    # A later (legitimate) change of the record no longer matches the signature.
    set_lot_status(session, record_users["analyst"], lot.number, "awaiting_release",
                   reason="ready")
    assert not signature_is_current(session, sig, lot)
    assert repo.signatures_for(session, "lot", lot.id) == [sig]


def test_signing_requires_password_and_authority(session, chain, record_users):
    with pytest.raises(AuthError, match="wrong password"):
        sign(session, record_users["qa"], "not-the-password", chain["lot"], "approval")
    with pytest.raises(PermissionDenied, match="may not sign for approval"):
        sign(session, record_users["reviewer"], TEST_PASSWORD, chain["lot"], "approval")
    with pytest.raises(PermissionDenied, match="viewer"):
        sign(session, record_users["viewer"], TEST_PASSWORD, chain["lot"], "authorship")


def test_segregation_of_duties(session, chain, record_users):
    lot = chain["lot"]
    m = add_measurement(session, record_users["analyst2"], lot.number,
                        attribute="protein_concentration", value=120.0, unit="ug/mL",
                        method="BCA")
    # analyst1 created the lot, analyst2 entered a result: neither may release it.
    with pytest.raises(PermissionDenied, match="analyst1 created lot"):
        check_segregation(session, record_users["analyst"], lot, action="release")
    with pytest.raises(PermissionDenied, match=r"analyst2 entered measurement \d+"):
        check_segregation(session, record_users["analyst2"], lot, action="verify")
    check_segregation(session, record_users["qa"], lot, action="release")  # independent
    with pytest.raises(PermissionDenied, match="analyst2 wrote measurement"):
        check_not_author(session, record_users["analyst2"], m, action="verify")
    check_not_author(session, record_users["reviewer"], m, action="verify")


def test_release_enforces_role_order_and_four_eyes(session, chain, record_users):
    lot = chain["lot"]
    # A bare status change never releases: only the release workflow may.
    with pytest.raises(RuleViolation, match="only through the release workflow"):
        set_lot_status(session, record_users["qa"], lot.number, "released", reason="x")
    with pytest.raises(Exception, match="cannot become released"):
        set_lot_status(session, record_users["qa"], lot.number, "released", reason="x",
                       release_workflow=True)
    set_lot_status(session, record_users["analyst"], lot.number, "awaiting_release", reason="done")
    with pytest.raises(PermissionDenied, match="may not release"):
        set_lot_status(session, record_users["analyst"], lot.number, "released", reason="x",
                       release_workflow=True)
    # qa1 changed nothing of the lot's data: allowed.
    released = set_lot_status(session, record_users["qa"], lot.number, "released",
                              reason="meets specification", release_workflow=True)
    assert released.status.value == "released"
