"""Keyed signature hashes: what a signature row alone cannot fake.

A signature row records who signed what, when, with which meaning and the
SHA-256 of the signed content. Anyone who can write to the database (or run
the library without a password) could add such a row. The keyed hash is an
HMAC-SHA256, under a key held by the server (``EXOTRACE_SIGNING_KEY_FILE``,
never stored in the database), over exactly those fields: without the key a
forged row cannot carry a valid one, and :func:`signature_problems` reports it.

Where the key lives: a file readable by the account that runs exotrace only
(mode 0600), on the application server, outside the database's directory and
backups. The default is ``signing.key`` in the user's configuration directory;
it is created at the first signature when missing. Losing it does not lose
records: signatures made with it are then reported as "made with another key"
until the key file is restored.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
from datetime import datetime
from pathlib import Path

from ..errors import ConfigurationError
from ._audit import canonical_json
from ._models_auth import Signature
from ._settings import get_settings

__all__ = ["KEY_BYTES", "create_key_file", "key_id", "keyed_signature_hash", "load_signing_key",
           "signature_problems"]

KEY_BYTES = 32  # 256-bit HMAC key (RFC 2104: at least the hash output length)


def create_key_file(path: Path, data: bytes) -> None:
    """Write ``data`` to a new file readable by its owner only (never overwrites)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        raise ConfigurationError(f"key file {path} already exists; not overwritten") from None
    except OSError as exc:
        raise ConfigurationError(f"cannot create key file {path}: {exc.strerror}") from None
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)


def load_signing_key(*, create: bool = False) -> bytes | None:
    """The server's signing key (hex text in the key file); None when absent and not created.

    Raises
    ------
    ConfigurationError
        The file exists but is not a key, or is readable by other users.
    """
    path = get_settings().resolved_signing_key_file
    if not path.exists():
        if not create:
            return None
        try:
            create_key_file(path, secrets.token_hex(KEY_BYTES).encode("ascii") + b"\n")
        except ConfigurationError:
            if not path.exists():  # not a race with another first signer: a real failure
                raise
    if os.name == "posix" and path.stat().st_mode & 0o077:
        raise ConfigurationError(f"signing key {path} is readable by other users; "
                                 f"chmod 600 {path}")
    try:
        key = bytes.fromhex(path.read_text(encoding="ascii").strip())
    except (ValueError, UnicodeDecodeError):
        raise ConfigurationError(f"signing key {path}: expected {2 * KEY_BYTES} hex digits"
                                 ) from None
    if len(key) < 16:
        raise ConfigurationError(f"signing key {path}: too short (at least 16 bytes)")
    return key


def key_id(key: bytes) -> str:
    """First 16 hex digits of SHA-256 of the key: names the key without revealing it."""
    return hashlib.sha256(key).hexdigest()[:16]


def keyed_signature_hash(key: bytes, *, user_id: int, printed_name: str, meaning: str,
                         signed_at: datetime, table_name: str, record_id: int,
                         content_sha256: str) -> str:
    """HMAC-SHA256 (hex) over the fields that make a signature what it is."""
    payload = canonical_json({"user_id": user_id, "printed_name": printed_name,
                              "meaning": str(meaning), "signed_at": signed_at.isoformat(),
                              "table": table_name, "record_id": record_id,
                              "content_sha256": content_sha256})
    return hmac.new(key, payload.encode("utf-8"), hashlib.sha256).hexdigest()


def signature_problems(signature: Signature, key: bytes | None) -> list[str]:
    """Why ``signature`` cannot be trusted (empty list: its keyed hash checks out)."""
    where = f"signature {signature.id} ({signature.table_name}:{signature.record_id})"
    if not signature.keyed_hash:
        return [f"{where} has no keyed hash (not made by exotrace's sign, or made before "
                "keyed signatures)"]
    if key is None:
        return [f"{where}: cannot check its keyed hash, no signing key "
                "(set EXOTRACE_SIGNING_KEY_FILE)"]
    if signature.key_id != key_id(key):
        return [f"{where} was made with key {signature.key_id}, not the configured key "
                f"{key_id(key)}"]
    expected = keyed_signature_hash(
        key, user_id=signature.user_id, printed_name=signature.printed_name,
        meaning=signature.meaning.value, signed_at=signature.signed_at,
        table_name=signature.table_name, record_id=signature.record_id,
        content_sha256=signature.content_sha256)
    if not hmac.compare_digest(expected, signature.keyed_hash):
        return [f"{where}: keyed hash does not match its fields (forged or altered)"]
    return []
