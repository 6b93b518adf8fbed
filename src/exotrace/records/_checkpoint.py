"""Signed checkpoints of the audit chain, kept outside the database writer's reach.

The hash chain proves that the trail is internally consistent, not that it is
the trail that was written: whoever can write the database can change an
entry and recompute every later hash, or delete the newest entries together
with the rows they created. A checkpoint closes that gap. It records the
chain head (sequence number, entry hash, time) and the database's identity,
is signed with an Ed25519 key that the database does not hold, and is kept
in a directory the operator controls (another machine, write-once storage,
or printed into a logbook). :func:`verify_checkpoints` then proves that every
checkpointed head is still in the chain with the same hash.

Each checkpoint also lists the first 16 hex digits of every entry hash since
the previous checkpoint of the directory, so a rewrite is located exactly:
the report names the first entry whose hash differs. Changes made after the
newest checkpoint are not covered; the checkpoint interval bounds that window.

File format (JSON, one file per checkpoint, never overwritten)::

    {"format": "exotrace-checkpoint/1", "database_id": ..., "seq": N,
     "head_hash": ..., "head_at": ..., "created_at": ..., "key_id": ...,
     "from_seq": K, "hash_prefixes": "<16 hex digits per entry K..N>",
     "signature": "<base64 Ed25519 signature of the canonical JSON of the rest>"}
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import os
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import sqlalchemy as sa
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from sqlalchemy.orm import Session

from ..errors import ConfigurationError, FileFormatError
from ._accounts import database_identity
from ._audit import AuditFinding, _lock_chain, canonical_json
from ._base import utcnow
from ._models_audit import GENESIS_HASH, AuditEntry
from ._settings import get_settings
from ._signing import create_key_file

__all__ = ["CHECKPOINT_FORMAT", "Checkpoint", "checkpoint_now", "generate_checkpoint_keys", "load_private_key",
           "load_public_key", "logbook_line", "make_checkpoint", "read_checkpoints",
           "verify_checkpoints", "write_checkpoint", "write_checkpoint_if_due"]

CHECKPOINT_FORMAT = "exotrace-checkpoint/1"
_PREFIX_HEX = 16  # 64 bits per entry: enough to tell a rewritten entry, small on disk


def generate_checkpoint_keys(path: Path) -> tuple[Path, Path]:
    """Write a new Ed25519 private key (PEM, mode 0600) to ``path`` and its public key
    to ``path.pub``; refuses to overwrite either."""
    path = Path(path)
    pub = path.with_name(path.name + ".pub")
    if pub.exists():
        raise ConfigurationError(f"key file {pub} already exists; not overwritten")
    key = Ed25519PrivateKey.generate()
    create_key_file(path, key.private_bytes(serialization.Encoding.PEM,
                                            serialization.PrivateFormat.PKCS8,
                                            serialization.NoEncryption()))
    pub.write_bytes(key.public_key().public_bytes(serialization.Encoding.PEM,
                                                  serialization.PublicFormat.SubjectPublicKeyInfo))
    return path, pub


def load_private_key(path: Path) -> Ed25519PrivateKey:
    path = Path(path)
    try:
        key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    except OSError as exc:
        raise ConfigurationError(f"checkpoint key {path}: {exc.strerror}") from None
    except (ValueError, TypeError):
        raise FileFormatError(str(path), "not an unencrypted PEM private key") from None
    if not isinstance(key, Ed25519PrivateKey):
        raise FileFormatError(str(path), "not an Ed25519 key (make one: exotrace audit keygen)")
    return key


def load_public_key(path: Path) -> Ed25519PublicKey:
    path = Path(path)
    try:
        key = serialization.load_pem_public_key(path.read_bytes())
    except OSError as exc:
        raise ConfigurationError(f"public key {path}: {exc.strerror}") from None
    except (ValueError, TypeError):
        raise FileFormatError(str(path), "not a PEM public key") from None
    if not isinstance(key, Ed25519PublicKey):
        raise FileFormatError(str(path), "not an Ed25519 public key")
    return key


def _public_key_id(key: Ed25519PublicKey) -> str:
    raw = key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()[:16]


@dataclass(frozen=True)
class Checkpoint:
    """One checkpoint file as read (``payload`` without its signature)."""

    path: Path
    payload: dict
    signature: bytes

    @property
    def seq(self) -> int:
        return int(self.payload["seq"])


def read_checkpoints(directory: Path) -> tuple[list[Checkpoint], list[str]]:
    """Every ``*.json`` checkpoint in ``directory`` (sorted by seq) and the files that are not."""
    directory = Path(directory)
    if not directory.is_dir():
        raise ConfigurationError(f"checkpoint directory {directory} does not exist")
    good, bad = [], []
    for path in sorted(directory.glob("*.json")):
        try:
            doc = json.loads(path.read_text(encoding="utf-8"))
            signature = base64.b64decode(doc.pop("signature"), validate=True)
            if doc.get("format") != CHECKPOINT_FORMAT:
                raise ValueError("format")
            int(doc["seq"]), str(doc["head_hash"]), int(doc["from_seq"])
            str(doc["hash_prefixes"])
        except (OSError, ValueError, KeyError, TypeError, AttributeError, binascii.Error):
            bad.append(f"{path.name}: not an exotrace checkpoint (unreadable or malformed)")
            continue
        good.append(Checkpoint(path, doc, signature))
    good.sort(key=lambda c: (c.seq, c.payload.get("created_at", "")))
    return good, bad


def _entries_from(connection: sa.Connection, from_seq: int):
    t = AuditEntry.__table__
    return connection.execute(sa.select(t.c.seq, t.c.entry_hash, t.c.at)
                              .where(t.c.seq >= from_seq).order_by(t.c.seq)
                              .execution_options(yield_per=5000))


def make_checkpoint(session: Session, key: Ed25519PrivateKey, *,
                    previous_seq: int = 0) -> dict:
    """The signed checkpoint of the current chain head (a dict ready to write as JSON).

    ``previous_seq``: head of the directory's previous checkpoint; the hash
    prefixes of entries after it are included (all entries when 0).
    """
    conn = session.connection()
    _lock_chain(conn)
    ident = database_identity(session, create=True)
    prefixes, seq, head, head_at = [], 0, GENESIS_HASH, None
    from_seq = previous_seq + 1
    for row in _entries_from(conn, from_seq):
        prefixes.append(row.entry_hash[:_PREFIX_HEX])
        seq, head, head_at = row.seq, row.entry_hash, row.at
    if seq == 0:  # nothing new since the previous checkpoint: read the head itself
        t = AuditEntry.__table__
        last = conn.execute(sa.select(t.c.seq, t.c.entry_hash, t.c.at)
                            .order_by(t.c.seq.desc()).limit(1)).first()
        if last is not None:
            seq, head, head_at = last.seq, last.entry_hash, last.at
        from_seq = seq + 1
    payload = {"format": CHECKPOINT_FORMAT, "database_id": ident.database_id,
               "seq": seq, "head_hash": head,
               "head_at": head_at.isoformat() if head_at else None,
               "created_at": utcnow().isoformat(), "key_id": _public_key_id(key.public_key()),
               "from_seq": from_seq, "hash_prefixes": "".join(prefixes)}
    signature = key.sign(canonical_json(payload).encode("utf-8"))
    return {**payload, "signature": base64.b64encode(signature).decode("ascii")}


def write_checkpoint(directory: Path, checkpoint: dict) -> Path:
    """Write ``checkpoint`` to a new file in ``directory`` (never overwrites one)."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    stamp = checkpoint["created_at"].replace(":", "").replace("-", "").replace("+0000", "Z")
    path = directory / f"checkpoint-{checkpoint['seq']:010d}-{stamp}.json"
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    except FileExistsError:
        raise ConfigurationError(f"checkpoint {path} already exists; not overwritten") from None
    except OSError as exc:
        raise ConfigurationError(f"cannot write checkpoint {path}: {exc.strerror}") from None
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        json.dump(checkpoint, fh, indent=1, sort_keys=True)
        fh.write("\n")
    return path


def logbook_line(checkpoint: dict) -> str:
    """One line to copy into a paper logbook: enough to check the chain head by hand."""
    return (f"exotrace checkpoint {checkpoint['created_at'][:19]}Z database "
            f"{checkpoint['database_id'][:8]} entry #{checkpoint['seq']} hash "
            f"{checkpoint['head_hash']} key {checkpoint['key_id']}")


def checkpoint_now(session: Session, key_path: Path, directory: Path) -> tuple[Path, dict]:
    """Make and write a checkpoint; chains its hash list to the directory's newest one."""
    key = load_private_key(key_path)
    previous = 0
    if Path(directory).is_dir():
        existing, _ = read_checkpoints(directory)
        head = session.execute(sa.select(sa.func.max(AuditEntry.seq))).scalar() or 0
        valid = [c.seq for c in existing if c.seq <= head]
        previous = max(valid, default=0)
    checkpoint = make_checkpoint(session, key, previous_seq=previous)
    return write_checkpoint(directory, checkpoint), checkpoint


def write_checkpoint_if_due(session: Session, *, now=None) -> Path | None:
    """Write a checkpoint when ``EXOTRACE_CHECKPOINT_KEY`` and ``EXOTRACE_CHECKPOINT_DIR`` are
    set and the newest one in the directory is older than ``EXOTRACE_CHECKPOINT_INTERVAL_S``.

    Called by the CLI after each write command, and by the server and batch
    jobs; returns the file written, None when not configured or not due.
    """
    settings = get_settings()
    if settings.checkpoint_key is None or settings.checkpoint_dir is None:
        return None
    directory = settings.checkpoint_dir.expanduser()
    now = now or utcnow()
    if directory.is_dir():
        existing, _ = read_checkpoints(directory)
        newest = max((c.payload.get("created_at", "") for c in existing), default="")
        if newest:
            age_s = (now - datetime.fromisoformat(newest)).total_seconds()
            if age_s < settings.checkpoint_interval_s:
                return None
    path, _ = checkpoint_now(session, settings.checkpoint_key.expanduser(), directory)
    return path


def verify_checkpoints(session: Session, directory: Path, public_key_path: Path
                       ) -> tuple[int, list[AuditFinding]]:
    """Check the chain against every checkpoint in ``directory``.

    Returns (checkpoints checked, findings). Findings: a malformed checkpoint
    file, an invalid signature or another key, another database's identity,
    a chain shorter than a checkpointed head (truncation, naming the first
    missing entry) and a chain whose entries differ from the checkpointed
    hashes (rewrite, naming the first entry that differs).
    """
    public_key = load_public_key(public_key_path)
    checkpoints, bad = read_checkpoints(directory)
    findings = [AuditFinding("checkpoint_invalid", None, None, None, msg) for msg in bad]
    ident = database_identity(session, create=False)
    conn = session.connection()
    t = AuditEntry.__table__
    last_seq = conn.execute(sa.select(sa.func.max(t.c.seq))).scalar() or 0
    trusted = []
    for cp in checkpoints:
        name = cp.path.name
        try:
            public_key.verify(cp.signature, canonical_json(cp.payload).encode("utf-8"))
        except InvalidSignature:
            findings.append(AuditFinding(
                "checkpoint_signature", None, None, cp.seq,
                f"checkpoint {name}: signature invalid for this public key (altered, forged "
                "or signed with another key)"))
            continue
        if ident is None or cp.payload.get("database_id") != ident.database_id:
            findings.append(AuditFinding(
                "checkpoint_database", None, None, cp.seq,
                f"checkpoint {name} belongs to database {cp.payload.get('database_id')}, this "
                f"database is {ident.database_id if ident else 'without identity'} (replaced "
                "database, or checkpoints of several databases in one directory)"))
            continue
        trusted.append(cp)
    # Truncation: the newest checkpointed head beyond the chain's end.
    beyond = [cp for cp in trusted if cp.seq > last_seq]
    if beyond:
        cp = beyond[-1]
        findings.append(AuditFinding(
            "chain_truncated", None, None, last_seq + 1,
            f"audit chain truncated: it ends at entry #{last_seq} but checkpoint "
            f"{cp.path.name} recorded entry #{cp.seq}; entries #{last_seq + 1}..#{cp.seq} "
            "were removed"))
    # Rewrite: compare every listed hash prefix (and each full head hash) with the chain.
    expected: dict[int, tuple[str, str]] = {}
    for cp in trusted:
        p = cp.payload["hash_prefixes"]
        for i in range(0, len(p), _PREFIX_HEX):
            expected.setdefault(cp.payload["from_seq"] + i // _PREFIX_HEX,
                                (p[i:i + _PREFIX_HEX], cp.path.name))
    heads = {cp.seq: (cp.payload["head_hash"], cp.path.name) for cp in trusted if cp.seq > 0}
    first_diff = None
    if expected or heads:
        for row in _entries_from(conn, 1):
            want = expected.get(row.seq)
            head = heads.get(row.seq)
            if (want and not row.entry_hash.startswith(want[0])) or \
                    (head and row.entry_hash != head[0]):
                first_diff = (row.seq, (want or head)[1])
                break
    if first_diff is not None:
        seq, name = first_diff
        findings.append(AuditFinding(
            "chain_rewritten", None, None, seq,
            f"audit chain rewritten: entry #{seq} differs from checkpoint {name} (the first "
            "entry that differs; every later hash was recomputed)"))
    return len(checkpoints), findings
