"""Read models of the release-workflow and quality pages (plain dicts, no ORM objects).

The pages and the API show a lot's release state in one view: the evaluation
against the specification in force, the results with who entered them, the
OOS investigations and every signature of the workflow with its
manifestation (printed name, UTC date and time, meaning). These functions only
read; the workflow itself is in the quality services (``verify_lot``,
``release_lot``, ...).
"""

from __future__ import annotations

from datetime import UTC

import sqlalchemy as sa
from sqlalchemy.orm import Session

from ..errors import InvalidInput, NotFound, RuleViolation
from . import _repositories as repo
from . import _repositories_quality as qrepo
from ._models_lot import Lot, Measurement
from ._models_quality import (
    DispositionAction,
    LotVerification,
    QualityResult,
    SpecificationRecord,
)
from ._views import lot_summary

__all__ = ["SIGNING_STATEMENTS", "close_lot_investigation", "lot_release_overview", "lot_signatures",
           "quality_choices", "signing_statement"]

#: What the signer states, by workflow step (shown on the form and with the signature).
SIGNING_STATEMENTS = {
    "verify": "Review: I have verified these results",
    "release": "Approval: I release this lot for use",
    "reject": "Approval: I reject this lot",
    "quarantine": "Approval: I place this lot in quarantine",
}


def signing_statement(table_name: str, action: str | None = None) -> str:
    """The statement of a workflow signature on ``table_name`` (``action`` of a disposition)."""
    if table_name == "lot_verification":
        return SIGNING_STATEMENTS["verify"]
    return SIGNING_STATEMENTS.get(action or "", f"Approval: {action or 'decision'}")


def _utc_text(moment) -> str | None:
    if moment is None:
        return None
    if moment.tzinfo is None:  # SQLite hands back naive UTC
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def lot_signatures(session: Session, lot: Lot) -> list[dict]:
    """Every verification and disposition signature of ``lot``, oldest first.

    Each item: ``id, step`` (verify/release/reject/quarantine), ``record``
    (``lot_verification:ID`` ...), ``printed_name, signed_at`` (datetime),
    ``signed_at_utc`` (text), ``meaning`` (review/approval), ``statement``.
    """
    verifications = list(session.scalars(
        sa.select(LotVerification).where(LotVerification.lot_id == lot.id)
        .order_by(LotVerification.id)))
    dispositions = qrepo.lot_dispositions(session, lot.id)
    steps = {("lot_verification", v.id): "verify" for v in verifications}
    steps.update({("lot_disposition", d.id): DispositionAction(d.action).value
                  for d in dispositions})
    out = []
    for table, ids in (("lot_verification", [v.id for v in verifications]),
                       ("lot_disposition", [d.id for d in dispositions])):
        for record_id in ids:
            for sig in repo.signatures_for(session, table, record_id):
                step = steps[(table, record_id)]
                out.append({"id": sig.id, "step": step, "record": f"{table}:{record_id}",
                            "printed_name": sig.printed_name, "signed_at": sig.signed_at,
                            "signed_at_utc": _utc_text(sig.signed_at),
                            "meaning": sig.meaning.value,
                            "statement": signing_statement(table, step)})
    out.sort(key=lambda s: s["id"])
    return out


def lot_release_overview(session: Session, lot_number: str) -> dict:
    """Everything the release page of a lot shows.

    Returns
    -------
    dict
        ``lot`` (:func:`lot_summary`), ``evaluation`` (as ``evaluate_lot``, read
        only; None when no specification is in force, then ``evaluation_error``
        says why), ``results`` (id, test, value, unit, qualitative, method,
        retest_of, entered_by, entered_at_utc), ``references`` (name, value,
        unit: e.g. the label claim), ``investigations`` (as
        ``list_investigation_views``), ``signatures`` (:func:`lot_signatures`),
        ``tests`` (test names of the specification, for the result form).

    Raises
    ------
    NotFound
        No lot with that number.
    """
    from . import evaluate_lot, list_investigation_views

    lot = repo.get_by(session, Lot, number=lot_number)
    evaluation, error = None, None
    try:
        evaluation = evaluate_lot(session, lot.number)
    except (RuleViolation, InvalidInput) as exc:  # no spec in force, a reference missing
        error = str(exc)
    results = qrepo.lot_quality_results(session, lot.id)
    users = qrepo.usernames(session, [r.entered_by_id for r in results])
    return {
        "lot": lot_summary(session, lot),
        "evaluation": evaluation, "evaluation_error": error,
        "results": [{"id": f"R{r.id}", "test": r.test, "value": r.value, "unit": r.unit,
                     "qualitative": r.qualitative, "method": r.method, "retest_of": r.retest_of,
                     "entered_by": users.get(r.entered_by_id),
                     "entered_at_utc": _utc_text(r.entered_at)} for r in results],
        "references": [{"name": r.name, "value": r.value, "unit": r.unit}
                       for r in qrepo.lot_reference_values(session, lot.id)],
        "investigations": list_investigation_views(session, lot_number=lot.number),
        "signatures": lot_signatures(session, lot),
        "tests": [t["test"] for t in evaluation["tests"]] if evaluation else [],
    }


def close_lot_investigation(session: Session, user, lot_number: str, investigation: int | str,
                            *, conclusion: str, phase: str, summary: str) -> dict:
    """Close an OOS investigation of lot ``lot_number`` (as ``close_investigation``).

    Refuses (NotFound) an investigation of another lot, so a page or URL of one
    lot never closes another lot's investigation. Returns the investigation's view.
    """
    from . import close_investigation, describe_investigation

    lot = repo.get_by(session, Lot, number=lot_number)
    inv = close_investigation(session, user, investigation, conclusion=conclusion, phase=phase,
                              summary=summary)
    if inv.lot_id != lot.id:  # raised before the unit of work commits: nothing is kept
        raise NotFound(f"lot {lot.number} has no OOS investigation {investigation}")
    return describe_investigation(session, inv)


def quality_choices(session: Session) -> dict:
    """Attributes that can be trended or compared and the products to filter by.

    Returns
    -------
    dict
        ``attributes``: measurement attributes and numeric result tests (sorted);
        ``products``: product types and names of stored specifications (sorted).
    """
    measured = session.scalars(sa.select(Measurement.attribute).distinct())
    tested = session.scalars(sa.select(QualityResult.test)
                             .where(QualityResult.value.is_not(None)).distinct())
    specs = session.execute(sa.select(SpecificationRecord.product_type,
                                      SpecificationRecord.name).distinct()).all()
    products = {p for row in specs for p in row if p}
    return {"attributes": sorted(set(measured) | set(tested)), "products": sorted(products)}
