"""Clinic services: recall (who received material from a donor, cell bank, lot or reagent
batch) and the subjects reached by :func:`~exotrace.records.trace_forward`.

Importing this module registers the ``subjects`` trace-forward extension.
"""

from __future__ import annotations

from sqlalchemy.orm import Session

from . import _repositories_clinic as crepo
from ._trace import forward_source, register_forward_extension

__all__ = ["recall"]


def recall(session: Session, *, donor_code: str | None = None, cell_bank_code: str | None = None,
           lot_number: str | None = None, reagent_code: str | None = None) -> dict:
    """Every subject and administration affected by one donor, cell bank, lot or reagent batch.

    One SQL statement walks the cell-bank lineage and the lot genealogy
    (pools and splits) and joins the administrations.

    Returns
    -------
    dict
        ``source``, ``subjects`` (codes, sorted) and ``administrations``
        (subject, vial, lot, administered_at, dose, dose_unit, particles).
    """
    kind, key, ids = forward_source(session, "recall", donor_code=donor_code,
                                    cell_bank_code=cell_bank_code, lot_number=lot_number,
                                    reagent_code=reagent_code)
    rows = crepo.recall_rows(session, **ids)
    administrations = [{"subject": r.subject, "protocol": r.protocol, "arm": r.arm,
                        "vial": r.vial, "lot": r.lot, "administered_at": r.administered_at,
                        "dose": r.dose_amount, "dose_unit": r.dose_unit,
                        "particles": r.particles, "volume_ml": r.volume_ml,
                        "administration_id": r.administration_id} for r in rows]
    return {"source": {"kind": kind, "key": key},
            "subjects": sorted({a["subject"] for a in administrations}),
            "administrations": administrations}


def _forward_subjects(session: Session, lot_ids: list[int], vial_ids: list[int]) -> list[dict]:
    """Trace-forward extension: subjects who received vials of the lots reached.

    One entry per subject: code, protocol, arm, number of administrations and
    the lots they came from (``exotrace recall`` lists each administration).
    """
    by_subject: dict[str, dict] = {}
    for code, protocol, arm, lot, n, _last in crepo.administrations_for_lots(session, lot_ids):
        s = by_subject.setdefault(code, {"code": code, "protocol": protocol, "arm": arm,
                                         "administrations": 0, "lots": []})
        s["administrations"] += n
        s["lots"].append(lot)
    return [{**by_subject[c], "lots": sorted(by_subject[c]["lots"])} for c in sorted(by_subject)]


register_forward_extension("subjects", _forward_subjects)
