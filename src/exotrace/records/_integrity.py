"""Everything ``exotrace audit verify`` checks, in one report.

:func:`verify_records` runs, in order: the PostgreSQL protections (append-only
triggers present and enabled, the connected role neither superuser nor owner
and unable to UPDATE/DELETE/TRUNCATE the trail), the hash chain and every
audited row (:func:`exotrace.records.verify_audit_trail`), the signatures
(keyed hash valid under the server's key; every record whose state needs a
signature has a valid one by the person it names) and, when given, the
signed checkpoints (:mod:`exotrace.records._checkpoint`).
"""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.orm import Session

from ..errors import IntegrityFailure
from . import _repositories as repo
from . import _repositories_quality as qrepo
from ._audit import AuditFinding, AuditReport, verify_audit_trail
from ._auth import require_signature, signature_is_current
from ._checkpoint import verify_checkpoints
from ._db_roles import protection_findings
from ._enums import LotStatus, SignatureMeaning
from ._models_auth import Signature
from ._models_lot import Lot
from ._models_quality import DispositionAction, LotDisposition, LotVerification
from ._signing import load_signing_key, signature_problems

__all__ = ["SIGNED_RECORDS", "require_release_signature", "signature_findings", "verify_records"]

#: Records that exist only with a signature: model -> (meaning, column naming the signer).
SIGNED_RECORDS = {
    LotVerification: (SignatureMeaning.REVIEW, "verified_by_id"),
    LotDisposition: (SignatureMeaning.APPROVAL, "decided_by_id"),
}


def require_release_signature(session: Session, lot: Lot) -> None:
    """A released lot is trusted only with a signed release record (QA approval).

    Raises
    ------
    IntegrityFailure
        No release record, or its approval signature is missing, forged or
        no longer matches the record.
    """
    disposition = qrepo.latest_disposition(session, lot.id, (DispositionAction.RELEASE,))
    if disposition is None:
        raise IntegrityFailure(f"lot {lot.number} is released but has no release record; "
                               "released outside the release workflow")
    require_signature(session, disposition, SignatureMeaning.APPROVAL,
                      signer_id=disposition.decided_by_id)


def signature_findings(session: Session) -> list[AuditFinding]:
    """Forged or unkeyed signatures, signed records without a valid signature, and released
    lots without a validly signed release record."""
    key = load_signing_key()
    findings = []
    for sig in session.scalars(sa.select(Signature).order_by(Signature.id)):
        for problem in signature_problems(sig, key):
            findings.append(AuditFinding("signature_invalid", "signature", str(sig.id), None,
                                         problem))
    for model, (meaning, signer_col) in SIGNED_RECORDS.items():
        for record in session.scalars(sa.select(model).order_by(model.id)):
            signer = getattr(record, signer_col)
            sigs = [s for s in repo.signatures_for(session, model.__tablename__, record.id)
                    if s.meaning is meaning and s.user_id == signer]
            if not any(signature_is_current(session, s, record) for s in sigs):
                findings.append(AuditFinding(
                    "signature_missing", model.__tablename__, str(record.id), None,
                    f"{model.__tablename__} {record.id} has no valid {meaning.value} signature "
                    f"by user {signer} (missing, forged, or the record changed since)"))
    for lot in session.scalars(sa.select(Lot).where(Lot.status == LotStatus.RELEASED)
                               .order_by(Lot.id)):
        if qrepo.latest_disposition(session, lot.id, (DispositionAction.RELEASE,)) is None:
            findings.append(AuditFinding(
                "release_unsigned", "lot", str(lot.id), None,
                f"lot {lot.number} is released without a release record (no QA signature)"))
    return findings


def verify_records(session: Session, *, checkpoint_dir: Path | None = None,
                   public_key: Path | None = None, max_findings: int = 1000) -> AuditReport:
    """The full integrity report (module docstring); ``ok`` only when nothing is found."""
    protections = protection_findings(session.connection())
    report = verify_audit_trail(session, max_findings=max_findings)
    report.findings[:0] = protections
    report.findings.extend(signature_findings(session))
    if checkpoint_dir is not None:
        if public_key is None:
            from ..errors import InvalidInput

            raise InvalidInput("--checkpoints needs --public-key (the KEYFILE.pub of audit "
                               "keygen)")
        report.checkpoints_checked, found = verify_checkpoints(session, checkpoint_dir,
                                                               public_key)
        report.findings.extend(found)
    del report.findings[max_findings:]
    return report
