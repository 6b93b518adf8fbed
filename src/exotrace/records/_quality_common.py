"""Quality services: what the quality workflows share: a lot's results as the pure core
sees them, the stored specification's model, one value per lot for an attribute.

Result ids
----------
Measurements count as results of the specification test with the same name
(``particle_protein_ratio`` counts as ``purity_ratio``) and have ids ``M<id>``;
results entered with :func:`add_quality_result` have ids ``R<id>``.

Services never commit; authority checks happen here; every write is audited
by the records layer.
"""

from __future__ import annotations

import functools
import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import yaml
from sqlalchemy.orm import Session

from ..errors import InvalidInput
from ..quality import (
    Evaluation,
    InvestigationConclusion,
    InvestigationPhase,
    OOSInvestigation,
    RelativeCriterion,
    Specification,
    SpecStatus,
    TestResult,
    convert,
    evaluate,
    normalize_unit,
    parse_specification,
)
from . import _repositories as repo
from . import _repositories_quality as qrepo
from ._auth import ROLE_PERMISSIONS
from ._enums import Role
from ._models_auth import User
from ._models_lot import Lot
from ._models_quality import SpecificationRecord

__all__ = ["MEASUREMENT_ALIASES"]


#: Measurement attribute -> specification test name, where they differ.
MEASUREMENT_ALIASES = {"particle_protein_ratio": "purity_ratio"}


def _spec_model(record: SpecificationRecord) -> Specification:
    """The pure specification of a stored version, with the status stored in the database."""
    return _parsed_spec(record.yaml_text, record.name, record.version, SpecStatus(record.status))


@functools.lru_cache(maxsize=64)
def _parsed_spec(yaml_text: str, name: str, version: str, status: SpecStatus) -> Specification:
    # Parsing and validating the YAML takes tens of ms; every evaluation needs it (each
    # lot page). Specification models are frozen, so one parsed copy can be shared.
    data = yaml.safe_load(yaml_text)
    spec = parse_specification(data, source=f"specification {name} {version}")
    return spec.model_copy(update={"status": status})


def _perms(user: User) -> frozenset:
    return ROLE_PERMISSIONS[Role(user.role)] if user.active else frozenset()


@dataclass
class _LotData:
    lot: Lot
    results: list[TestResult]
    investigations: list[OOSInvestigation]
    records: dict[str, object]
    enterers: set[str]
    references: dict[str, tuple[float, str]]
    digest: str
    #: Whether the lot has any result at all (whatever the specification asks for).
    any_results: bool = False
    #: Every investigation of the lot (records), also those of results the spec ignores.
    investigation_records: list = field(default_factory=list)


def _test_name(attribute: str) -> str:
    return MEASUREMENT_ALIASES.get(attribute, attribute)


def _lot_data(session: Session, lot: Lot, spec: Specification | None) -> _LotData:
    """The lot's results (as the pure core sees them), investigations and digest."""
    names = {t.name for t in spec.tests} if spec is not None else None
    measurements = repo.lot_measurements(session, lot.id)
    entered = qrepo.lot_quality_results(session, lot.id)
    users = qrepo.usernames(session, [m.entered_by_id for m in measurements]
                            + [r.entered_by_id for r in entered])
    results: list[TestResult] = []
    records: dict[str, object] = {}
    digest_rows = []
    for m in measurements:
        ref = f"M{m.id}"
        digest_rows.append([ref, m.attribute, m.value, m.unit, None])
        test = _test_name(m.attribute)
        if names is not None and test not in names:
            continue
        records[ref] = m
        results.append(TestResult(result_id=ref, test=test, value=m.value, unit=m.unit,
                                  method=m.method, entered_by=users.get(m.entered_by_id)))
    for r in entered:
        ref = f"R{r.id}"
        digest_rows.append([ref, r.test, r.value, r.unit, r.qualitative])
        if names is not None and r.test not in names:
            continue
        records[ref] = r
        results.append(TestResult(result_id=ref, test=r.test, value=r.value, unit=r.unit,
                                  qualitative=r.qualitative, method=r.method,
                                  entered_by=users.get(r.entered_by_id)))
    investigation_records = qrepo.list_investigations(session, lot_id=lot.id)
    investigations = [
        OOSInvestigation(investigation_id=f"OOS-{inv.id}", original_result_id=inv.original_result,
                         phase=InvestigationPhase(inv.phase),
                         conclusion=InvestigationConclusion(inv.conclusion),
                         retest_result_id=inv.retest_result, summary=inv.summary or "")
        for inv in investigation_records if inv.original_result in records]
    references = {v.name: (v.value, v.unit) for v in qrepo.lot_reference_values(session, lot.id)}
    digest = hashlib.sha256(json.dumps(digest_rows, sort_keys=True).encode()).hexdigest()
    return _LotData(lot, results, investigations, records, {u for u in users.values()},
                    references, digest, any_results=bool(digest_rows),
                    investigation_records=investigation_records)


def _results_digest(session: Session, lot: Lot, data: _LotData | None = None
                    ) -> tuple[str, bool]:
    """(digest of every result of the lot, whether it has any); from ``data`` when the
    caller loaded the lot's results already (the digest covers every row either way)."""
    if data is None:
        data = _lot_data(session, lot, None)
    return data.digest, data.any_results


def _evaluate(session: Session, lot: Lot, record: SpecificationRecord
              ) -> tuple[Evaluation, _LotData, Specification]:
    spec = _spec_model(record)
    data = _lot_data(session, lot, spec)
    for t in spec.tests:
        c = t.criterion
        if isinstance(c, RelativeCriterion) and c.reference not in data.references and any(
                r.test == t.name for r in data.results):
            raise InvalidInput(f"lot {lot.number}: test {t.name!r} is judged against the lot's "
                               f"{c.reference}; record it (exotrace lot reference {lot.number} "
                               f"--name {c.reference} --value V --unit U)")
    evaluation = evaluate(spec, data.results, investigations=data.investigations,
                          references=data.references)
    return evaluation, data, spec


def _lot_values(session: Session, lots: Sequence[Lot], attribute: str
                ) -> tuple[dict[int, float], str | None]:
    """One value per lot for ``attribute`` (unit of the first value found).

    Values of results invalidated by a lab-error investigation and retests that
    did not replace their original are left out; several remaining values of a
    lot are averaged.
    """
    ids = [x.id for x in lots]
    name = _test_name(attribute)
    raw: dict[int, list[tuple[str, float, str]]] = {}
    for m in qrepo.measurements_of_lots(session, ids):
        if _test_name(m.attribute) == name:
            raw.setdefault(m.lot_id, []).append((f"M{m.id}", m.value, m.unit))
    for r in qrepo.quality_results_of_lots(session, ids):
        if r.test == name and r.value is not None:
            raw.setdefault(r.lot_id, []).append((f"R{r.id}", r.value, r.unit))
    excluded: set[tuple[int, str]] = set()
    for inv in qrepo.investigations_of_lots(session, ids):
        if inv.conclusion == InvestigationConclusion.LAB_ERROR and inv.retest_result:
            excluded.add((inv.lot_id, inv.original_result))
        elif inv.retest_result:
            excluded.add((inv.lot_id, inv.retest_result))
    unit = None
    out: dict[int, float] = {}
    for lot_id in ids:
        vals = [(v, u) for ref, v, u in raw.get(lot_id, []) if (lot_id, ref) not in excluded]
        if not vals:
            continue
        unit = unit or normalize_unit(vals[0][1])
        out[lot_id] = float(np.mean([convert(v, u, unit) for v, u in vals]))
    return out, unit
