"""The audit trail: automatic entries, actor and reason rules, hash chain, tamper detection."""

import hashlib
import json
from datetime import date

import pytest
import sqlalchemy as sa

from _db_fixtures import TEST_PASSWORD
from exotrace.errors import AuthError, RuleViolation
from exotrace.records import (
    GENESIS_HASH,
    AuditEntry,
    Donor,
    Lot,
    acting_as,
    audited_tables,
    canonical_json,
    change_reason,
    create_vials,
    sign,
    verify_audit_trail,
)
from exotrace.records import repositories as repo


def _entries(session, table=None, pk=None):
    return repo.audit_entries(session, table_name=table, record_pk=pk)


def test_every_write_is_audited_with_images(session, record_users):
    analyst = record_users["analyst"]
    with acting_as(session, analyst):
        donor = Donor(code="D-9", age_band="40-49", sex="male")
        session.add(donor)
        session.flush()
        with change_reason(session, "age band mistyped"):
            donor.age_band = "50-59"
        with change_reason(session, "duplicate entry"):
            session.delete(donor)
    created, updated, deleted = _entries(session, "donor", str(donor.id))
    assert [e.action.value for e in (created, updated, deleted)] == ["create", "update", "delete"]
    assert all(e.actor_name == "analyst1" and e.actor_id == analyst.id
               for e in (created, updated, deleted))
    assert created.before_json is None
    assert json.loads(created.after_json)["age_band"] == "40-49"
    assert json.loads(updated.before_json)["age_band"] == "40-49"
    assert json.loads(updated.after_json)["age_band"] == "50-59"
    assert updated.reason == "age band mistyped"
    assert json.loads(deleted.before_json)["code"] == "D-9" and deleted.after_json is None
    assert created.at.tzinfo is not None and created.at.utcoffset().total_seconds() == 0
    assert verify_audit_trail(session).ok


def test_write_without_acting_user_is_refused(session, record_users):
    session.add(Donor(code="D-X", age_band="20-29", sex="female"))
    with pytest.raises(AuthError, match="no acting user"):
        session.flush()
    session.rollback()


def test_gmp_change_needs_reason_but_creation_does_not(session, chain, record_users):
    lot = chain["lot"]
    with acting_as(session, record_users["analyst"]):
        lot.volume_ml = 9.0
        with pytest.raises(RuleViolation, match=r"change of lot \d+ needs a reason"):
            session.flush()
    session.rollback()


def test_user_accounts_are_not_gmp(session, record_users):
    viewer = record_users["viewer"]
    with acting_as(session, record_users["admin"]):
        viewer.full_name = "Vera Viewer"
        session.flush()  # no reason needed for account data
    assert _entries(session, "user_account", str(viewer.id))[-1].action.value == "update"


def test_signatures_are_permanent(session, chain, record_users):
    sig = sign(session, record_users["qa"], TEST_PASSWORD, chain["lot"], "review")
    with pytest.raises(RuleViolation, match=r"signature \d+ cannot be changed"):
        with acting_as(session, record_users["admin"]), change_reason(session, "oops"):
            sig.meaning = "approval"
    session.rollback()


def test_chain_hashes_recompute_by_hand(session, chain):
    entries = _entries(session)
    assert entries[0].seq == 1 and entries[0].prev_hash == GENESIS_HASH
    for prev, e in zip(entries, entries[1:], strict=False):
        assert e.seq == prev.seq + 1 and e.prev_hash == prev.entry_hash
    e = entries[-1]
    payload = {"seq": e.seq, "table": e.table_name, "record": e.record_pk,
               "action": e.action.value, "actor_id": e.actor_id, "actor": e.actor_name,
               "at": e.at.isoformat(), "reason": e.reason, "before": e.before_json,
               "after": e.after_json, "prev_hash": e.prev_hash}
    assert hashlib.sha256(canonical_json(payload).encode()).hexdigest() == e.entry_hash


def test_bulk_vials_are_audited_one_entry_each(session, chain, record_users):
    before = len(_entries(session))
    ids = create_vials(session, record_users["analyst"], chain["lot"].number, 250)
    vial_entries = _entries(session, "vial")
    assert len(vial_entries) == 250 and len(_entries(session)) == before + 250
    assert {json.loads(e.after_json)["identifier"] for e in vial_entries} == set(ids)
    assert verify_audit_trail(session).ok


def _raw(session, sql, **params):
    session.connection().execute(sa.text(sql), params)


def test_verify_names_a_row_edited_behind_the_application(session, chain):
    lot = chain["lot"]
    _raw(session, "UPDATE lot SET volume_ml = 99 WHERE id = :id", id=lot.id)
    report = verify_audit_trail(session)
    last = _entries(session, "lot", str(lot.id))[-1]
    assert [(f.kind, f.table, f.record, f.seq) for f in report.findings] == \
        [("row_changed", "lot", str(lot.id), last.seq)]
    assert "volume_ml" in report.findings[0].message


def test_verify_names_a_row_deleted_behind_the_application(session, chain, record_users):
    create_vials(session, record_users["analyst"], chain["lot"].number, 3)
    vial_id = session.execute(sa.text("SELECT max(id) FROM vial")).scalar()
    _raw(session, "DELETE FROM vial WHERE id = :id", id=vial_id)
    report = verify_audit_trail(session)
    assert [(f.kind, f.table, f.record) for f in report.findings] == \
        [("row_deleted", "vial", str(vial_id))]


def test_verify_names_a_row_inserted_behind_the_application(session, chain):
    _raw(session, "INSERT INTO donor (id, code, age_band, sex, created_at) "
                  "VALUES (9999, 'GHOST', '20-29', 'male', :t)", t="2025-01-01 00:00:00")
    report = verify_audit_trail(session)
    assert [(f.kind, f.table, f.record) for f in report.findings] == \
        [("row_unaudited", "donor", "9999")]


def test_verify_names_an_altered_audit_entry(session, chain):
    if session.bind.dialect.name == "postgresql":
        pytest.skip("PostgreSQL triggers forbid the edit itself (tested in migrations)")
    target = _entries(session, "lot")[0]
    _raw(session, "UPDATE audit_entry SET actor_name = 'mallory' WHERE seq = :s", s=target.seq)
    report = verify_audit_trail(session)
    assert [(f.kind, f.seq) for f in report.findings] == [("hash_mismatch", target.seq)]


def test_verify_names_a_removed_audit_entry(session, chain):
    if session.bind.dialect.name == "postgresql":
        pytest.skip("PostgreSQL triggers forbid the delete itself (tested in migrations)")
    target = _entries(session, "collection")[0]
    _raw(session, "DELETE FROM audit_entry WHERE seq = :s", s=target.seq)
    kinds = {(f.kind, f.seq) for f in verify_audit_trail(session).findings}
    # the gap, the broken link of the next entry, and the now-unaudited collection row
    assert ("missing_entry", target.seq + 1) in kinds
    assert ("broken_link", target.seq + 1) in kinds
    assert any(k == "row_unaudited" for k, _ in kinds)


def test_every_model_is_audited_except_the_trail():
    names = {t.name for t in audited_tables()}
    assert "audit_entry" not in names
    assert {"donor", "consent", "lot", "lot_link", "vial", "measurement", "signature",
            "user_account"} <= names


def test_audit_entries_cannot_be_forked(session, chain):
    head = _entries(session)[-1]
    dup = {"seq": head.seq + 1, "table_name": "x", "record_pk": "1", "action": "create",
           "actor_id": None, "actor_name": "x", "at": head.at, "reason": None,
           "before_json": None, "after_json": None, "prev_hash": head.prev_hash,
           "entry_hash": "f" * 64}
    with pytest.raises(sa.exc.IntegrityError):
        with session.begin_nested():
            session.connection().execute(sa.insert(AuditEntry.__table__), dup)


def test_lot_reason_flows_into_entry(session, chain, record_users):
    from exotrace.records import set_lot_status

    set_lot_status(session, record_users["analyst"], chain["lot"].number, "awaiting_release",
                   reason="all results entered")
    last = _entries(session, "lot", str(chain["lot"].id))[-1]
    assert last.reason == "all results entered"
    assert json.loads(last.after_json)["status"] == "awaiting_release"
    assert session.get(Lot, chain["lot"].id).manufactured_on == date(2025, 3, 1)
