"""Quality services: the certificate of analysis of a released (or rejected) lot."""

from __future__ import annotations

from datetime import UTC

from sqlalchemy.orm import Session

from ..errors import IntegrityFailure, InvalidInput, RuleViolation
from ..quality import CertificateData, SignatureManifest, certificate_from_evaluation
from . import _repositories as repo
from . import _repositories_quality as qrepo
from ._auth import signature_is_current
from ._enums import LotStatus
from ._models_lot import Lot
from ._models_quality import DispositionAction, SpecificationRecord
from ._quality_common import _evaluate
from ._quality_specs import specification_in_force

__all__ = ["build_certificate"]


def build_certificate(session: Session, lot_number: str, *, manufacturer: str,
                      manufacturer_address: str = "") -> CertificateData:
    """The certificate of analysis of a released (or rejected) lot, from its records.

    The QA signature of the release (or rejection) record is printed; the
    same records always give the same certificate (and CoA id).

    Raises
    ------
    RuleViolation
        The lot is neither released nor rejected.
    IntegrityFailure
        The release (or rejection) record changed after it was signed: its
        signature no longer matches (:func:`~exotrace.records.signature_is_current`).
    InvalidInput
        The lot has no expiry date, or the evaluation is incomplete.
    """
    lot = repo.get_by(session, Lot, number=lot_number)
    if lot.status not in (LotStatus.RELEASED, LotStatus.REJECTED):
        raise RuleViolation(f"lot {lot.number} is {lot.status.value}; a certificate of analysis "
                            "is issued only for released (or rejected) lots")
    action = DispositionAction.RELEASE if lot.status is LotStatus.RELEASED \
        else DispositionAction.REJECT
    disposition = qrepo.latest_disposition(session, lot.id, (action,))
    if disposition is None:
        raise RuleViolation(f"lot {lot.number} was {lot.status.value} outside the release "
                            "workflow (no signed disposition record); no certificate")
    record = (session.get(SpecificationRecord, disposition.specification_id)
              if disposition.specification_id else specification_in_force(session, lot))
    evaluation, _, spec = _evaluate(session, lot, record)
    signatures = repo.signatures_for(session, "lot_disposition", disposition.id)
    if not signatures:
        raise RuleViolation(f"lot {lot.number}: the {action.value} record is not signed")
    sig = signatures[-1]
    if not signature_is_current(session, sig, disposition):
        raise IntegrityFailure(
            f"lot {lot.number}: the {action.value} signature {sig.id} of {sig.printed_name} no "
            f"longer matches disposition record {disposition.id} (changed after signing); "
            "no certificate")
    if lot.expires_on is None:
        raise InvalidInput(f"lot {lot.number} has no expiry date; a certificate needs one")
    storage = qrepo.latest_storage(session, lot.id)
    storage_text = (f"{storage.temperature_c:g} C, {storage.buffer}, {storage.container}"
                    if storage is not None else "")
    manifest = SignatureManifest(printed_name=sig.printed_name, signed_at=sig.signed_at,
                                 meaning=f"{sig.meaning.value}: lot {action.value}")
    decided = disposition.decided_at.astimezone(UTC).date()
    return certificate_from_evaluation(
        evaluation, product_name=spec.product_type, lot_number=lot.number,
        manufacturer=manufacturer, manufacture_date=lot.manufactured_on, release_date=decided,
        expiry_date=lot.expires_on, signature=manifest,
        manufacturer_address=manufacturer_address, storage=storage_text)
