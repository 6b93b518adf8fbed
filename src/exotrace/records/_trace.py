"""Traceability: forward (source -> every lot and vial) and back (vial -> donor, consent).

Each direction is ONE SQL statement built from recursive CTEs that walk the
cell-bank lineage (master -> working banks) and the lot genealogy graph
(pools and splits), portable between SQLite and PostgreSQL. The indexes on
``lot_link.parent_lot_id``/``child_lot_id``, ``vial.lot_id``,
``lot.isolation_run_id``, ``isolation_run.collection_id``,
``collection.cell_bank_id`` and ``cell_bank.donor_id``/``parent_id`` keep
both fast on 100k vials.

Extension point: later packages (the clinic) add keys to the forward answer
with :func:`register_forward_extension`, e.g. ``subjects`` who received vials.
"""

from __future__ import annotations

import gc
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import sqlalchemy as sa
from sqlalchemy.orm import Session

from ..errors import InvalidInput, NotFound
from . import _repositories as repo
from ._models_lot import Lot, Vial
from ._models_source import CellBank, Donor, ReagentBatch

__all__ = [
    "ForwardExtension",
    "lot_sources",
    "register_forward_extension",
    "trace_back",
    "trace_forward",
]

#: fn(session, lot_ids, vial_ids) -> list of JSON-ready dicts
ForwardExtension = Callable[[Session, list[int], list[int]], list[dict]]
_FORWARD_EXTENSIONS: dict[str, ForwardExtension] = {}


def register_forward_extension(key: str, fn: ForwardExtension) -> None:
    """Add ``key`` to every forward trace, computed by ``fn`` from the lots and vials reached.

    The clinic registers ``"subjects"`` (people who received the vials);
    until then ``subjects`` is an empty list.
    """
    _FORWARD_EXTENSIONS[key] = fn


_INT = sa.Integer

# The forward walk, shared by every forward question (trace, recall): donor or
# cell bank -> descendant banks -> lots isolated from them, plus a lot or a
# reagent batch as seed -> every lot descending through pools and splits.
FORWARD_LOTS_CTE = """
WITH RECURSIVE
banks(id) AS (
    SELECT id FROM cell_bank WHERE donor_id = :donor_id OR id = :cell_bank_id
    UNION
    SELECT cb.id FROM cell_bank cb JOIN banks ON cb.parent_id = banks.id
),
seed_lots(id) AS (
    SELECT l.id FROM lot l
        JOIN isolation_run i ON i.id = l.isolation_run_id
        JOIN collection c ON c.id = i.collection_id
        JOIN banks ON banks.id = c.cell_bank_id
    UNION SELECT id FROM lot WHERE id = :lot_id
    UNION SELECT lot_id FROM reagent_use WHERE reagent_batch_id = :reagent_id AND lot_id IS NOT NULL
    UNION SELECT l.id FROM lot l JOIN reagent_use r ON r.isolation_run_id = l.isolation_run_id
        WHERE r.reagent_batch_id = :reagent_id
),
lots(id) AS (
    SELECT id FROM seed_lots
    UNION
    SELECT ll.child_lot_id FROM lot_link ll JOIN lots ON ll.parent_lot_id = lots.id
)
"""

_FORWARD_TEMPLATE = FORWARD_LOTS_CTE + """SELECT 'lot' AS kind, l.id AS id, l.number AS label, l.status AS status, NULL AS lot_id
    FROM lot l JOIN lots ON lots.id = l.id
UNION ALL
SELECT 'vial', v.id, v.identifier, v.status, v.lot_id
    FROM lots JOIN vial v ON v.lot_id = lots.id
"""
# On PostgreSQL the vials come aggregated, one row per lot: their ids as an
# integer array, identifiers and statuses each as one text joined by US (the
# ASCII unit separator, which no identifier or status holds). Moving 10^4 rows
# through the driver and SQLAlchemy's row objects costs several times the query
# itself. LATERAL also keeps the planner (misled by the recursive CTE's row
# estimate) from merge-joining the whole vial index: it looks vials up lot by
# lot, as SQLite's planner does. The three aggregates of one scan share its row
# order, so they stay aligned; no ORDER BY in them (a sort per lot): the caller
# sorts all vials by id.
_US = "\x1f"
_FORWARD_PG_TEMPLATE = FORWARD_LOTS_CTE + """SELECT l.id, l.number, l.status, v.ids, v.identifiers, v.statuses
    FROM lot l JOIN lots ON lots.id = l.id
    CROSS JOIN LATERAL (SELECT array_agg(id) AS ids,
                               string_agg(identifier, chr(31)) AS identifiers,
                               string_agg(status, chr(31)) AS statuses
                        FROM vial WHERE vial.lot_id = lots.id) v
"""
_FORWARD_SQL = {
    dialect: sa.text(template).bindparams(
        sa.bindparam("donor_id", type_=_INT), sa.bindparam("cell_bank_id", type_=_INT),
        sa.bindparam("lot_id", type_=_INT), sa.bindparam("reagent_id", type_=_INT))
    for dialect, template in (("postgresql", _FORWARD_PG_TEMPLATE),
                              ("default", _FORWARD_TEMPLATE))
}
# From one lot (the lot page, ``trace forward --lot``) only the pool/split walk is
# needed. The general walk's seeds cannot be planned away for null parameters in a
# prepared statement, so PostgreSQL would still scan the lots for the other seeds
# (3.3 ms against 1.0 ms at 10,000 lots).
_FORWARD_FROM_LOT_CTE = """
WITH RECURSIVE
lots(id) AS (
    SELECT CAST(:lot_id AS INTEGER)
    UNION
    SELECT ll.child_lot_id FROM lot_link ll JOIN lots ON ll.parent_lot_id = lots.id
)
"""
_FORWARD_FROM_LOT_SQL = {
    dialect: sa.text(template.replace(FORWARD_LOTS_CTE, _FORWARD_FROM_LOT_CTE)).bindparams(
        sa.bindparam("lot_id", type_=_INT))
    for dialect, template in (("postgresql", _FORWARD_PG_TEMPLATE),
                              ("default", _FORWARD_TEMPLATE))
}


def _forward_rows(session: Session, params: dict) -> tuple[list[tuple], list[tuple]]:
    """``([(lot id, number, status)], [(vial id, identifier, status, lot id)])`` reached."""
    conn = session.connection()
    lots, vials = [], []
    queries = _FORWARD_SQL
    if params["lot_id"] is not None and not any(v is not None for k, v in params.items()
                                                if k != "lot_id"):
        queries, params = _FORWARD_FROM_LOT_SQL, {"lot_id": params["lot_id"]}
    if conn.dialect.name == "postgresql":
        for lot_id, number, status, ids, identifiers, statuses in conn.execute(
                queries["postgresql"], params).fetchall():
            lots.append((lot_id, number, status))
            if ids:
                vials.extend(zip(ids, identifiers.split(_US), statuses.split(_US),
                                 [lot_id] * len(ids), strict=True))
        return lots, vials
    # fetchall: iterating the result would fetch row by row from the driver.
    for kind, id_, label, status, lot_id in conn.execute(queries["default"],
                                                          params).fetchall():
        if kind == "lot":
            lots.append((id_, label, status))
        else:
            vials.append((id_, label, status, lot_id))
    return lots, vials


@contextmanager
def _collection_deferred() -> Iterator[None]:
    """Run a block with the cyclic garbage collector paused.

    A forward trace builds ~10^4 small dicts and tuples; that many allocations
    start full collections, which walk every live object of the process
    (~90 ms in a process that has done real work: the p95 of the largest
    trace was 110-120 ms against a median of 22-30 ms). The answer holds no
    reference cycles, so nothing waits on the collector; it runs again after.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def forward_source(session: Session, command: str, *, donor_code: str | None = None,
                   cell_bank_code: str | None = None, lot_number: str | None = None,
                   reagent_code: str | None = None) -> tuple[str, str, dict]:
    """The one source a forward question starts from: ``(kind, key, params)`` with the
    walk's parameters (``donor_id``, ``cell_bank_id``, ``lot_id``, ``reagent_id``; the
    source's id, the others None). InvalidInput (naming ``command``) unless exactly one
    is given; NotFound when it does not exist."""
    given = {k: v for k, v in (("donor", donor_code), ("cell_bank", cell_bank_code),
                               ("lot", lot_number), ("reagent_batch", reagent_code)) if v}
    if len(given) != 1:
        raise InvalidInput(f"{command} needs exactly one of --donor, --cell-bank, --lot, "
                           "--reagent-batch")
    kind, key = next(iter(given.items()))
    model, column, param = {"donor": (Donor, "code", "donor_id"),
                            "cell_bank": (CellBank, "code", "cell_bank_id"),
                            "lot": (Lot, "number", "lot_id"),
                            "reagent_batch": (ReagentBatch, "code", "reagent_id")}[kind]
    params = {"donor_id": None, "cell_bank_id": None, "lot_id": None, "reagent_id": None}
    params[param] = repo.get_by(session, model, **{column: key}).id
    return kind, key, params


def trace_forward(session: Session, *, donor_code: str | None = None,
                  cell_bank_code: str | None = None, lot_number: str | None = None,
                  reagent_code: str | None = None) -> dict:
    """Every lot (through pools and splits) and vial made from one source.

    Give exactly one of ``donor_code``, ``cell_bank_code``, ``lot_number``,
    ``reagent_code``.

    Returns
    -------
    dict
        ``{"source": {...}, "lots": [{"id", "number", "status"}], "vials":
        [{"id", "identifier", "status", "lot"}], "subjects": [...]}`` plus any
        registered extension keys.
    """
    kind, key, params = forward_source(session, "trace forward", donor_code=donor_code,
                                       cell_bank_code=cell_bank_code, lot_number=lot_number,
                                       reagent_code=reagent_code)
    with _collection_deferred():
        lot_rows, vial_rows = _forward_rows(session, params)
        lots = [{"id": i, "number": number, "status": status} for i, number, status in lot_rows]
        numbers = {d["id"]: d["number"] for d in lots}
        vial_rows.sort()
        vials = [{"id": i, "identifier": ident, "status": st, "lot": numbers[lid]}
                 for i, ident, st, lid in vial_rows]
        lots.sort(key=lambda d: d["number"])
        result = {"source": {"kind": kind, "key": key}, "lots": lots, "vials": vials, "subjects": []}
        lot_ids = [d["id"] for d in lots]
        vial_ids = [d["id"] for d in vials]
        for ext_key, fn in _FORWARD_EXTENSIONS.items():
            result[ext_key] = fn(session, lot_ids, vial_ids)
        return result


_BACK_SQL = sa.text("""
WITH RECURSIVE
anc(id) AS (
    SELECT :start_lot_id WHERE :start_lot_id IS NOT NULL
    UNION
    SELECT ll.parent_lot_id FROM lot_link ll JOIN anc ON ll.child_lot_id = anc.id
),
runs(id) AS (
    SELECT DISTINCT l.isolation_run_id FROM lot l JOIN anc ON anc.id = l.id
    WHERE l.isolation_run_id IS NOT NULL
),
colls(id) AS (
    SELECT DISTINCT i.collection_id FROM isolation_run i JOIN runs ON runs.id = i.id
),
banks(id) AS (
    SELECT c.cell_bank_id FROM collection c JOIN colls ON colls.id = c.id
    UNION
    SELECT cb.parent_id FROM cell_bank cb JOIN banks ON banks.id = cb.id
    WHERE cb.parent_id IS NOT NULL
),
donors(id) AS (
    SELECT DISTINCT cb.donor_id FROM cell_bank cb JOIN banks ON banks.id = cb.id
)
SELECT 'lot' AS kind, l.id AS id, l.number AS label, l.status AS status,
       l.isolation_run_id AS ref_id, CAST(l.manufactured_on AS VARCHAR(32)) AS date1,
       CAST(NULL AS VARCHAR(32)) AS date2, l.intended_use AS note
    FROM lot l JOIN anc ON anc.id = l.id
UNION ALL
SELECT 'link', ll.id, CAST(ll.parent_lot_id AS VARCHAR(32)), ll.kind, ll.child_lot_id,
       CAST(ll.quantity_ml AS VARCHAR(32)), NULL, NULL
    FROM lot_link ll JOIN anc ON anc.id = ll.child_lot_id
UNION ALL
SELECT 'isolation_run', i.id, i.code, i.method, i.collection_id,
       CAST(i.performed_on AS VARCHAR(32)), NULL, NULL
    FROM isolation_run i JOIN runs ON runs.id = i.id
UNION ALL
SELECT 'collection', c.id, c.code, c.serum_condition, c.cell_bank_id,
       CAST(c.collected_on AS VARCHAR(32)), NULL, c.medium
    FROM collection c JOIN colls ON colls.id = c.id
UNION ALL
SELECT 'cell_bank', cb.id, cb.code, cb.tissue, cb.donor_id, CAST(cb.parent_id AS VARCHAR(32)),
       NULL, cb.intended_use
    FROM cell_bank cb JOIN banks ON banks.id = cb.id
UNION ALL
SELECT 'donor', d.id, d.code, d.sex, NULL, NULL, NULL, d.age_band
    FROM donor d JOIN donors ON donors.id = d.id
UNION ALL
SELECT 'consent', cs.id, cs.version, cs.scopes, cs.donor_id,
       CAST(cs.consented_on AS VARCHAR(32)), CAST(cs.withdrawn_on AS VARCHAR(32)),
       cs.withdrawal_reason
    FROM consent cs JOIN donors ON donors.id = cs.donor_id
""").bindparams(sa.bindparam("start_lot_id", type_=_INT))


def _back_rows(session: Session, lot_id: int) -> dict[str, list]:
    rows: dict[str, list] = {}
    for row in session.connection().execute(_BACK_SQL, {"start_lot_id": lot_id}).fetchall():
        rows.setdefault(row.kind, []).append(row)
    return rows


def _current_consents(rows) -> dict[int, dict]:
    """Latest consent per donor id (by date, then id), as JSON-ready dicts."""
    best: dict[int, tuple] = {}
    for r in rows:
        key = (r.date1 or "", r.id)
        if r.ref_id not in best or key > best[r.ref_id][0]:
            best[r.ref_id] = (key, r)
    return {donor_id: {"id": r.id, "version": r.label, "scopes": r.status.split(","),
                       "consented_on": r.date1, "withdrawn_on": r.date2,
                       "withdrawal_reason": r.note, "withdrawn": r.date2 is not None}
            for donor_id, (_, r) in best.items()}


def trace_back(session: Session, vial_identifier: str) -> dict:
    """Vial -> its lot and every ancestor lot -> isolation -> collection -> cell bank -> donor.

    Returns
    -------
    dict
        ``vial``, ``lots``, ``links``, ``isolation_runs``, ``collections``,
        ``cell_banks``, ``donors`` (each with its current ``consent``), and for
        convenience ``donor`` / ``consent``: the first donor (sorted by code)
        and its current consent (a pooled lot can have several donors).
    """
    clean = "".join(c for c in vial_identifier.upper() if c not in " -")
    vial = repo.find_by(session, Vial, identifier=clean)
    if vial is None:
        raise NotFound(f"no vial with identifier {vial_identifier!r}")
    rows = _back_rows(session, vial.lot_id)
    consents = _current_consents(rows.get("consent", []))
    donors = sorted(({"id": r.id, "code": r.label, "sex": r.status, "age_band": r.note,
                      "consent": consents.get(r.id)} for r in rows.get("donor", [])),
                    key=lambda d: d["code"])
    lots = {r.id: r for r in rows.get("lot", [])}
    result = {
        "vial": {"id": vial.id, "identifier": vial.identifier, "status": vial.status.value,
                 "lot": lots[vial.lot_id].label},
        "lots": sorted(({"id": r.id, "number": r.label, "status": r.status,
                         "isolation_run_id": r.ref_id, "manufactured_on": r.date1,
                         "intended_use": r.note} for r in lots.values()),
                       key=lambda d: d["number"]),
        "links": [{"parent": lots[int(r.label)].label, "child": lots[r.ref_id].label,
                   "kind": r.status, "quantity_ml": float(r.date1) if r.date1 else None}
                  for r in rows.get("link", [])],
        "isolation_runs": sorted(({"id": r.id, "code": r.label, "method": r.status,
                                   "collection_id": r.ref_id, "performed_on": r.date1}
                                  for r in rows.get("isolation_run", [])), key=lambda d: d["code"]),
        "collections": sorted(({"id": r.id, "code": r.label, "serum_condition": r.status,
                                "cell_bank_id": r.ref_id, "collected_on": r.date1,
                                "medium": r.note} for r in rows.get("collection", [])),
                              key=lambda d: d["code"]),
        "cell_banks": sorted(({"id": r.id, "code": r.label, "tissue": r.status,
                               "donor_id": r.ref_id,
                               "parent_id": int(r.date1) if r.date1 else None,
                               "intended_use": r.note} for r in rows.get("cell_bank", [])),
                             key=lambda d: d["code"]),
        "donors": donors,
    }
    result["donor"] = ({k: v for k, v in donors[0].items() if k != "consent"}
                       if donors else None)
    result["consent"] = donors[0]["consent"] if donors else None
    return result


def lot_sources(session: Session, lot_id: int) -> list[tuple[int, str, dict | None]]:
    """(donor id, donor code, current consent dict) for every donor behind a lot."""
    rows = _back_rows(session, lot_id)
    consents = _current_consents(rows.get("consent", []))
    return sorted(((r.id, r.label, consents.get(r.id)) for r in rows.get("donor", [])),
                  key=lambda t: t[1])
