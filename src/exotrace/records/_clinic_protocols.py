"""Clinic services: protocol versions (import from YAML, look-up, view)."""

from __future__ import annotations

import hashlib
from pathlib import Path

from sqlalchemy.orm import Session

from .._text import check_text
from ..clinic import Protocol, protocol_from_yaml
from ..errors import Conflict, FileFormatError, NotFound
from . import _repositories as repo
from . import _repositories_clinic as crepo
from ._auth import Permission, require_permission
from ._clinic_common import protocol_model
from ._context import acting_as
from ._models_auth import User
from ._models_clinic import ClinicalProtocol

__all__ = ["get_protocol", "import_protocol", "protocol_record_view"]


def import_protocol(session: Session, user: User, source: str | Path, *,
                    text: str | None = None) -> tuple[ClinicalProtocol, bool]:
    """Store a protocol version (id, version, YAML text, SHA-256) from a YAML file.

    Importing the same file again stores nothing and returns the stored
    version (``created`` False). A different text under an existing id and
    version is a Conflict: a changed protocol needs a new version.

    Parameters
    ----------
    source : str or Path
        The YAML file (or, with ``text``, only its name for messages).
    text : str, optional
        The YAML text, when it is not read from ``source``.

    Returns
    -------
    (ClinicalProtocol, bool)
    """
    require_permission(user, Permission.RECORD_CLINICAL, action="import protocols")
    path = Path(source)
    if text is None:
        if not path.is_file():
            raise FileFormatError(path, "file not found")
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise FileFormatError(path, f"cannot be read as UTF-8 text: {exc}") from None
    protocol = protocol_from_yaml(text, source=str(path))
    sha = hashlib.sha256(text.encode("utf-8")).hexdigest()
    existing = repo.find_by(session, ClinicalProtocol, code=protocol.id, version=protocol.version)
    if existing is not None:
        if existing.sha256 == sha:
            return existing, False
        raise Conflict(f"protocol {protocol.id} version {protocol.version} is already stored with "
                       f"different content (SHA-256 {existing.sha256[:12]}...); give the changed "
                       "protocol a new version")
    name = check_text(path.name, "protocol file name", max_length=400)
    record = ClinicalProtocol(code=protocol.id, version=protocol.version, title=protocol.title,
                              yaml_text=text, sha256=sha, source_name=name,
                              imported_by_id=user.id)
    with acting_as(session, user):
        session.add(record)
        session.flush()
    return record, True


def get_protocol(session: Session, code: str, version: str | None = None
                 ) -> tuple[ClinicalProtocol, Protocol]:
    """A stored protocol version (the latest imported when ``version`` is None)."""
    if version is None:
        record = crepo.latest_protocol(session, code)
    else:
        record = repo.find_by(session, ClinicalProtocol, code=code, version=version)
    if record is None:
        known = sorted({p.code for p in crepo.protocol_versions(session)})
        raise NotFound(f"no protocol {code!r}{f' version {version}' if version else ''} in the "
                       f"database (imported: {', '.join(known) or 'none'}); "
                       "use exotrace protocol import FILE")
    return record, protocol_model(record)


def protocol_record_view(record: ClinicalProtocol) -> dict:
    return {"id": record.code, "version": record.version, "title": record.title,
            "sha256": record.sha256, "source": record.source_name,
            "imported_at": record.imported_at}
