"""Read models of the lot pages and the lot API: the paginated lot list, a lot's
genealogy (summarised for drawing), its signatures, its history and its
certificate of analysis.

Everything here only reads. The list is one count and one page query (plus one
query each for the page's parents and specifications), so it stays fast at
10,000 lots; the genealogy reuses the trace walks (:mod:`._trace`) and
summarises vials as counts per lot instead of listing them.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.orm import Session

from ..errors import Conflict, ExotraceError, InsufficientData, InvalidInput
from . import _repositories as repo
from ._auth import signature_is_current
from ._enums import LotStatus
from ._models_audit import AuditEntry
from ._models_auth import Signature
from ._models_lot import Lot, LotLink, Measurement, ResultFile, Storage
from ._models_quality import (
    LotDisposition,
    LotReferenceValue,
    LotSizeDistribution,
    LotSpecification,
    LotVerification,
    OOSInvestigationRecord,
    QualityResult,
    SpecificationRecord,
)
from ._models_source import IsolationRun
from ._trace import _back_rows, _current_consents, trace_forward
from ._views import audit_entry_view

__all__ = [
    "LOT_LIST_MAX_PER_PAGE",
    "LOT_LIST_SORTS",
    "LotListQuery",
    "lot_certificate",
    "lot_genealogy",
    "lot_history",
    "lot_list",
    "lot_page",
    "lot_product_types",
    "lot_signatures",
    "lot_size_distributions",
]

#: Sort keys of the lot list -> column (ties broken by lot number).
LOT_LIST_SORTS = {"number": Lot.number, "created": Lot.created_at, "expiry": Lot.expires_on,
                  "status": Lot.status}
LOT_LIST_MAX_PER_PAGE = 200
_US = "\x1f"
#: Subjects named on the genealogy graph; more are counted.
GENEALOGY_MAX_SUBJECTS = 12
#: Audit entries shown as a lot's history (the newest).
HISTORY_LIMIT = 200

# Tables whose rows belong to one lot (``lot_id``) and whose audit entries are the
# lot's history. Vials are left out on purpose: a lot has thousands, each with an
# entry; the history says how many were filled instead.
_CHILD_TABLES = (Measurement, ResultFile, Storage, LotSpecification, LotReferenceValue,
                 QualityResult, OOSInvestigationRecord, LotVerification, LotDisposition,
                 LotSizeDistribution)


@dataclass(frozen=True)
class LotListQuery:
    """What the lot list shows: filters, sort and page (validated by :meth:`checked`)."""

    status: str | None = None
    product: str | None = None
    number: str | None = None
    sort: str = "number"
    descending: bool = False
    page: int = 1
    per_page: int = 50

    def checked(self) -> LotListQuery:
        """This query, or InvalidInput naming the first bad field."""
        if self.status is not None and self.status not in {s.value for s in LotStatus}:
            raise InvalidInput(f"status {self.status!r}: not one of "
                               f"{', '.join(s.value for s in LotStatus)}")
        if self.sort not in LOT_LIST_SORTS:
            raise InvalidInput(f"sort {self.sort!r}: not one of {', '.join(LOT_LIST_SORTS)}")
        if self.page < 1:
            raise InvalidInput(f"page {self.page}: pages start at 1")
        if not 1 <= self.per_page <= LOT_LIST_MAX_PER_PAGE:
            raise InvalidInput(f"per_page {self.per_page}: give 1 to {LOT_LIST_MAX_PER_PAGE}")
        return self


def _effective_specifications(session: Session) -> list[SpecificationRecord]:
    """The effective version of every specification name (newest effective id per name)."""
    newest = (sa.select(sa.func.max(SpecificationRecord.id))
              .where(SpecificationRecord.status == "effective")
              .group_by(SpecificationRecord.name))
    return list(session.scalars(sa.select(SpecificationRecord)
                                .where(SpecificationRecord.id.in_(newest))
                                .order_by(SpecificationRecord.name)))


def lot_product_types(session: Session) -> list[str]:
    """Product types of the effective specifications (the lot list's product filter)."""
    return sorted({s.product_type for s in _effective_specifications(session)})


def _product_condition(session: Session, product: str):
    """Lots whose specification in force has ``product`` as product type or name.

    Same rule as :func:`~exotrace.records.specification_in_force`: an assigned
    specification's effective version, else the only effective specification.
    """
    effective = _effective_specifications(session)
    names = [s.name for s in effective if product in (s.product_type, s.name)]
    assigned = sa.select(LotSpecification.lot_id).where(
        LotSpecification.specification_name.in_(names))
    condition = Lot.id.in_(assigned)
    if len(effective) == 1 and names:
        unassigned = ~sa.exists().where(LotSpecification.lot_id == Lot.id)
        condition = sa.or_(condition, unassigned)
    return condition


def _filtered(session: Session, query: LotListQuery, stmt):
    if query.status is not None:
        stmt = stmt.where(Lot.status == LotStatus(query.status))
    if query.product:
        stmt = stmt.where(_product_condition(session, query.product))
    if query.number:
        # Literal match of what the user typed (escape LIKE's wildcards).
        text = query.number.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        stmt = stmt.where(Lot.number.ilike(f"%{text}%", escape="\\"))
    return stmt


def _list_row(lot: Lot, run_code: str | None, parents: list[str],
              specification: str | None) -> dict:
    return {"number": lot.number, "status": lot.status.value,
            "intended_use": lot.intended_use.value, "manufactured_on": lot.manufactured_on,
            "expires_on": lot.expires_on, "created_at": lot.created_at,
            "volume_ml": lot.volume_ml, "isolation_run": run_code, "parents": parents,
            "specification": specification}


def lot_list(session: Session, query: LotListQuery) -> dict:
    """One page of lots, filtered and sorted in SQL.

    Returns
    -------
    dict
        ``items`` (number, status, intended_use, manufactured_on, expires_on,
        created_at, volume_ml, isolation_run, parents, specification),
        ``total`` (lots matching the filters), ``page``, ``per_page``,
        ``pages``, and the query echoed (``status``, ``product``, ``number``,
        ``sort``, ``order``). A page past the last is empty, not an error.
    """
    query = query.checked()
    column = LOT_LIST_SORTS[query.sort]
    order = [column.desc() if query.descending else column.asc()]
    if query.sort == "expiry":  # lots without expiry last, whichever the direction
        order = [order[0].nulls_last()]
    if query.sort != "number":
        order.append(Lot.number.desc() if query.descending else Lot.number.asc())
    # Two round trips: the number of lots matching the filters, and the page's lots
    # with their isolation run, parents (joined by the unit separator, which no lot
    # number holds) and specification. (A window count in the page query would make
    # the database build every matching row, subqueries included, not only the page.)
    total = session.scalar(_filtered(session, query, sa.select(sa.func.count(Lot.id)))) or 0
    parent = sa.orm.aliased(Lot)
    parents = (sa.select(sa.func.aggregate_strings(parent.number, _US))
               .select_from(LotLink).join(parent, parent.id == LotLink.parent_lot_id)
               .where(LotLink.child_lot_id == Lot.id).scalar_subquery())
    specification = (sa.select(LotSpecification.specification_name)
                     .where(LotSpecification.lot_id == Lot.id).limit(1).scalar_subquery())
    # The page's ids first (index order, no per-row work for the skipped rows),
    # then their columns and subqueries for those rows only.
    page = (_filtered(session, query, sa.select(Lot.id)).order_by(*order)
            .limit(query.per_page).offset((query.page - 1) * query.per_page).subquery())
    rows = session.execute(
        sa.select(Lot, IsolationRun.code, parents, specification)
        .join(page, page.c.id == Lot.id)
        .outerjoin(IsolationRun, IsolationRun.id == Lot.isolation_run_id)
        .order_by(*order)).all()
    return {
        "items": [_list_row(lot, code, sorted(joined.split(_US)) if joined else [], spec)
                  for lot, code, joined, spec in rows],
        "total": total, "page": query.page, "per_page": query.per_page,
        "pages": max(1, math.ceil(total / query.per_page)),
        "status": query.status, "product": query.product, "number": query.number,
        "sort": query.sort, "order": "desc" if query.descending else "asc",
    }


# --------------------------------------------------------------------------- genealogy

def lot_genealogy(session: Session, lot: Lot) -> dict:
    """The lot's family for drawing: sources above it, lots and vials below it.

    Ancestors come from the trace-back walk (every parent lot through pools
    and splits, their isolation runs, collections, cell banks and donors);
    descendants from :func:`~exotrace.records.trace_forward` from this lot.
    Vials are summarised per lot (count by status), subjects by code.

    Returns
    -------
    dict
        ``lot`` (number), ``donors``, ``cell_banks``, ``collections``,
        ``isolation_runs``, ``lots`` (number, status, ``role`` ancestor/self/
        descendant, ``vials`` count, ``vials_by_status``), ``edges``
        (``[from_kind, from_key, to_kind, to_key, label]``), ``subjects``
        (first :data:`GENEALOGY_MAX_SUBJECTS`) and ``more_subjects``.
    """
    back = _back_rows(session, lot.id)
    forward = trace_forward(session, lot_number=lot.number)
    consents = _current_consents(back.get("consent", []))
    donors = {r.id: {"code": r.label, "consent": consents.get(r.id)}
              for r in back.get("donor", [])}
    banks = {r.id: {"code": r.label, "tissue": r.status, "donor_id": r.ref_id,
                    "parent_id": int(r.date1) if r.date1 else None}
             for r in back.get("cell_bank", [])}
    colls = {r.id: {"code": r.label, "cell_bank_id": r.ref_id}
             for r in back.get("collection", [])}
    runs = {r.id: {"code": r.label, "method": r.status, "collection_id": r.ref_id}
            for r in back.get("isolation_run", [])}
    lots: dict[int, dict] = {}
    for r in back.get("lot", []):
        lots[r.id] = {"number": r.label, "status": r.status, "isolation_run_id": r.ref_id,
                      "role": "self" if r.id == lot.id else "ancestor"}
    for d in forward["lots"]:
        lots.setdefault(d["id"], {"number": d["number"], "status": d["status"],
                                  "isolation_run_id": None, "role": "descendant"})
    by_lot: dict[str, Counter] = {}
    for v in forward["vials"]:
        by_lot.setdefault(v["lot"], Counter())[v["status"]] += 1
    ids = list(lots)
    edges: list[list] = []
    for b in banks.values():
        donor = donors.get(b["donor_id"])
        if b["parent_id"] in banks:
            edges.append(["cell_bank", banks[b["parent_id"]]["code"], "cell_bank", b["code"], ""])
        elif donor is not None:
            edges.append(["donor", donor["code"], "cell_bank", b["code"], ""])
    for c in colls.values():
        if c["cell_bank_id"] in banks:
            edges.append(["cell_bank", banks[c["cell_bank_id"]]["code"], "collection",
                          c["code"], ""])
    for r in runs.values():
        if r["collection_id"] in colls:
            edges.append(["collection", colls[r["collection_id"]]["code"], "isolation_run",
                          r["code"], ""])
    for d in lots.values():
        if d["isolation_run_id"] in runs:
            edges.append(["isolation_run", runs[d["isolation_run_id"]]["code"], "lot",
                          d["number"], ""])
    for parent_id, child_id, kind, quantity in session.execute(
            sa.select(LotLink.parent_lot_id, LotLink.child_lot_id, LotLink.kind,
                      LotLink.quantity_ml)
            .where(LotLink.parent_lot_id.in_(ids), LotLink.child_lot_id.in_(ids))
            .order_by(LotLink.id)):
        label = kind.value + (f" {quantity:g} mL" if quantity is not None else "")
        edges.append(["lot", lots[parent_id]["number"], "lot", lots[child_id]["number"], label])
    subjects = forward.get("subjects", [])
    lot_rows = sorted(({"number": d["number"], "status": d["status"], "role": d["role"],
                        "vials": sum(by_lot.get(d["number"], Counter()).values()),
                        "vials_by_status": dict(sorted(by_lot.get(d["number"],
                                                                  Counter()).items()))}
                       for d in lots.values()), key=lambda d: d["number"])
    for d in lot_rows:
        if d["vials"]:
            edges.append(["lot", d["number"], "vials", d["number"], ""])
    for s in subjects[:GENEALOGY_MAX_SUBJECTS]:
        for number in s["lots"]:
            if number in by_lot:
                edges.append(["vials", number, "subject", s["code"], ""])
    return {
        "lot": lot.number,
        "donors": sorted((d for d in donors.values()), key=lambda d: d["code"]),
        "cell_banks": sorted(b["code"] for b in banks.values()),
        "collections": sorted(c["code"] for c in colls.values()),
        "isolation_runs": sorted(r["code"] for r in runs.values()),
        "lots": lot_rows, "edges": edges,
        "subjects": [{"code": s["code"], "protocol": s.get("protocol"),
                      "administrations": s.get("administrations"), "lots": s["lots"]}
                     for s in subjects[:GENEALOGY_MAX_SUBJECTS]],
        "more_subjects": max(0, len(subjects) - GENEALOGY_MAX_SUBJECTS),
    }


# --------------------------------------------------------------------------- signatures

def lot_signatures(session: Session, lot: Lot) -> list[dict]:
    """Electronic signatures on the lot and its verification and disposition records.

    Each with its manifestation (21 CFR 11.50): printed name, UTC date and
    time, meaning; what was signed; and ``current``: whether the signed record
    still matches the signature (:func:`~exotrace.records.signature_is_current`).
    Oldest first.
    """
    records = {("lot", lot.id): (lot, "lot")}
    for v in session.scalars(sa.select(LotVerification).where(LotVerification.lot_id == lot.id)):
        records[("lot_verification", v.id)] = (v, f"verification ({v.conclusion})")
    for d in session.scalars(sa.select(LotDisposition).where(LotDisposition.lot_id == lot.id)):
        records[("lot_disposition", d.id)] = (d, f"{d.action.value} ({d.conclusion or '-'})")
    conditions = [sa.and_(Signature.table_name == table, Signature.record_id.in_(
        [rid for t, rid in records if t == table])) for table in {t for t, _ in records}]
    signatures = session.scalars(sa.select(Signature).where(sa.or_(*conditions))
                                 .order_by(Signature.signed_at, Signature.id))
    out = []
    for sig in signatures:
        record, what = records[(sig.table_name, sig.record_id)]
        out.append({"id": sig.id, "printed_name": sig.printed_name,
                    "meaning": sig.meaning.value, "signed_at": sig.signed_at,
                    "record": f"{sig.table_name} {sig.record_id}", "signed": what,
                    "current": signature_is_current(session, sig, record)})
    return out


# --------------------------------------------------------------------------- history

def lot_history(session: Session, lot: Lot, *, limit: int = HISTORY_LIMIT,
                signatures: list[dict] | None = None, vials: int | None = None) -> dict:
    """The audit entries of the lot row and of the records that belong to it.

    ``signatures``: the lot's :func:`lot_signatures`, ``vials``: its number of
    vials, when the caller has them already (no second read).

    Returns
    -------
    dict
        ``entries``: the newest ``limit`` entries, newest first (audit entry
        views), ``total``: how many entries there are in all, ``vials``: how
        many vials were filled (their per-vial entries are not listed).
    """
    keys = [("lot", [str(lot.id)])]
    children: dict[str, list[str]] = {}
    # One round trip for the ids of every child table.
    union = sa.union_all(*(sa.select(sa.literal(m.__tablename__).label("t"), m.id.label("id"))
                           .where(m.lot_id == lot.id) for m in _CHILD_TABLES))
    for table, id_ in session.execute(union):
        children.setdefault(table, []).append(str(id_))
    keys += sorted(children.items())
    if signatures is None:
        signatures = lot_signatures(session, lot)
    signature_ids = [str(s["id"]) for s in signatures]
    if signature_ids:
        keys.append(("signature", signature_ids))
    where = sa.or_(*(sa.and_(AuditEntry.table_name == table, AuditEntry.record_pk.in_(pks))
                     for table, pks in keys))
    total = session.scalar(sa.select(sa.func.count()).select_from(AuditEntry).where(where)) or 0
    entries = session.scalars(sa.select(AuditEntry).where(where)
                              .order_by(AuditEntry.seq.desc()).limit(limit))
    return {"entries": [audit_entry_view(e) for e in entries], "total": total,
            "vials": repo.count_vials(session, lot.id) if vials is None else vials}


# --------------------------------------------------------------------------- sizes

def lot_size_distributions(session: Session, lot: Lot | str) -> list:
    """Every size distribution stored for the lot (a row or a lot number), as
    :class:`~exotrace.quality.MethodDistribution`: imported instrument results
    (``extra["number_distribution"]``) first, then entered quality distributions."""
    import json

    from ..quality import MethodDistribution
    from ._services_methods import lot_method_distributions

    if isinstance(lot, str):
        lot = repo.get_by(session, Lot, number=lot)
    found = list(lot_method_distributions(session, lot))
    for row in session.scalars(sa.select(LotSizeDistribution)
                               .where(LotSizeDistribution.lot_id == lot.id)
                               .order_by(LotSizeDistribution.id)):
        try:
            diameters = [float(x) for x in json.loads(row.diameters_nm_json)]
            weights = [float(x) for x in json.loads(row.weights_json)]
        except (TypeError, ValueError):
            continue
        total = sum(weights)
        if len(diameters) < 2 or len(diameters) != len(weights) or total <= 0:
            continue
        found.append(MethodDistribution(method="entered", source=row.source,
                                        diameter_nm=tuple(diameters),
                                        fraction=tuple(w / total for w in weights)))
    return found


# --------------------------------------------------------------------------- lot page

def _evaluation(session: Session, lot: Lot) -> tuple[dict | None, str | None]:
    from ._quality_evaluation import evaluate_lot_row

    try:
        return evaluate_lot_row(session, lot), None
    except ExotraceError as exc:  # no specification in force, incomplete records
        return None, str(exc)


def _method_comparison(session: Session, lot: Lot, distributions: list) -> dict | None:
    from ._services_methods import lot_method_comparison

    if len(distributions) < 2:
        return None
    try:
        return lot_method_comparison(session, lot)[1]
    except (InsufficientData, ExotraceError):
        return None


def lot_page(session: Session, number: str) -> dict:
    """Everything the lot page shows, read once: the lot's view, release state,
    genealogy, evaluation (or why there is none), signatures, history, size
    distributions (method, source, bins) and, with two or more, their comparison.
    Each part hands what it loaded to the next (the lot row, the signatures, the
    vial count), so no row is read twice."""
    from ._quality_evaluation import release_state
    from ._views import lot_view

    lot = repo.get_by(session, Lot, number=number)
    view = lot_view(session, lot)
    evaluation, evaluation_error = _evaluation(session, lot)
    distributions = lot_size_distributions(session, lot)
    signatures = lot_signatures(session, lot)
    return {
        "lot": view, "release_state": (evaluation["release_state"] if evaluation
                                       else release_state(session, lot).value),
        "released_at": lot.released_at, "genealogy": lot_genealogy(session, lot),
        "evaluation": evaluation, "evaluation_error": evaluation_error,
        "signatures": signatures, "history": lot_history(session, lot, signatures=signatures,
                                                  vials=view["vials"]),
        "distributions": [{"method": d.method, "source": d.source, "bins": len(d.diameter_nm)}
                          for d in distributions],
        "comparison": _method_comparison(session, lot, distributions),
    }


# --------------------------------------------------------------------------- certificate

def lot_certificate(session: Session, lot_number: str, *, manufacturer: str):
    """The certificate of analysis of a released lot (:func:`build_certificate`).

    Raises
    ------
    Conflict
        The lot is not released (a certificate is offered for released lots).
    IntegrityFailure
        The release record changed after it was signed.
    """
    from ._quality_certificate import build_certificate

    lot = repo.get_by(session, Lot, number=lot_number)
    if lot.status is not LotStatus.RELEASED:
        raise Conflict(f"lot {lot.number} is {lot.status.value}; a certificate of analysis is "
                       "issued for released lots")
    return build_certificate(session, lot_number, manufacturer=manufacturer)
