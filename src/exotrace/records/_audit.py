"""Automatic audit trail: every insert, update and delete of an audited model.

How it works
------------
* ``before_flush`` collects the audited objects about to be written, refuses
  the flush when no user is acting or a required reason is missing, and reads
  the *before* image of updated/deleted rows straight from the database.
* ``after_flush`` reads the *after* image of inserted/updated rows as stored
  (so the image is exactly what :func:`verify_audit_trail` will later read),
  and appends one :class:`AuditEntry` per change to the hash chain.
* Appends are serialized: on PostgreSQL by a transaction-scoped advisory lock,
  on SQLite by the database write lock (exotrace opens SQLite transactions
  with ``BEGIN IMMEDIATE``). ``audit_entry.prev_hash`` is UNIQUE, so even a
  writer that bypassed the lock could not fork the chain: its insert fails.

Reason rule
-----------
Creating a record never needs a reason. Updating or deleting a row of a GMP
table (``__gmp__ = True``, the default for every model; user accounts are the
exception) needs a non-empty reason, given with
:func:`exotrace.records.change_reason`. Signatures and audit entries can never
be updated or deleted (``__immutable__``).

Secret columns
--------------
Columns a model lists in ``__secret_columns__`` (a password hash, a token
hash) are stored in the audit image as ``"<secret sha256=...>"``: the trail
still shows that the value changed, and a row whose secret was swapped
behind the application's back still differs from its image, but the secret
itself never appears in the trail (:func:`redact_image` also hides it in
entries written before markers existed).

Entry hash
----------
``entry_hash = SHA-256(canonical JSON of {seq, table, record, action, actor_id,
actor, at, reason, before, after, prev_hash})`` where canonical JSON has
sorted keys and no spaces, and ``before``/``after`` are the stored JSON texts.
"""

from __future__ import annotations

import hashlib
import json
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from enum import Enum
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.orm import Session

from ..errors import AuthError, IntegrityFailure, RuleViolation
from ._base import Base, utcnow
from ._context import current_actor, current_reason
from ._enums import AuditAction
from ._models_audit import GENESIS_HASH, AuditEntry

__all__ = [
    "AuditFinding",
    "AuditReport",
    "append_audit_entries",
    "audited_bulk_insert",
    "audited_image_of_rows",
    "audited_tables",
    "canonical_json",
    "check_matches_trail",
    "entry_hash",
    "last_audited_image",
    "record_image",
    "redact_image",
    "row_image",
    "secret_marker",
    "verify_audit_trail",
]

# Key for pg_advisory_xact_lock: any fixed 64-bit number ("exoaudit" in ASCII-ish).
_PG_AUDIT_LOCK_KEY = 0x65786F6175646974 & 0x7FFFFFFFFFFFFFFF
_PENDING_KEY = "exotrace.audit_pending"
_CHUNK = 500


def canonical_json(value: Any) -> str:
    """Deterministic JSON: sorted keys, no spaces, UTF-8 kept."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False,
                      default=_json_default)


def _json_default(value: Any) -> Any:
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, (bytes, bytearray)):
        return value.hex()
    raise TypeError(f"cannot audit a value of type {type(value).__name__}")


def _jsonable(value: Any) -> Any:
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    return value


def row_image(row: sa.Row | dict) -> str:
    """Canonical JSON of a table row's stored column values."""
    mapping = row._mapping if hasattr(row, "_mapping") else row
    return canonical_json({str(k): _jsonable(v) for k, v in mapping.items()})


def secret_marker(value: Any) -> str | None:
    """What the audit image stores instead of a secret column's value."""
    if value is None:
        return None
    if isinstance(value, str) and value.startswith("<secret sha256="):
        return value  # already a marker
    digest = hashlib.sha256(str(value).encode("utf-8")).hexdigest()
    return f"<secret sha256={digest}>"


def _secret_columns(table_name: str) -> tuple[str, ...]:
    for mapper in Base.registry.mappers:
        if mapper.local_table is not None and mapper.local_table.name == table_name:
            return tuple(getattr(mapper.class_, "__secret_columns__", ()))
    return ()


def audited_image_of_rows(table: sa.Table, row: sa.Row | dict) -> str:
    """The audit image of one stored row: :func:`row_image` with secrets as markers."""
    mapping = dict(row._mapping if hasattr(row, "_mapping") else row)
    for name in _secret_columns(table.name):
        if name in mapping:
            mapping[name] = secret_marker(mapping[name])
    return row_image(mapping)


def redact_image(table_name: str, image: str | None) -> str | None:
    """An audit image (JSON text) with secret columns as markers (for reading and comparing)."""
    secrets = _secret_columns(table_name)
    if image is None or not secrets:
        return image
    values = json.loads(image)
    for name in secrets:
        if name in values:
            values[name] = secret_marker(values[name])
    return canonical_json(values)


def _pk_text(values) -> str:
    return ",".join(str(v) for v in values)


def _is_audited(obj) -> bool:
    return isinstance(obj, Base) and getattr(type(obj), "__audited__", False)


def audited_tables() -> list[sa.Table]:
    """Tables of every mapped model that is audited (any package's models)."""
    tables = {}
    for mapper in Base.registry.mappers:
        cls = mapper.class_
        if getattr(cls, "__audited__", False) and mapper.local_table is not None:
            tables[mapper.local_table.name] = mapper.local_table
    return [tables[k] for k in sorted(tables)]


def _read_images(connection: sa.Connection, table: sa.Table,
                 pks: list[tuple]) -> dict[str, str]:
    """Stored images of rows keyed by primary-key text (single- or multi-column PKs)."""
    images: dict[str, str] = {}
    pk_cols = list(table.primary_key.columns)
    for start in range(0, len(pks), _CHUNK):
        chunk = pks[start:start + _CHUNK]
        if len(pk_cols) == 1:
            cond = pk_cols[0].in_([p[0] for p in chunk])
        else:
            cond = sa.tuple_(*pk_cols).in_(chunk)
        for row in connection.execute(sa.select(table).where(cond)):
            images[_pk_text(row._mapping[c.name] for c in pk_cols)] = \
                audited_image_of_rows(table, row)
    return images


def record_image(session: Session, record: Base) -> str:
    """Canonical JSON image of ``record`` as stored now (used for signatures)."""
    session.flush()
    mapper = sa.inspect(type(record))
    pk = tuple(mapper.primary_key_from_instance(record))
    images = _read_images(session.connection(), mapper.local_table, [pk])
    return images[_pk_text(pk)]


def last_audited_image(connection: sa.Connection, table_name: str, record_pk: str
                       ) -> str | None:
    """The ``after`` image of the newest audit entry of one record (None: none or deleted)."""
    t = AuditEntry.__table__
    return connection.execute(
        sa.select(t.c.after_json).where(t.c.table_name == table_name, t.c.record_pk == record_pk)
        .order_by(t.c.seq.desc()).limit(1)).scalar()


_NEWEST_IMAGE = "exotrace_newest_audited_image"


def check_matches_trail(session: Session, record: Base) -> None:
    """Raise IntegrityFailure when ``record``'s stored row differs from its last audited image.

    Used before trusting an account at sign-in and signing: a password hash
    swapped in behind the application's back (set, sign, restore) shows here.
    """
    mapper = sa.inspect(type(record))
    table = mapper.local_table
    pk_values = tuple(mapper.primary_key_from_instance(record))
    pk = _pk_text(pk_values)
    # One round trip (it runs at every web request): the stored row with the
    # newest audited image of it.
    t = AuditEntry.__table__
    newest = (sa.select(t.c.after_json)
              .where(t.c.table_name == table.name, t.c.record_pk == pk)
              .order_by(t.c.seq.desc()).limit(1).scalar_subquery().label(_NEWEST_IMAGE))
    row = session.connection().execute(
        sa.select(table, newest).where(*(c == v for c, v in zip(
            table.primary_key.columns, pk_values, strict=True)))).first()
    stored = audited = None
    if row is not None:
        values = dict(row._mapping)
        audited = redact_image(table.name, values.pop(_NEWEST_IMAGE))
        stored = audited_image_of_rows(table, values)
    if stored is None or stored != audited:
        raise IntegrityFailure(
            f"{mapper.local_table.name} {pk} differs from its last audited image (changed "
            "behind the application's back); refused until an administrator investigates "
            "(exotrace audit verify)")


@dataclass
class _Pending:
    table: sa.Table
    action: AuditAction
    obj: Any
    before: str | None = None


def _before_flush(session: Session, flush_context, instances) -> None:
    new = [o for o in session.new if _is_audited(o)]
    dirty = [o for o in session.dirty
             if _is_audited(o) and session.is_modified(o, include_collections=False)]
    deleted = [o for o in session.deleted if _is_audited(o)]
    if not (new or dirty or deleted):
        return
    actor = current_actor(session)
    if actor is None:
        names = sorted({type(o).__tablename__ for o in new + dirty + deleted})
        raise AuthError(
            f"write to {', '.join(names)} refused: no acting user; "
            "log in (--user NAME or EXOTRACE_USER) so the audit trail can name who acted")
    reason = current_reason(session)
    for obj in dirty + deleted:
        cls = type(obj)
        verb = "delete" if obj in deleted else "change"
        pk = _pk_text(sa.inspect(cls).primary_key_from_instance(obj))
        if getattr(cls, "__immutable__", False):
            raise RuleViolation(f"{cls.__tablename__} {pk} cannot be {verb}d: "
                                "signatures and audit entries are permanent")
        if getattr(cls, "__gmp__", True) and not reason:
            raise RuleViolation(
                f"{verb} of {cls.__tablename__} {pk} needs a reason (GMP record); "
                "give one (--reason) and try again")
    pending: list[_Pending] = [_Pending(o.__table__, AuditAction.CREATE, o) for o in new]
    by_table: dict[sa.Table, list] = defaultdict(list)
    changed = [(o, AuditAction.UPDATE) for o in dirty] + [(o, AuditAction.DELETE) for o in deleted]
    for obj, _ in changed:
        by_table[obj.__table__].append(tuple(sa.inspect(type(obj)).primary_key_from_instance(obj)))
    conn = session.connection()
    before = {t: _read_images(conn, t, pks) for t, pks in by_table.items()}
    for obj, action in changed:
        pk = _pk_text(sa.inspect(type(obj)).primary_key_from_instance(obj))
        pending.append(_Pending(obj.__table__, action, obj, before[obj.__table__].get(pk)))
    # Assign (not extend): a flush that failed after this hook leaves nothing stale.
    session.info[_PENDING_KEY] = pending


def _after_flush(session: Session, flush_context) -> None:
    pending: list[_Pending] = session.info.pop(_PENDING_KEY, [])
    if not pending:
        return
    actor = current_actor(session)
    reason = current_reason(session)
    conn = session.connection()
    keyed = []
    by_table: dict[sa.Table, list] = defaultdict(list)
    for p in pending:
        pk = tuple(sa.inspect(type(p.obj)).primary_key_from_instance(p.obj))
        keyed.append((p, pk))
        if p.action is not AuditAction.DELETE:
            by_table[p.table].append(pk)
    after = {t: _read_images(conn, t, pks) for t, pks in by_table.items()}
    entries = []
    for p, pk in keyed:
        pk_text = _pk_text(pk)
        after_image = None if p.action is AuditAction.DELETE else after[p.table].get(pk_text)
        if p.action is AuditAction.UPDATE and after_image == p.before:
            continue  # nothing stored changed (e.g. a value set to itself)
        entries.append({
            "table_name": p.table.name, "record_pk": pk_text, "action": p.action,
            "before_json": p.before, "after_json": after_image,
        })
    append_audit_entries(conn, entries, actor_id=actor.user_id, actor_name=actor.username,
                         reason=reason)


def entry_hash(entry: dict) -> str:
    """SHA-256 (hex) of an audit entry's canonical JSON, ``prev_hash`` included."""
    payload = {
        "seq": entry["seq"],
        "table": entry["table_name"],
        "record": entry["record_pk"],
        "action": _jsonable(entry["action"]),
        "actor_id": entry["actor_id"],
        "actor": entry["actor_name"],
        "at": _jsonable(entry["at"]),
        "reason": entry["reason"],
        "before": entry["before_json"],
        "after": entry["after_json"],
        "prev_hash": entry["prev_hash"],
    }
    return hashlib.sha256(canonical_json(payload).encode("utf-8")).hexdigest()


def _lock_chain(connection: sa.Connection) -> None:
    if connection.dialect.name == "postgresql":
        # Held to the end of the transaction: the next writer reads the head
        # only after this transaction's entries are committed.
        connection.execute(sa.text("SELECT pg_advisory_xact_lock(:k)"), {"k": _PG_AUDIT_LOCK_KEY})


def append_audit_entries(connection: sa.Connection, entries: list[dict], *,
                         actor_id: int | None, actor_name: str,
                         reason: str | None) -> int:
    """Append entries (dicts with table_name, record_pk, action, before_json, after_json).

    Returns the number appended. Must run inside the writing transaction.
    """
    if not entries:
        return 0
    _lock_chain(connection)
    table = AuditEntry.__table__
    head = connection.execute(
        sa.select(table.c.seq, table.c.entry_hash).order_by(table.c.seq.desc()).limit(1)
    ).first()
    seq, prev = (head.seq, head.entry_hash) if head else (0, GENESIS_HASH)
    at = utcnow()  # microseconds: what SQLite and PostgreSQL both store, so hashes recompute
    rows = []
    for e in entries:
        seq += 1
        row = {"seq": seq, "actor_id": actor_id, "actor_name": actor_name, "at": at,
               "reason": reason, "prev_hash": prev, **e}
        row["entry_hash"] = entry_hash(row)
        prev = row["entry_hash"]
        rows.append(row)
    connection.execute(sa.insert(table), rows)
    return len(rows)


def audited_bulk_insert(session: Session, model: type[Base], rows: list[dict]) -> list[int]:
    """Fast path: insert many rows of ``model`` in one statement, still audited.

    The rows go through ``INSERT ... RETURNING`` (one round trip per batch)
    and one audit entry per row is appended to the chain in the same
    transaction. Returns the new primary keys (single-column PK models).
    """
    if not rows:
        return []
    actor = current_actor(session)
    if actor is None:
        raise AuthError(f"write to {model.__tablename__} refused: no acting user")
    session.flush()
    table = model.__table__
    conn = session.connection()
    pk_cols = list(table.primary_key.columns)
    result = conn.execute(sa.insert(table).returning(*pk_cols, sort_by_parameter_order=True), rows)
    pks = [tuple(r) for r in result]
    # Images are read back with a SELECT, not taken from RETURNING: some drivers return
    # the value as bound (an int for a REAL column on SQLite), not as stored.
    images = _read_images(conn, table, pks)
    ids = [pk[0] for pk in pks]
    entries = [{"table_name": table.name, "record_pk": _pk_text(pk), "action": AuditAction.CREATE,
                "before_json": None, "after_json": images[_pk_text(pk)]} for pk in pks]
    append_audit_entries(conn, entries, actor_id=actor.user_id, actor_name=actor.username,
                         reason=current_reason(session))
    return ids


@dataclass(frozen=True)
class AuditFinding:
    """One problem found by :func:`verify_audit_trail`."""

    kind: str  # broken_link, hash_mismatch, missing_entry, row_changed, row_deleted, row_unaudited
    table: str | None
    record: str | None
    seq: int | None
    message: str


@dataclass
class AuditReport:
    """Result of :func:`verify_audit_trail`: ``ok`` when no finding."""

    entries_checked: int = 0
    records_checked: int = 0
    head_hash: str = GENESIS_HASH
    head_seq: int = 0
    checkpoints_checked: int = 0
    findings: list[AuditFinding] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.findings

    def view(self, *, max_findings: int | None = None) -> dict:
        """JSON-ready report (the web page and the API): counts, chain head, the first
        ``max_findings`` findings (all by default) and how many there are."""
        shown = self.findings if max_findings is None else self.findings[:max_findings]
        return {"ok": self.ok, "entries_checked": self.entries_checked,
                "records_checked": self.records_checked, "head_seq": self.head_seq,
                "head_hash": self.head_hash, "checkpoints_checked": self.checkpoints_checked,
                "findings": [{"kind": f.kind, "table": f.table, "record": f.record,
                              "entry": f.seq, "problem": f.message} for f in shown],
                "findings_total": len(self.findings)}


def verify_audit_trail(session: Session, *, max_findings: int = 1000) -> AuditReport:
    """Check the hash chain and compare every audited row with its last audited image.

    On PostgreSQL it holds the audit chain lock while it reads, so audited
    writers wait until it is done. Detects: an entry edited or removed (hash or link mismatch, gap in
    ``seq``), a row changed behind the application's back (image differs),
    a row deleted behind its back (last entry is not a delete but the row is
    gone), and a row inserted behind its back (no entry at all).
    """
    report = AuditReport()
    conn = session.connection()
    # Take the chain lock first: every audited writer that appended before us has then
    # committed, and later ones wait, so the trail and the tables are read as one
    # consistent state even at READ COMMITTED (without it, a commit landing between
    # reading the trail and reading a table showed up as an unaudited row).
    _lock_chain(conn)
    table = AuditEntry.__table__
    expected_seq, expected_prev = 1, GENESIS_HASH
    last: dict[tuple[str, str], tuple[int, str | None]] = {}

    def add(kind, tbl, rec, seq, msg):
        if len(report.findings) < max_findings:
            report.findings.append(AuditFinding(kind, tbl, rec, seq, msg))

    result = conn.execute(sa.select(table).order_by(table.c.seq).execution_options(yield_per=5000))
    for row in result:
        e = dict(row._mapping)
        report.entries_checked += 1
        where = f"audit entry #{e['seq']} ({e['table_name']} {e['record_pk']} {_jsonable(e['action'])})"
        if e["seq"] != expected_seq:
            add("missing_entry", e["table_name"], e["record_pk"], e["seq"],
                f"audit entries #{expected_seq}..#{e['seq'] - 1} are missing before {where}")
        if e["prev_hash"] != expected_prev:
            add("broken_link", e["table_name"], e["record_pk"], e["seq"],
                f"{where}: previous-hash link does not match the entry before it")
        if entry_hash(e) != e["entry_hash"]:
            add("hash_mismatch", e["table_name"], e["record_pk"], e["seq"],
                f"{where} was altered after it was written (hash mismatch)")
        expected_seq, expected_prev = e["seq"] + 1, e["entry_hash"]
        last[(e["table_name"], e["record_pk"])] = (e["seq"], e["after_json"])
    report.head_hash, report.head_seq = expected_prev, expected_seq - 1

    for tbl in audited_tables():
        pk_cols = list(tbl.primary_key.columns)
        seen = set()
        rows = conn.execute(sa.select(tbl).order_by(*pk_cols).execution_options(yield_per=5000))
        for row in rows:
            report.records_checked += 1
            pk = _pk_text(row._mapping[c.name] for c in pk_cols)
            seen.add(pk)
            audited = last.get((tbl.name, pk))
            if audited is None:
                add("row_unaudited", tbl.name, pk, None,
                    f"{tbl.name} {pk} has no audit entry (written behind the application's back)")
                continue
            seq, image = audited
            image = redact_image(tbl.name, image)
            current = audited_image_of_rows(tbl, row)
            if image is None:
                add("row_unaudited", tbl.name, pk, seq,
                    f"{tbl.name} {pk} exists but audit entry #{seq} recorded its deletion")
            elif current != image:
                cols = _diff_columns(json.loads(image), json.loads(current))
                add("row_changed", tbl.name, pk, seq,
                    f"{tbl.name} {pk} differs from audit entry #{seq} in {', '.join(cols)} "
                    "(changed behind the application's back)")
        for (tname, pk), (seq, image) in last.items():
            if tname == tbl.name and image is not None and pk not in seen:
                add("row_deleted", tname, pk, seq,
                    f"{tname} {pk} is missing; its last audit entry #{seq} is not a deletion "
                    "(deleted behind the application's back)")
    return report


def _diff_columns(old: dict, new: dict) -> list[str]:
    keys = sorted(set(old) | set(new))
    return [k for k in keys if old.get(k, object()) != new.get(k, object())] or ["(format)"]


event.listen(Session, "before_flush", _before_flush)
event.listen(Session, "after_flush", _after_flush)
event.listen(Session, "after_soft_rollback",
             lambda session, previous_transaction: session.info.pop(_PENDING_KEY, None))
