"""The insider attacks of the threat model (docs/security.md), each run for real.

Every test plays an attacker who can write the database directly (sqlite3 on
the file, psycopg as the PostgreSQL owner or application role) or run the
library without a password or the server's keys, and shows that the chain
alone does not notice (``verify_audit_trail`` still says intact) while the
protections do (checkpoints, keyed signatures, account-row check, roles).
Both backends; PostgreSQL uses the two-role setup of ``tests/_db_fixtures.py``.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
from datetime import UTC, datetime

import pytest
import sqlalchemy as sa
from argon2 import PasswordHasher
from sqlalchemy.engine import make_url

from _db_fixtures import TEST_PASSWORD, owner_url
from conftest import build_chain
from exotrace.errors import IntegrityFailure
from exotrace.records import (
    AuditEntry,
    Donor,
    Lot,
    LotDisposition,
    LotStatus,
    Role,
    Signature,
    SignatureMeaning,
    User,
    acting_as,
    add_consent,
    add_donor,
    add_user,
    authenticate,
    change_reason,
    checkpoint_now,
    generate_checkpoint_keys,
    make_engine,
    record_image,
    set_actor,
    sign,
    unit_of_work,
    verify_audit_trail,
    verify_records,
)
from exotrace.records import repositories as repo
from exotrace.records._models_quality import DispositionAction

# ----------------------------------------------------------------------------- set-up

def _seed(url: str, pw_hash: str) -> None:
    """Users and a donor-to-lot chain, committed (the attacks then work on the stored data)."""
    engine = make_engine(url)
    try:
        with unit_of_work(engine) as s:
            admin = add_user(s, "admin1", Role.ADMIN, password_hash=pw_hash)
            users = {"admin": admin}
            for name, role in (("analyst1", Role.ANALYST), ("qa1", Role.QA)):
                users[role.value] = add_user(s, name, role, password_hash=pw_hash, acting=admin)
            for user in users.values():
                with acting_as(s, user):
                    user.must_change_password = False
                    s.flush()
            build_chain(s, users)
    finally:
        engine.dispose()


def _user(s, name: str) -> User:
    return repo.get_by(s, User, username=name)


def _write(url: str, fn) -> None:
    engine = make_engine(url)
    try:
        with unit_of_work(engine) as s:
            fn(s)
    finally:
        engine.dispose()


def _read(url: str, fn):
    engine = make_engine(url)
    try:
        with unit_of_work(engine) as s:
            return fn(s)
    finally:
        engine.dispose()


@pytest.fixture
def keys(tmp_path):
    private, public = generate_checkpoint_keys(tmp_path / "keys" / "checkpoint.key")
    return private, public, tmp_path / "checkpoints"


def _checkpoint(url, keys):
    private, _, directory = keys
    return _read(url, lambda s: checkpoint_now(s, private, directory)[1])


def _verify(url, keys):
    _, public, directory = keys
    return _read(url, lambda s: verify_records(s, checkpoint_dir=directory, public_key=public))


def _kinds(report):
    return sorted({f.kind for f in report.findings})


# ----------------------------------------------------------------------------- attacker

class Attacker:
    """Direct database access with the DB-API driver: no exotrace code at all."""

    def __init__(self, url: str):
        u = make_url(url)
        self.sqlite = u.get_backend_name() == "sqlite"
        if self.sqlite:
            self.conn = sqlite3.connect(u.database)
        else:
            import psycopg

            self.conn = psycopg.connect(host=u.host, port=u.port or 5432, user=u.username,
                                        dbname=u.database)

    def run(self, sql: str, params=()):
        cur = self.conn.cursor()
        cur.execute(sql.replace("%s", "?") if self.sqlite else sql, params)
        return cur

    def at_iso(self, value) -> str:
        if isinstance(value, str):  # SQLite keeps naive UTC text
            value = datetime.fromisoformat(value).replace(tzinfo=UTC)
        return value.astimezone(UTC).isoformat()

    def rehash_from(self, seq: int) -> None:
        """Recompute every entry hash from ``seq`` on, as the chain's own rule does."""
        prev = self.run("SELECT entry_hash FROM audit_entry WHERE seq = %s",
                        (seq - 1,)).fetchone()
        prev = prev[0] if prev else "0" * 64
        rows = self.run("SELECT seq, table_name, record_pk, action, actor_id, actor_name, at, "
                        "reason, before_json, after_json FROM audit_entry WHERE seq >= %s "
                        "ORDER BY seq", (seq,)).fetchall()
        for r in rows:
            payload = {"seq": r[0], "table": r[1], "record": r[2], "action": r[3],
                       "actor_id": r[4], "actor": r[5], "at": self.at_iso(r[6]),
                       "reason": r[7], "before": r[8], "after": r[9], "prev_hash": prev}
            text = json.dumps(payload, sort_keys=True, separators=(",", ":"),
                              ensure_ascii=False)
            digest = hashlib.sha256(text.encode("utf-8")).hexdigest()
            self.run("UPDATE audit_entry SET prev_hash = %s, entry_hash = %s WHERE seq = %s",
                     (prev, digest, r[0]))
            prev = digest

    def commit_and_close(self):
        self.conn.commit()
        self.conn.close()


def _owner_attacker(url):
    """The strongest insider: file access on SQLite, the table owner on PostgreSQL."""
    attacker = Attacker(owner_url(url))
    if not attacker.sqlite:
        for table in ("audit_entry", "signature"):
            attacker.run(f"ALTER TABLE {table} DISABLE TRIGGER USER")
    return attacker


def _reenable(attacker):
    if not attacker.sqlite:
        for table in ("audit_entry", "signature"):
            attacker.run(f"ALTER TABLE {table} ENABLE TRIGGER USER")


# ----------------------------------------------------------------------------- attacks

def test_chain_rewrite_with_recomputed_hashes_is_caught_by_checkpoints(
        fresh_db_url, test_password_hash, keys):
    _seed(fresh_db_url, test_password_hash)
    _checkpoint(fresh_db_url, keys)
    _write(fresh_db_url, lambda s: add_donor(s, _user(s, "analyst1"), "D-002",
                                             age_band="40-49", sex="male"))
    _checkpoint(fresh_db_url, keys)
    assert _verify(fresh_db_url, keys).ok  # honest state: two checkpoints confirm

    # The attack: the lot's volume 10 mL -> 12 mL, in the row and in its creation entry,
    # then every later hash recomputed (on PostgreSQL as the owner, triggers off).
    attacker = _owner_attacker(fresh_db_url)
    lot_id, seq, after = attacker.run(
        "SELECT record_pk, seq, after_json FROM audit_entry WHERE table_name = 'lot' "
        "AND action = 'create'").fetchone()
    image = json.loads(after)
    assert image["volume_ml"] == 10.0
    image["volume_ml"] = 12.0
    attacker.run("UPDATE lot SET volume_ml = 12.0 WHERE id = %s", (int(lot_id),))
    attacker.run("UPDATE audit_entry SET after_json = %s WHERE seq = %s",
                 (json.dumps(image, sort_keys=True, separators=(",", ":")), seq))
    attacker.rehash_from(seq)
    _reenable(attacker)
    attacker.commit_and_close()

    # The chain alone is fooled: consistent hashes, rows match their (rewritten) images.
    assert _read(fresh_db_url, verify_audit_trail).ok
    report = _verify(fresh_db_url, keys)
    assert _kinds(report) == ["chain_rewritten"]
    (finding,) = report.findings
    assert finding.seq == seq and f"entry #{seq} differs" in finding.message


def test_deleting_the_newest_entries_with_their_rows_is_caught_as_truncation(
        fresh_db_url, test_password_hash, keys):
    _seed(fresh_db_url, test_password_hash)

    def serious_event(s):
        analyst = _user(s, "analyst1")
        add_donor(s, analyst, "D-009", age_band="50-59", sex="female")
        add_consent(s, analyst, "D-009", scopes=["research"], version="v1",
                    consented_on=datetime(2025, 1, 2).date())

    _write(fresh_db_url, serious_event)
    head = _checkpoint(fresh_db_url, keys)["seq"]

    attacker = _owner_attacker(fresh_db_url)
    first = attacker.run("SELECT min(seq) FROM audit_entry WHERE record_pk IN "
                         "(SELECT CAST(id AS TEXT) FROM donor WHERE code = 'D-009') "
                         "AND table_name = 'donor'").fetchone()[0]
    attacker.run("DELETE FROM consent WHERE donor_id = (SELECT id FROM donor WHERE "
                 "code = 'D-009')")
    attacker.run("DELETE FROM donor WHERE code = 'D-009'")
    attacker.run("DELETE FROM audit_entry WHERE seq >= %s", (first,))
    _reenable(attacker)
    attacker.commit_and_close()

    assert _read(fresh_db_url, verify_audit_trail).ok  # nothing left to compare with
    report = _verify(fresh_db_url, keys)
    assert "chain_truncated" in _kinds(report)
    trunc = next(f for f in report.findings if f.kind == "chain_truncated")
    assert trunc.seq == first and f"#{first}..#{head} were removed" in trunc.message


def test_owner_with_triggers_disabled_then_new_writes_reusing_numbers_is_caught(
        fresh_db_url, test_password_hash, keys):
    """Truncate, then let the application append again: same numbers, other hashes."""
    _seed(fresh_db_url, test_password_hash)
    _write(fresh_db_url, lambda s: add_donor(
        s, _user(s, "analyst1"), "D-010", age_band="20-29", sex="male"))
    _checkpoint(fresh_db_url, keys)
    attacker = _owner_attacker(fresh_db_url)
    seq = attacker.run("SELECT max(seq) FROM audit_entry").fetchone()[0]
    attacker.run("DELETE FROM donor WHERE code = 'D-010'")
    attacker.run("DELETE FROM audit_entry WHERE seq = %s", (seq,))
    _reenable(attacker)
    attacker.commit_and_close()
    _write(fresh_db_url, lambda s: add_donor(
        s, _user(s, "analyst1"), "D-011", age_band="20-29", sex="male"))
    report = _verify(fresh_db_url, keys)
    assert _kinds(report) == ["chain_rewritten"]
    assert report.findings[0].seq == seq


def test_app_role_cannot_modify_the_trail_or_disable_its_triggers(fresh_db_url,
                                                                   test_password_hash):
    if not fresh_db_url.startswith("postgresql"):
        pytest.skip("roles and triggers exist on PostgreSQL only")
    _seed(fresh_db_url, test_password_hash)
    _write(fresh_db_url, lambda s: sign(s, _user(s, "qa1"), TEST_PASSWORD,
        repo.get_by(s, Lot, number="L-D-001-1"), "approval"))
    import psycopg

    app = Attacker(fresh_db_url)
    app.conn.autocommit = True
    for sql in ("UPDATE audit_entry SET reason = 'x'", "DELETE FROM audit_entry",
                "TRUNCATE audit_entry", "UPDATE signature SET meaning = 'review'",
                "DELETE FROM signature", "TRUNCATE signature",
                "ALTER TABLE audit_entry DISABLE TRIGGER USER",
                "ALTER TABLE signature DISABLE TRIGGER ALL",
                "DROP TRIGGER audit_entry_no_update_delete ON audit_entry"):
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            app.run(sql)
    app.conn.close()
    # The owner meets the triggers unless it disables them ...
    owner = Attacker(owner_url(fresh_db_url))
    owner.conn.autocommit = True
    with pytest.raises(psycopg.errors.InsufficientPrivilege, match="append-only"):
        owner.run("DELETE FROM audit_entry")
    # ... and a disabled trigger is reported to the application role.
    owner.run("ALTER TABLE audit_entry DISABLE TRIGGER audit_entry_no_update_delete")
    report = _read(fresh_db_url, verify_records)
    assert _kinds(report) == ["trigger_disabled"]
    assert "audit_entry_no_update_delete" in report.findings[0].message
    owner.run("ALTER TABLE audit_entry ENABLE TRIGGER audit_entry_no_update_delete")
    owner.conn.close()
    assert _read(fresh_db_url, verify_records).ok
    # Connected as the owner, verify says the role could bypass the triggers.
    report = _read(owner_url(fresh_db_url), verify_records)
    assert _kinds(report) == ["role_owns_tables"]


def test_swapped_password_hash_cannot_sign_in_or_sign(fresh_db_url, test_password_hash):
    _seed(fresh_db_url, test_password_hash)
    original = Attacker(fresh_db_url).run(
        "SELECT password_hash FROM user_account WHERE username = 'qa1'").fetchone()[0]
    mine = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1).hash("attacker-pw-99")

    def swap(value):
        # The application role may update accounts: no owner rights needed for this one.
        a = Attacker(fresh_db_url)
        a.run("UPDATE user_account SET password_hash = %s WHERE username = 'qa1'", (value,))
        a.commit_and_close()

    swap(mine)

    def try_sign(s):
        lot = repo.get_by(s, Lot, number="L-D-001-1")
        qa = _user(s, "qa1")
        with pytest.raises(IntegrityFailure, match="user_account .* differs from its last "
                                                   "audited image"):
            authenticate(s, "qa1", "attacker-pw-99")
        with pytest.raises(IntegrityFailure, match="differs from its last audited image"):
            sign(s, qa, "attacker-pw-99", lot, SignatureMeaning.APPROVAL)

    _read(fresh_db_url, try_sign)
    swap(original)  # restored: qa1 signs in with the real password again
    assert _read(fresh_db_url, lambda s: authenticate(s, "qa1", TEST_PASSWORD).username) == "qa1"
    assert _read(fresh_db_url, lambda s: s.scalar(sa.select(sa.func.count(Signature.id)))) == 0


def test_forged_release_and_signature_without_password_or_key_are_reported(
        fresh_db_url, test_password_hash, tmp_path):
    _seed(fresh_db_url, test_password_hash)
    # A genuine signature, whose keyed hash the forger will try to reuse.
    _write(fresh_db_url, lambda s: sign(s, _user(s, "qa1"), TEST_PASSWORD,
        repo.get_by(s, Lot, number="L-D-001-1"), "approval"))
    assert _read(fresh_db_url, verify_records).ok

    def forge(s):
        # The library alone: an actor set by name, no password, no signing key.
        lot = repo.get_by(s, Lot, number="L-D-001-1")
        qa = _user(s, "qa1")
        set_actor(s, qa)
        with change_reason(s, "complies with specification"):
            lot.status = LotStatus.RELEASED
        disposition = LotDisposition(lot_id=lot.id, action=DispositionAction.RELEASE,
                                     reason="complies", decided_by_id=qa.id)
        s.add(disposition)
        s.flush()
        genuine = repo.signatures_for(s, "lot", lot.id)[0]
        content = hashlib.sha256(record_image(s, disposition).encode()).hexdigest()
        s.add(Signature(table_name="lot_disposition", record_id=disposition.id,
                        content_sha256=content, user_id=qa.id, printed_name=qa.printed_name,
                        meaning=SignatureMeaning.APPROVAL, key_id=genuine.key_id,
                        keyed_hash=genuine.keyed_hash))
        s.flush()

    _write(fresh_db_url, forge)
    assert _read(fresh_db_url, verify_audit_trail).ok  # every write was "properly" audited
    report = _read(fresh_db_url, verify_records)
    assert _kinds(report) == ["signature_invalid", "signature_missing"]
    bad = next(f for f in report.findings if f.kind == "signature_invalid")
    assert "keyed hash does not match its fields" in bad.message
    missing = next(f for f in report.findings if f.kind == "signature_missing")
    assert missing.table == "lot_disposition"

    def uses_release(s):
        from exotrace.records import require_release_signature

        with pytest.raises(IntegrityFailure, match="no valid approval signature"):
            require_release_signature(s, repo.get_by(s, Lot, number="L-D-001-1"))

    _read(fresh_db_url, uses_release)


def test_released_lot_without_any_release_record_is_reported(fresh_db_url, test_password_hash):
    _seed(fresh_db_url, test_password_hash)

    def forge(s):
        lot = repo.get_by(s, Lot, number="L-D-001-1")
        set_actor(s, _user(s, "qa1"))
        with change_reason(s, "released"):
            lot.status = LotStatus.RELEASED

    _write(fresh_db_url, forge)
    report = _read(fresh_db_url, verify_records)
    assert _kinds(report) == ["release_unsigned"]
    assert "L-D-001-1" in report.findings[0].message


def test_signature_row_without_keyed_hash_is_reported(fresh_db_url, test_password_hash):
    _seed(fresh_db_url, test_password_hash)

    def forge(s):
        donor = repo.get_by(s, Donor, code="D-001")
        qa = _user(s, "qa1")
        set_actor(s, qa)
        s.add(Signature(table_name="donor", record_id=donor.id,
                        content_sha256=hashlib.sha256(record_image(s, donor).encode())
                        .hexdigest(), user_id=qa.id, printed_name=qa.printed_name,
                        meaning=SignatureMeaning.REVIEW))
        s.flush()

    _write(fresh_db_url, forge)
    report = _read(fresh_db_url, verify_records)
    assert _kinds(report) == ["signature_invalid"]
    assert "no keyed hash" in report.findings[0].message
    assert AuditEntry  # the forged row itself is audited, as every write is
