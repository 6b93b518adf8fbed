"""Quality services: specification versions (import, export, view), their assignment to
lots and the version in force.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from sqlalchemy.orm import Session

from ..errors import Conflict, InvalidInput, RuleViolation
from ..quality import SpecStatus, dump_specification, load_specification
from . import _repositories as repo
from . import _repositories_quality as qrepo
from ._auth import Permission, require_permission
from ._context import acting_as, change_reason
from ._models_auth import User
from ._models_lot import Lot
from ._models_quality import LotSpecification, SpecificationRecord
from ._quality_common import _perms, _spec_model

__all__ = [
    "assign_specification", "export_specification", "import_specification",
    "specification_in_force", "specification_view",
]


def specification_view(record: SpecificationRecord) -> dict:
    return {"id": record.id, "name": record.name, "version": record.version,
            "product_type": record.product_type, "status": SpecStatus(record.status).value,
            "effective_date": record.effective_date, "tests": len(json.loads(record.tests_json)),
            "sha256": record.sha256, "imported_at": record.imported_at}


def import_specification(session: Session, user: User, path: str | Path) -> tuple[
        SpecificationRecord, bool]:
    """Store a specification version from a YAML file (QA only).

    An ``effective`` version supersedes the name's previous effective version.
    Importing the same file again stores nothing (returns ``created=False``).

    Returns
    -------
    (SpecificationRecord, created)

    Raises
    ------
    FileFormatError
        Unreadable or invalid YAML (names the field).
    Conflict
        The name and version exist with different content.
    PermissionDenied
        The user may not approve (not QA).
    """
    require_permission(user, Permission.APPROVE, action="import specifications")
    path = Path(path)
    spec = load_specification(path)
    text = path.read_text(encoding="utf-8")
    sha = hashlib.sha256(text.encode("utf-8")).hexdigest()
    existing = qrepo.find_specification(session, spec.name, spec.version)
    if existing is not None:
        if existing.sha256 == sha:
            return existing, False
        raise Conflict(f"specification {spec.name!r} version {spec.version} already exists with "
                       "different content; give the new content a new version")
    record = SpecificationRecord(
        name=spec.name, version=spec.version, product_type=spec.product_type,
        status=spec.status, effective_date=spec.effective_date, yaml_text=text,
        tests_json=json.dumps([t.model_dump(mode="json") for t in spec.tests], sort_keys=True),
        sha256=sha, imported_by_id=user.id)
    with acting_as(session, user):
        if spec.status is SpecStatus.EFFECTIVE:
            previous = qrepo.effective_specification(session, spec.name)
            if previous is not None:
                with change_reason(session, f"superseded by version {spec.version}"):
                    previous.status = SpecStatus.SUPERSEDED
        session.add(record)
        session.flush()
    return record, True


def export_specification(session: Session, name: str, version: str | None = None) -> str:
    """YAML text of a stored specification version (with its current status)."""
    return dump_specification(_spec_model(qrepo.get_specification(session, name, version)))


def assign_specification(session: Session, user: User, lot_number: str, name: str
                         ) -> LotSpecification:
    """Judge ``lot_number`` against specification ``name`` (the version in force is used)."""
    if not (Permission.APPROVE in _perms(user) or Permission.ENTER_RESULTS in _perms(user)):
        require_permission(user, Permission.APPROVE, action="assign specifications")
    if not qrepo.list_specifications(session, name=name):
        raise InvalidInput(f"no specification {name!r}; import it first (exotrace spec import)")
    lot = repo.get_by(session, Lot, number=lot_number)
    current = qrepo.lot_assignment(session, lot.id)
    with acting_as(session, user):
        if current is None:
            current = LotSpecification(lot_id=lot.id, specification_name=name,
                                       assigned_by_id=user.id)
            session.add(current)
        elif current.specification_name != name:
            with change_reason(session, f"specification changed to {name}"):
                current.specification_name = name
                current.assigned_by_id = user.id
        session.flush()
    return current


def specification_in_force(session: Session, lot: Lot) -> SpecificationRecord:
    """The effective version of the lot's specification.

    Without an assignment, the only specification with an effective version is
    used; with several, the lot must be assigned one.
    """
    assignment = qrepo.lot_assignment(session, lot.id)
    if assignment is not None:
        found = qrepo.effective_specification(session, assignment.specification_name)
        if found is None:
            raise RuleViolation(f"specification {assignment.specification_name!r} of lot "
                                f"{lot.number} has no effective version")
        return found
    effective = [e for e in (qrepo.effective_specification(session, n)
                             for n in qrepo.specification_names(session)) if e is not None]
    if len(effective) == 1:
        return effective[0]
    if not effective:
        raise RuleViolation(f"lot {lot.number}: no effective specification; import one "
                            "(exotrace spec import FILE.yaml)")
    raise RuleViolation(f"lot {lot.number} has no specification assigned and "
                        f"{len(effective)} are effective; assign one (exotrace spec assign NAME "
                        f"--lot {lot.number})")
