"""Quality services: specifications, release results, OOS, verification, QA disposition, CoA,
trending and comparability on the lots in the database, and the quality demo.

One state machine
-----------------
The pure :mod:`exotrace.quality` release machine (``results_pending ->
results_entered -> verified -> released | rejected | quarantined``) is *derived*
from the records, never stored twice:

* ``released`` / ``rejected`` / ``quarantined``: the lot's
  :class:`~exotrace.records.LotStatus`;
* otherwise ``verified`` when the latest :class:`LotVerification` covers the
  lot's current results (same results digest) and is newer than the lot's last
  quarantine; ``results_entered`` when the lot has any result;
  ``results_pending`` when it has none.

Every move is checked by the pure guards (:func:`~exotrace.quality.guard_verify`,
:func:`~exotrace.quality.guard_release`, :func:`~exotrace.quality.guard_disposition`)
*and* applied through the records layer's :func:`~exotrace.records.set_lot_status`,
so its transitions, the segregation-of-duties check and the consent check apply
too. Releasing therefore needs the lot in ``awaiting_release`` (records), which the
analyst sets with :func:`submit_for_release` once the results are in.

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
import math
import random
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, date, timedelta
from pathlib import Path

import numpy as np
import yaml
from sqlalchemy.orm import Session

from ..errors import (
    Conflict,
    FileFormatError,
    InsufficientData,
    IntegrityFailure,
    InvalidInput,
    PermissionDenied,
    RuleViolation,
)
from ..quality import (
    CertificateData,
    Evaluation,
    IdentityCriterion,
    IMRLimits,
    InvestigationConclusion,
    InvestigationPhase,
    LotAction,
    LotState,
    Margin,
    OOSInvestigation,
    PassFailCriterion,
    RangeCriterion,
    RelativeCriterion,
    ReportOnlyCriterion,
    SignatureManifest,
    Specification,
    SpecStatus,
    TestResult,
    Violation,
    certificate_from_evaluation,
    compare_groups,
    convert,
    dump_specification,
    evaluate,
    example_specification_path,
    guard_disposition,
    guard_release,
    guard_verify,
    imr_limits,
    load_specification,
    nelson_rules,
    normalize_unit,
    parse_specification,
)
from . import _repositories as repo
from . import _repositories_quality as qrepo
from ._auth import (
    ROLE_PERMISSIONS,
    Permission,
    authenticate,
    check_segregation,
    require_permission,
    require_signature,
    sign,
    signature_is_current,
)
from ._base import clock_set_to, utcnow
from ._context import acting_as, change_reason
from ._enums import LotStatus, Role, SignatureMeaning
from ._models_auth import User
from ._models_lot import Lot
from ._models_quality import (
    DispositionAction,
    LotDisposition,
    LotReferenceValue,
    LotSizeDistribution,
    LotSpecification,
    LotVerification,
    OOSInvestigationRecord,
    QualityResult,
    SpecificationRecord,
)
from ._services_lot import add_measurement, check_releasable, create_lot, set_lot_status
from ._settings import get_settings

__all__ = [
    "MEASUREMENT_ALIASES",
    "LotTrend",
    "add_quality_result",
    "add_size_distribution",
    "assign_specification",
    "build_certificate",
    "close_investigation",
    "compare_lots",
    "evaluate_lot",
    "export_specification",
    "import_specification",
    "investigation_view",
    "list_investigation_views",
    "load_quality_demo",
    "parse_margins",
    "quarantine_lot",
    "reject_lot",
    "release_lot",
    "release_state",
    "set_reference_value",
    "specification_in_force",
    "specification_view",
    "spc_lots",
    "submit_for_release",
    "verify_lot",
]

#: Measurement attribute -> specification test name, where they differ.
MEASUREMENT_ALIASES = {"particle_protein_ratio": "purity_ratio"}


# --------------------------------------------------------------------------- specifications

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


def _perms(user: User) -> frozenset:
    return ROLE_PERMISSIONS[Role(user.role)] if user.active else frozenset()


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


# --------------------------------------------------------------------------- lot results

@dataclass
class _LotData:
    lot: Lot
    results: list[TestResult]
    investigations: list[OOSInvestigation]
    records: dict[str, object]
    enterers: set[str]
    references: dict[str, tuple[float, str]]
    digest: str


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
    investigations = [
        OOSInvestigation(investigation_id=f"OOS-{inv.id}", original_result_id=inv.original_result,
                         phase=InvestigationPhase(inv.phase),
                         conclusion=InvestigationConclusion(inv.conclusion),
                         retest_result_id=inv.retest_result, summary=inv.summary or "")
        for inv in qrepo.list_investigations(session, lot_id=lot.id)
        if inv.original_result in records]
    references = {v.name: (v.value, v.unit) for v in qrepo.lot_reference_values(session, lot.id)}
    digest = hashlib.sha256(json.dumps(digest_rows, sort_keys=True).encode()).hexdigest()
    return _LotData(lot, results, investigations, records, {u for u in users.values()},
                    references, digest)


def _results_digest(session: Session, lot: Lot) -> tuple[str, bool]:
    data = _lot_data(session, lot, None)
    return data.digest, bool(data.records)


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


def _writable(lot: Lot) -> None:
    if lot.status in (LotStatus.RELEASED, LotStatus.REJECTED):
        raise RuleViolation(f"lot {lot.number} is {lot.status.value}; results can no longer be "
                            "added")


def set_reference_value(session: Session, user: User, lot_number: str, name: str, value: float,
                        unit: str) -> LotReferenceValue:
    """Record a lot's reference value for ``relative`` criteria (e.g. ``label_claim``)."""
    require_permission(user, Permission.ENTER_RESULTS, action="record reference values")
    lot = repo.get_by(session, Lot, number=lot_number)
    _writable(lot)
    v = float(value)
    if not math.isfinite(v) or v <= 0:
        raise InvalidInput(f"reference value {name}: must be a positive number, got {value!r}")
    unit = normalize_unit(unit)
    existing = repo.find_by(session, LotReferenceValue, lot_id=lot.id, name=name)
    with acting_as(session, user):
        if existing is None:
            existing = LotReferenceValue(lot_id=lot.id, name=name, value=v, unit=unit,
                                         entered_by_id=user.id)
            session.add(existing)
        else:
            with change_reason(session, f"reference value {name} corrected"):
                existing.value, existing.unit, existing.entered_by_id = v, unit, user.id
        session.flush()
    return existing


def _parse_value(value: float | str | None, unit: str | None) -> tuple[float | None, str | None,
                                                                       str | None]:
    """``(number, unit, word)`` from a CLI value: a number needs a unit, a word has none."""
    if value is None:
        raise InvalidInput("a result needs a value (a number with --unit, or a word such as "
                           "negative / present)")
    if isinstance(value, (int, float)):
        number = float(value)
    else:
        text = str(value).strip()
        try:
            number = float(text)
        except ValueError:
            if not text or len(text) > 64:
                raise InvalidInput(f"result {value!r}: give a number or a short word") from None
            return None, None, text.lower()
    if not math.isfinite(number):
        raise InvalidInput(f"result {value!r} is not a finite number")
    if not unit:
        raise InvalidInput(f"numeric result {number:g} needs a unit (--unit)")
    return number, normalize_unit(unit), None


def add_quality_result(session: Session, user: User, lot_number: str, *, test: str,
                       value: float | str, unit: str | None = None, method: str | None = None,
                       retest_of: str | None = None) -> tuple[QualityResult,
                                                              OOSInvestigationRecord | None]:
    """Enter one release-test result (numeric with unit, or a word such as ``negative``).

    The result is judged at once against the specification in force; an
    out-of-specification result opens an OOS investigation (phase I). A retest
    (``retest_of`` = the original's id, ``M12`` or ``R3``) is linked to the
    original's open investigation; the original is never changed.

    Returns
    -------
    (QualityResult, OOSInvestigationRecord or None)
        The result and the investigation it opened, if any.
    """
    require_permission(user, Permission.ENTER_RESULTS, action="enter results")
    lot = repo.get_by(session, Lot, number=lot_number)
    _writable(lot)
    record = specification_in_force(session, lot)
    spec = _spec_model(record)
    try:
        spec.test(test)
    except KeyError:
        raise InvalidInput(f"test {test!r} is not in specification {spec.name} {spec.version}; "
                           f"tests: {', '.join(t.name for t in spec.tests)}") from None
    number, unit_n, word = _parse_value(value, unit)
    criterion = spec.test(test).criterion
    if isinstance(criterion, (RangeCriterion, RelativeCriterion)):
        if number is None:
            raise InvalidInput(f"test {test!r} needs a number with a unit ({criterion.unit}), "
                               f"got {word!r}")
        convert(number, unit_n, criterion.unit)  # UnitError for a unit of the wrong kind
    elif isinstance(criterion, (IdentityCriterion, PassFailCriterion)) and word is None:
        example = ("present/absent" if isinstance(criterion, IdentityCriterion)
                   else criterion.expected)
        raise InvalidInput(f"test {test!r} needs a word result (e.g. {example}), "
                           f"got the number {number:g}")
    investigation = None
    if retest_of is not None:
        investigation = repo.find_by(session, OOSInvestigationRecord, lot_id=lot.id,
                                     original_result=retest_of)
        if investigation is None:
            raise RuleViolation(f"result {retest_of} of lot {lot.number} has no OOS "
                                "investigation; a retest is only made within one")
        if investigation.conclusion != InvestigationConclusion.OPEN:
            raise RuleViolation(f"OOS-{investigation.id} is closed; a retest cannot be added")
        if investigation.retest_result is not None:
            raise RuleViolation(f"OOS-{investigation.id} already has retest "
                                f"{investigation.retest_result}")
        if investigation.test != test:
            raise InvalidInput(f"retest of {retest_of} must be for test {investigation.test!r}")
    result = QualityResult(lot_id=lot.id, test=test, value=number, unit=unit_n, qualitative=word,
                           method=method or spec.test(test).method, retest_of=retest_of,
                           entered_by_id=user.id)
    with acting_as(session, user):
        session.add(result)
        session.flush()
        ref = f"R{result.id}"
        if investigation is not None:
            with change_reason(session, f"retest {ref} entered"):
                investigation.retest_result = ref
            return result, None
        opened = None
        data = _lot_data(session, lot, spec)
        judgeable = not (isinstance(criterion, RelativeCriterion)
                         and criterion.reference not in data.references)
        if judgeable and not isinstance(criterion, ReportOnlyCriterion):
            alone = TestResult(result_id=ref, test=test, value=number, unit=unit_n,
                               qualitative=word, method=result.method)
            single = evaluate(spec, [alone], references=data.references)
            # Only a definite OOS: a failing member of an alternative group is not OOS
            # while the group can still pass (see exotrace.quality evaluation rules).
            if ref in single.oos_result_ids:
                opened = _open_investigation(session, user, lot, ref, test)
    return result, opened


def _open_investigation(session: Session, user: User, lot: Lot, ref: str, test: str
                        ) -> OOSInvestigationRecord:
    inv = OOSInvestigationRecord(lot_id=lot.id, original_result=ref, test=test,
                                 phase=InvestigationPhase.PHASE_I,
                                 conclusion=InvestigationConclusion.OPEN,
                                 summary="opened automatically: result out of specification",
                                 opened_by_id=user.id)
    with acting_as(session, user):
        session.add(inv)
        session.flush()
    return inv


def _open_missing_investigations(session: Session, user: User, lot: Lot, evaluation: Evaluation,
                                 data: _LotData) -> list[OOSInvestigationRecord]:
    known = {inv.original_result_id for inv in data.investigations}
    made = []
    for ref in evaluation.oos_result_ids:
        if ref not in known:
            made.append(_open_investigation(session, user, lot, ref,
                                            _test_of(evaluation, ref)))
    return made


def _test_of(evaluation: Evaluation, ref: str) -> str:
    for o in evaluation.outcomes:
        if o.result_id == ref:
            return o.test
    raise KeyError(ref)


def add_size_distribution(session: Session, user: User, lot_number: str,
                          diameters_nm: Sequence[float], weights: Sequence[float], *,
                          source: str) -> LotSizeDistribution:
    """Store a lot's number size distribution (bin centres in nm, weights any scale)."""
    require_permission(user, Permission.ENTER_RESULTS, action="enter results")
    lot = repo.get_by(session, Lot, number=lot_number)
    d = np.asarray(diameters_nm, dtype=float)
    w = np.asarray(weights, dtype=float)
    if d.ndim != 1 or d.shape != w.shape or d.size < 2:
        raise InvalidInput("a size distribution needs matching diameters and weights (>= 2 bins)")
    if not (np.all(np.isfinite(d)) and np.all(d > 0) and np.all(np.isfinite(w))
            and np.all(w >= 0) and w.sum() > 0):
        raise InvalidInput("size distribution: diameters must be positive, weights "
                           "non-negative and not all zero")
    row = LotSizeDistribution(lot_id=lot.id, diameters_nm_json=json.dumps(d.tolist()),
                              weights_json=json.dumps(w.tolist()), source=source,
                              entered_by_id=user.id)
    with acting_as(session, user):
        session.add(row)
        session.flush()
    return row


# --------------------------------------------------------------------------- state and views

def _last_quarantine_at(session: Session, lot: Lot):
    d = qrepo.latest_disposition(session, lot.id, (DispositionAction.QUARANTINE,))
    return d.decided_at if d is not None else None


def _current_verification(session: Session, lot: Lot, *, any_spec: bool = False
                          ) -> LotVerification | None:
    """The latest verification if it covers the current results (and, unless ``any_spec``,
    was made against the specification version now in force)."""
    ver = qrepo.latest_verification(session, lot.id)
    if ver is None:
        return None
    digest, _ = _results_digest(session, lot)
    if ver.results_digest != digest:
        return None
    quarantined_at = _last_quarantine_at(session, lot)
    if quarantined_at is not None and quarantined_at >= ver.verified_at:
        return None
    if not any_spec:
        try:
            in_force = specification_in_force(session, lot)
        except RuleViolation:
            return None
        if in_force.id != ver.specification_id:
            return None
    return ver


def release_state(session: Session, lot: Lot) -> LotState:
    """The lot's state in the pure release machine, derived from the records (module doc)."""
    status = LotStatus(lot.status)
    if status is LotStatus.RELEASED:
        return LotState.RELEASED
    if status is LotStatus.REJECTED:
        return LotState.REJECTED
    if status is LotStatus.QUARANTINED:
        return LotState.QUARANTINED
    if _current_verification(session, lot) is not None:
        return LotState.VERIFIED
    _, has_results = _results_digest(session, lot)
    return LotState.RESULTS_ENTERED if has_results else LotState.RESULTS_PENDING


def _evaluation_view(lot: Lot, state: LotState, record: SpecificationRecord,
                     evaluation: Evaluation, data: _LotData,
                     investigations: Iterable[OOSInvestigationRecord]) -> dict:
    inv_by_ref = {i.original_result: i for i in investigations}
    oos = set(evaluation.oos_result_ids)
    tests = []
    for o in evaluation.outcomes:
        inv = inv_by_ref.get(o.superseded_result_id or o.result_id or "")
        tests.append({
            "test": o.test, "method": o.method, "criterion": o.criterion,
            "outcome": o.outcome.value, "result": o.result_text or None,
            "result_id": o.result_id, "value": o.value, "unit": o.unit, "reason": o.reason,
            "oos": o.result_id in oos, "alternative_group": o.alternative_group,
            "superseded_result_id": o.superseded_result_id,
            "investigation": f"OOS-{inv.id}" if inv is not None else None})
    return {
        "lot": lot.number, "status": LotStatus(lot.status).value, "release_state": state.value,
        "specification": {"name": record.name, "version": record.version,
                          "status": SpecStatus(record.status).value},
        "conclusion": evaluation.conclusion.value, "tests": tests,
        "groups": {k: v.value for k, v in evaluation.groups.items()},
        "oos_result_ids": list(evaluation.oos_result_ids),
        "open_investigations": [f"OOS-{i.id}" for i in investigations
                                if i.conclusion == InvestigationConclusion.OPEN],
        "unused_result_ids": list(evaluation.unused_result_ids),
        "results_digest": data.digest,
    }


def evaluate_lot(session: Session, lot_number: str, *, user: User | None = None) -> dict:
    """Evaluate a lot against the specification version in force.

    With a ``user`` who may enter, review or approve results, every OOS result
    without an investigation gets one opened (phase I); without, the
    evaluation only reads.

    Returns
    -------
    dict
        ``lot, status, release_state, specification, conclusion, tests`` (per
        test: outcome pass/fail/missing/report_only, criterion, result, ``oos``,
        ``investigation``), ``oos_result_ids, open_investigations``.
    """
    lot = repo.get_by(session, Lot, number=lot_number)
    record = specification_in_force(session, lot)
    evaluation, data, _ = _evaluate(session, lot, record)
    opened = []
    if user is not None and _perms(user) & {Permission.ENTER_RESULTS, Permission.REVIEW,
                                            Permission.APPROVE}:
        opened = _open_missing_investigations(session, user, lot, evaluation, data)
    view = _evaluation_view(lot, release_state(session, lot), record, evaluation, data,
                            qrepo.list_investigations(session, lot_id=lot.id))
    view["opened_investigations"] = [f"OOS-{i.id}" for i in opened]
    return view


def investigation_view(inv: OOSInvestigationRecord, lot_number: str,
                       users: Mapping[int, str]) -> dict:
    return {"id": f"OOS-{inv.id}", "lot": lot_number, "test": inv.test,
            "original_result": inv.original_result, "retest_result": inv.retest_result,
            "phase": InvestigationPhase(inv.phase).value,
            "conclusion": InvestigationConclusion(inv.conclusion).value,
            "summary": inv.summary, "opened_by": users.get(inv.opened_by_id),
            "opened_at": inv.opened_at, "closed_by": users.get(inv.closed_by_id),
            "closed_at": inv.closed_at}


def list_investigation_views(session: Session, *, lot_number: str | None = None,
                             open_only: bool = False) -> list[dict]:
    lot = repo.get_by(session, Lot, number=lot_number) if lot_number else None
    invs = qrepo.list_investigations(session, lot_id=lot.id if lot else None,
                                     open_only=open_only)
    numbers = qrepo.lot_numbers(session, [i.lot_id for i in invs])
    users = qrepo.usernames(session, [i.opened_by_id for i in invs] +
                            [i.closed_by_id for i in invs])
    return [investigation_view(i, numbers.get(i.lot_id), users) for i in invs]


def _investigation_id(value: int | str) -> int:
    text = str(value).strip().upper().removeprefix("OOS-")
    try:
        return int(text)
    except ValueError:
        raise InvalidInput(f"investigation id {value!r}: write OOS-12 or 12") from None


def close_investigation(session: Session, user: User, investigation_id: int | str, *,
                        conclusion: InvestigationConclusion | str,
                        phase: InvestigationPhase | str, summary: str) -> OOSInvestigationRecord:
    """Close an OOS investigation (QA): phase I (lab error) or II (process), with a conclusion.

    ``lab_error`` invalidates the original only with a linked retest, which then
    counts in the evaluation; ``confirmed_oos`` and ``inconclusive`` leave the
    original standing. The original result is never changed.
    """
    require_permission(user, Permission.APPROVE, action="close OOS investigations")
    inv = qrepo.get_investigation(session, _investigation_id(investigation_id))
    try:
        conclusion = InvestigationConclusion(conclusion)
        phase = InvestigationPhase(phase)
    except ValueError as exc:
        raise InvalidInput(f"{exc}; conclusion: lab_error, confirmed_oos, inconclusive; "
                           "phase: phase_I, phase_II") from None
    if inv.conclusion != InvestigationConclusion.OPEN:
        raise RuleViolation(f"OOS-{inv.id} is already closed ({inv.conclusion.value})")
    if conclusion is InvestigationConclusion.OPEN:
        raise InvalidInput("closing needs a conclusion: lab_error, confirmed_oos or inconclusive")
    if not summary or not summary.strip():
        raise InvalidInput(f"closing OOS-{inv.id} needs a summary of the findings")
    if conclusion is InvestigationConclusion.LAB_ERROR and inv.retest_result is None:
        raise RuleViolation(f"OOS-{inv.id}: a lab error conclusion needs the retest; enter it "
                            f"with --retest-of {inv.original_result}")
    with acting_as(session, user), change_reason(
            session, f"OOS investigation closed: {conclusion.value}"):
        inv.conclusion, inv.phase, inv.summary = conclusion, phase, summary.strip()
        inv.closed_by_id, inv.closed_at = user.id, utcnow()
    return inv


# --------------------------------------------------------------------------- workflow

def submit_for_release(session: Session, user: User, lot_number: str, *,
                       reason: str | None = None) -> Lot:
    """Send a lot with results to ``awaiting_release`` (from in process or quarantine)."""
    lot = repo.get_by(session, Lot, number=lot_number)
    state = release_state(session, lot)
    if state is LotState.RESULTS_PENDING:
        raise RuleViolation(f"lot {lot.number} has no results; enter them before submitting")
    return set_lot_status(session, user, lot.number, LotStatus.AWAITING_RELEASE,
                          reason=reason or "results entered; submitted for verification and "
                                           "QA disposition")


def verify_lot(session: Session, user: User, password: str, lot_number: str) -> dict:
    """Second-person verification of a lot's results, signed with meaning *review*.

    Raises
    ------
    AuthError
        Wrong password.
    PermissionDenied
        No review permission; the user entered a result or produced the lot's data.
    RuleViolation
        Wrong state (already verified, released, ...), incomplete results.
    """
    require_permission(user, Permission.REVIEW, action="verify results")
    authenticate(session, user.username, password)
    lot = repo.get_by(session, Lot, number=lot_number)
    # Two reviewers verifying at once: the second waits here for the first's
    # commit, then reads its verification and is refused by the guard.
    repo.lock_lot_status(session, lot.id)
    record = specification_in_force(session, lot)
    evaluation, data, _ = _evaluate(session, lot, record)
    state = release_state(session, lot)
    guard_verify(state=state, verifier=user.username, result_enterers=data.enterers,
                 evaluation=evaluation)
    check_segregation(session, user, lot, action="verify")
    _open_missing_investigations(session, user, lot, evaluation, data)
    ver = LotVerification(lot_id=lot.id, specification_id=record.id, results_digest=data.digest,
                          conclusion=evaluation.conclusion.value, verified_by_id=user.id)
    with acting_as(session, user):
        session.add(ver)
        session.flush()
    signature = sign(session, user, password, ver, SignatureMeaning.REVIEW)
    return {"lot": lot.number, "release_state": LotState.VERIFIED.value,
            "verification": ver.id, "conclusion": ver.conclusion,
            "specification": {"name": record.name, "version": record.version},
            "signature": _signature_view(signature)}


def _signature_view(sig) -> dict:
    return {"id": sig.id, "printed_name": sig.printed_name, "meaning": sig.meaning.value,
            "signed_at": sig.signed_at}


def _dispose(session: Session, user: User, lot: Lot, action: DispositionAction, reason: str,
             password: str, record: SpecificationRecord | None,
             verification: LotVerification | None, conclusion: str | None) -> dict:
    status = {DispositionAction.RELEASE: LotStatus.RELEASED,
              DispositionAction.REJECT: LotStatus.REJECTED,
              DispositionAction.QUARANTINE: LotStatus.QUARANTINED}[action]
    # Two QA users deciding on one lot at once: the second waits for the first
    # one's commit here and must not decide on the state it read before it.
    committed = repo.lock_lot_status(session, lot.id)
    if committed is not lot.status:
        raise Conflict(f"lot {lot.number} became {committed.value} while this "
                       f"{action.value} was prepared (another user decided first); "
                       "nothing was written, look at the lot again")
    set_lot_status(session, user, lot.number, status, reason=reason,
                   release_workflow=status is LotStatus.RELEASED)
    disposition = LotDisposition(lot_id=lot.id, action=action,
                                 specification_id=record.id if record else None,
                                 verification_id=verification.id if verification else None,
                                 conclusion=conclusion, reason=reason, decided_by_id=user.id)
    with acting_as(session, user):
        session.add(disposition)
        session.flush()
    signature = sign(session, user, password, disposition, SignatureMeaning.APPROVAL)
    return {"lot": lot.number, "status": status.value, "disposition": disposition.id,
            "action": action.value, "reason": reason, "conclusion": conclusion,
            "specification": ({"name": record.name, "version": record.version}
                              if record else None),
            "signature": _signature_view(signature)}


def _check_records_status_for_release(lot: Lot) -> None:
    if lot.status is LotStatus.IN_PROCESS:
        raise RuleViolation(f"lot {lot.number} is in_process; the analyst submits it for "
                            f"release first (exotrace lot submit {lot.number})")
    if lot.status is LotStatus.QUARANTINED:
        raise RuleViolation(f"lot {lot.number} is quarantined; submit it again (exotrace lot "
                            "submit) and verify it before release")


def release_lot(session: Session, user: User, password: str, lot_number: str, *,
                reason: str | None = None) -> dict:
    """QA release, signed with meaning *approval*.

    Refused (RuleViolation) before verification, with an open OOS
    investigation, against a superseded specification, when the lot does not
    comply or is not awaiting release, has no expiry date or is expired, or
    when a lot it was pooled or split from is rejected, quarantined or under
    an open or confirmed OOS investigation (:func:`check_releasable`);
    refused (PermissionDenied) to whoever produced the lot's data, to the
    user who verified it (unless the setting ``allow_verifier_release`` is
    on) or lacks the approve permission; AuthError for a wrong password.
    """
    require_permission(user, Permission.APPROVE, action="release lots")
    authenticate(session, user.username, password)
    lot = repo.get_by(session, Lot, number=lot_number)
    check_releasable(session, lot)
    state = release_state(session, lot)
    verification = None
    if state in (LotState.VERIFIED, LotState.RESULTS_ENTERED):
        # A verification against a version superseded since counts here, so that the
        # guard names the superseded specification instead of a missing verification.
        verification = _current_verification(session, lot, any_spec=True)
    if verification is not None:
        state = LotState.VERIFIED
        # The verification counts only with its reviewer's valid (keyed) signature.
        require_signature(session, verification, SignatureMeaning.REVIEW,
                          signer_id=verification.verified_by_id)
        if verification.verified_by_id == user.id and not get_settings().allow_verifier_release:
            raise PermissionDenied(
                f"user {user.username} verified lot {lot.number} (verification "
                f"{verification.id}); the same person may not also release it (segregation "
                "of duties; EXOTRACE_ALLOW_VERIFIER_RELEASE=true permits it)")
    record = (session.get(SpecificationRecord, verification.specification_id)
              if verification is not None else specification_in_force(session, lot))
    evaluation, data, spec = _evaluate(session, lot, record)
    uninvestigated = [f"(none yet for {r})" for r in evaluation.oos_result_ids
                      if r not in {i.original_result_id for i in data.investigations}]
    guard_release(state=state, releaser=user.username, result_enterers=data.enterers,
                  evaluation=evaluation, specification=spec,
                  open_investigation_ids=uninvestigated)
    _check_records_status_for_release(lot)
    reason = reason or (f"complies with {record.name} version {record.version}; "
                        f"verified (verification {verification.id})")
    return _dispose(session, user, lot, DispositionAction.RELEASE, reason, password, record,
                    verification, evaluation.conclusion.value)


def _disposition(session: Session, user: User, password: str, lot_number: str,
                 action: DispositionAction, reason: str | None) -> dict:
    require_permission(user, Permission.APPROVE, action=f"{action.value} lots")
    authenticate(session, user.username, password)
    lot = repo.get_by(session, Lot, number=lot_number)
    state = release_state(session, lot)
    data = _lot_data(session, lot, None)
    lot_action = LotAction.REJECT if action is DispositionAction.REJECT else LotAction.QUARANTINE
    guard_disposition(state=state, action=lot_action, user=user.username, reason=reason,
                      result_enterers=data.enterers)
    if action is DispositionAction.REJECT:
        # Like a release, a rejection is an approval decision: not by a data producer.
        check_segregation(session, user, lot, action="reject")
    verification = qrepo.latest_verification(session, lot.id)
    record = session.get(SpecificationRecord, verification.specification_id) \
        if verification is not None else None
    return _dispose(session, user, lot, action, reason.strip(), password, record, verification,
                    verification.conclusion if verification is not None else None)


def reject_lot(session: Session, user: User, password: str, lot_number: str, *,
               reason: str | None) -> dict:
    """QA rejection (verified or quarantined lots), signed with meaning *approval*."""
    return _disposition(session, user, password, lot_number, DispositionAction.REJECT, reason)


def quarantine_lot(session: Session, user: User, password: str, lot_number: str, *,
                   reason: str | None) -> dict:
    """QA quarantine (lots with results), signed with meaning *approval*."""
    return _disposition(session, user, password, lot_number, DispositionAction.QUARANTINE,
                        reason)


# --------------------------------------------------------------------------- certificate

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


# --------------------------------------------------------------------------- trending

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


@dataclass(frozen=True)
class LotTrend:
    """An I-MR trend of one attribute over lots in manufacture order.

    Attributes
    ----------
    attribute, unit : str
        Attribute trended and its unit.
    lots : list of str
        Lot numbers in manufacture order (index = chart point).
    manufactured_on : list of date
    values : numpy.ndarray
        One value per lot (``unit``).
    limits : IMRLimits
    violations : list of Violation
    skipped : list of str
        Lots without a value.
    """

    attribute: str
    unit: str | None
    lots: list[str]
    manufactured_on: list[date]
    values: np.ndarray
    limits: IMRLimits
    violations: list[Violation]
    skipped: list[str]

    def to_dict(self) -> dict:
        return {"attribute": self.attribute, "unit": self.unit, "n": len(self.lots),
                "points": [{"index": i, "lot": n, "manufactured_on": d, "value": float(v)}
                           for i, (n, d, v) in enumerate(zip(self.lots, self.manufactured_on,
                                                             self.values, strict=True))],
                "limits": asdict(self.limits),
                "violations": [{"rule": v.rule, "index": v.index, "lot": self.lots[v.index]}
                               for v in self.violations],
                "skipped_lots": self.skipped}


def spc_lots(session: Session, attribute: str, *, product: str | None = None,
             baseline: int | None = None, mean: float | None = None,
             sigma: float | None = None) -> LotTrend:
    """I-MR chart and the eight Nelson rules of ``attribute`` over lots in manufacture order.

    Parameters
    ----------
    attribute : str
        Measurement attribute or specification test name (e.g. ``size_d50``).
    product : str, optional
        Only lots whose specification (assigned, or the only effective one) has
        this product type or name.
    baseline : int, optional
        Estimate the limits from the first ``baseline`` lots (default: all).
    mean, sigma : float, optional
        Given limits (attribute units) instead of a baseline.
    """
    lots = qrepo.lots_in_manufacture_order(session)
    if product is not None:
        keep = []
        for lot in lots:
            try:
                rec = specification_in_force(session, lot)
            except RuleViolation:
                continue
            if product in (rec.product_type, rec.name):
                keep.append(lot)
        lots = keep
    values, unit = _lot_values(session, lots, attribute)
    with_values = [x for x in lots if x.id in values]
    if len(with_values) < 2:
        raise InsufficientData(f"attribute {attribute!r}: {len(with_values)} lot(s) with a "
                               "value; an I-MR chart needs at least 2")
    x = np.array([values[lot.id] for lot in with_values])
    limits = imr_limits(x, baseline=baseline, mean=mean, sigma=sigma)
    violations = nelson_rules(x, mean=limits.mean, sigma=limits.sigma)
    return LotTrend(attribute, unit, [lot.number for lot in with_values],
                    [lot.manufactured_on for lot in with_values], x, limits, violations,
                    [lot.number for lot in lots if lot.id not in values])


# --------------------------------------------------------------------------- comparability

def parse_margins(items: Iterable[str] = (), path: str | Path | None = None
                  ) -> dict[str, Margin]:
    """Equivalence margins from ``ATTR=VALUE`` / ``ATTR=10%`` items and/or a YAML file.

    The YAML file maps attribute -> number (absolute), ``"10%"`` (relative to
    group A's mean) or ``{value: 0.1, kind: relative}``.
    """
    margins: dict[str, Margin] = {}

    def one(attr: str, value: object, where: str) -> None:
        if isinstance(value, Mapping):
            try:
                margins[attr] = Margin(float(value["value"]), str(value.get("kind", "absolute")))
            except (KeyError, TypeError, ValueError):
                raise InvalidInput(f"{where}: margin of {attr!r} needs a numeric value") from None
            return
        text = str(value).strip()
        try:
            if text.endswith("%"):
                margins[attr] = Margin(float(text[:-1]) / 100.0, "relative")
            else:
                margins[attr] = Margin(float(text))
        except ValueError:
            raise InvalidInput(f"{where}: margin {text!r} of {attr!r} is not a number or "
                               "a percentage") from None

    if path is not None:
        p = Path(path)
        try:
            data = yaml.safe_load(p.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise FileFormatError(p, "file not found") from None
        except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
            raise FileFormatError(p, f"not a readable YAML file ({type(exc).__name__})") from None
        if not isinstance(data, Mapping) or not data:
            raise FileFormatError(p, "expected a mapping of attribute: margin")
        for attr, value in data.items():
            one(str(attr), value, str(p))
    for item in items:
        attr, sep, value = item.partition("=")
        if not sep or not attr.strip():
            raise InvalidInput(f"--margin {item!r}: write ATTRIBUTE=VALUE or ATTRIBUTE=10%")
        one(attr.strip(), value, f"--margin {item}")
    if not margins:
        raise InvalidInput("give at least one equivalence margin (--margin ATTR=VALUE or "
                           "--margins FILE.yaml)")
    return margins


def _pooled_distribution(session: Session, lots: Sequence[Lot]):
    """Pooled number distribution of lots (each lot weighs the same); None if none stored."""
    rows = qrepo.size_distributions_of_lots(session, [x.id for x in lots])
    latest = {}
    for r in rows:
        latest[r.lot_id] = r
    if not latest:
        return None, []
    ds, ws = [], []
    for r in latest.values():
        d = np.asarray(json.loads(r.diameters_nm_json), dtype=float)
        w = np.asarray(json.loads(r.weights_json), dtype=float)
        ds.append(d)
        ws.append(w / w.sum())
    have = [x.number for x in lots if x.id in latest]
    return (np.concatenate(ds), np.concatenate(ws)), have


def compare_lots(session: Session, group_a: Sequence[str], group_b: Sequence[str],
                 margins: Mapping[str, Margin | float], *, alpha: float = 0.05,
                 min_n: int = 3) -> dict:
    """Comparability (ICH Q5E) of lot group B against reference group A.

    TOST per attribute with a margin (values from the lots' measurements and
    results) and, where both groups have stored size distributions, the
    distribution comparison of the pooled distributions.
    """
    if not group_a or not group_b:
        raise InvalidInput("give lots for both groups (--group-a, --group-b)")
    overlap = set(group_a) & set(group_b)
    if overlap:
        raise InvalidInput(f"lot(s) {', '.join(sorted(overlap))} are in both groups")
    lots_a = qrepo.lots_by_numbers(session, list(group_a))
    lots_b = qrepo.lots_by_numbers(session, list(group_b))
    values_a: dict[str, list[float]] = {}
    values_b: dict[str, list[float]] = {}
    units: dict[str, str | None] = {}
    for attr in margins:
        va, unit = _lot_values(session, lots_a + lots_b, attr)
        units[attr] = unit
        values_a[attr] = [va[x.id] for x in lots_a if x.id in va]
        values_b[attr] = [va[x.id] for x in lots_b if x.id in va]
    dist_a, have_a = _pooled_distribution(session, lots_a)
    dist_b, have_b = _pooled_distribution(session, lots_b)
    sizes = (dist_b[0], dist_b[1], dist_a[0], dist_a[1]) if dist_a and dist_b else None
    report = compare_groups(values_a, values_b, dict(margins), alpha=alpha, min_n=min_n,
                            size_distributions=sizes)
    attrs = []
    for c in report.attributes:
        row = asdict(c)
        row["verdict"] = c.verdict.value
        row["unit"] = units.get(c.attribute)
        attrs.append(row)
    dist = None
    if report.distribution is not None:
        dist = asdict(report.distribution)
        dist["flagged"] = report.distribution.flagged
        dist["lots_a"], dist["lots_b"] = have_a, have_b
    return {"group_a": list(group_a), "group_b": list(group_b), "alpha": report.alpha,
            "min_n": report.min_n, "attributes": attrs, "distribution": dist,
            "summary": report.summary}


# --------------------------------------------------------------------------- demo

_DEMO_QUALITATIVE = {"CD9": "present", "CD63": "present", "CD81": "present",
                     "TSG101": "present", "calnexin": "absent", "GM130": "absent",
                     "sterility": "negative", "mycoplasma": "negative"}
# Trend lots: size_d50 (nm) of 16 lots made after the records demo's lots; the
# last six rise steadily (Nelson rule 3 at the last lot).
_TREND_D50_NM = [118.0, 123.5, 116.2, 121.8, 119.4, 124.1, 117.3, 120.6, 122.0, 115.9,
                 119.0, 121.2, 124.0, 127.5, 131.8, 136.0]


def _release_results(session: Session, analyst: User, number: str, *, endotoxin: float,
                     rng: random.Random) -> None:
    conc = [m for m in repo.lot_measurements(session, repo.get_by(session, Lot,
                                                                  number=number).id)
            if m.attribute == "particle_concentration"]
    label = conc[0].value * rng.uniform(0.9, 1.1) if conc else 1e11
    set_reference_value(session, analyst, number, "label_claim", float(f"{label:.3g}"),
                        "particles/mL")
    for test, word in _DEMO_QUALITATIVE.items():
        add_quality_result(session, analyst, number, test=test, value=word)
    add_quality_result(session, analyst, number, test="endotoxin", value=endotoxin,
                       unit="EU/mL")
    add_quality_result(session, analyst, number, test="fraction_50_400nm",
                       value=round(rng.uniform(91.0, 97.0), 1), unit="%")
    add_quality_result(session, analyst, number, test="potency",
                       value=round(rng.uniform(80.0, 125.0), 1), unit="%")


def _stability_csv(rng: random.Random) -> str:
    """Three batches at 5 C, particle concentration (1e11 particles/mL) over 0-18 months."""
    lines = ["batch,time_months,particles_e11_per_ml"]
    for batch, start, slope in (("EV-STAB-A", 2.05, -0.031), ("EV-STAB-B", 1.98, -0.028),
                                ("EV-STAB-C", 2.01, -0.033)):
        for t in (0, 3, 6, 9, 12, 18):
            value = start + slope * t + rng.gauss(0.0, 0.02)
            lines.append(f"{batch},{t},{value:.3f}")
    return "\n".join(lines) + "\n"


def load_quality_demo(session: Session, *, out_dir: str | Path | None = None,
                      seed: int = 2025) -> dict:
    """Extend the records demo (:func:`exotrace.records.demo.load_demo`) with quality data.

    Imports the shipped example specification (qa1), enters release results
    (analyst1), verifies (reviewer1) and releases (qa1) EV-2025-004 and
    EV-2025-008, rejects EV-2025-009 after a confirmed endotoxin OOS, leaves
    EV-2025-P01-B awaiting verification, adds 16 trend lots whose ``size_d50``
    trips Nelson rule 3 in ``exotrace spc lots --attribute size_d50``, stores
    their size distributions, and writes ``stability_study.csv`` (three
    batches, 0-18 months) into ``out_dir`` when given.

    Returns
    -------
    dict
        What was made (lot numbers per outcome, trend, stability file).
    """
    from .demo import demo_time

    # Recorded the day after the records demo, before the clinic demo's first administration.
    with clock_set_to(demo_time(2025, 5, 4, 8)):
        return _load_quality_demo(session, out_dir=out_dir, seed=seed)


def _load_quality_demo(session: Session, *, out_dir: str | Path | None, seed: int) -> dict:
    from .demo import DEMO_PASSWORD, demo_date

    users = {n: repo.get_by(session, User, username=n) for n in ("analyst1", "reviewer1", "qa1")}
    analyst, reviewer, qa = users["analyst1"], users["reviewer1"], users["qa1"]
    rng = random.Random(seed)
    spec, _ = import_specification(session, qa, example_specification_path())

    trend = []
    for i, d50 in enumerate(_TREND_D50_NM, start=1):
        number = f"EV-2025-T{i:02d}"
        create_lot(session, analyst, number, isolation_code="ISO-08",
                   intended_use="clinical_manufacturing",
                   manufactured_on=demo_date(2025, 5, 5) + timedelta(days=7 * i),
                   expires_on=demo_date(2028, 5, 5) + timedelta(days=7 * i), volume_ml=2.0)
        conc = 8.0e10 * rng.lognormvariate(0.0, 0.1)
        for attribute, value, unit, method in (
                ("particle_concentration", conc, "particles/mL", "NTA"),
                ("size_d50", d50, "nm", "NTA"),
                ("particle_protein_ratio", 3.5e10 * rng.lognormvariate(0.0, 0.15),
                 "particles/ug", "calculated")):
            add_measurement(session, analyst, number, attribute=attribute,
                            value=float(f"{value:.4g}"), unit=unit, method=method,
                            instrument="NanoSight NS300" if method == "NTA" else None)
        diameters = np.arange(30.0, 400.0, 5.0)
        sigma_ln = 0.35
        weights = np.exp(-0.5 * ((np.log(diameters) - np.log(d50)) / sigma_ln) ** 2) / diameters
        add_size_distribution(session, analyst, number, diameters, np.round(weights / weights.max(),
                                                                            6),
                              source="NTA number distribution (demo)")
        trend.append(number)

    # The records demo leaves these lots awaiting release; they are released
    # here, through the workflow, so every released demo lot has its evidence.
    released = ["EV-2025-001", "EV-2025-002", "EV-2025-003", "EV-2025-P01-A",
                "EV-2025-004", "EV-2025-008"]
    rejected, waiting = ["EV-2025-009"], ["EV-2025-P01-B"]
    for number in released + rejected + waiting:
        assign_specification(session, qa, number, spec.name)
    for number in released:
        _release_results(session, analyst, number, endotoxin=round(rng.uniform(0.05, 0.2), 3),
                         rng=rng)
        verify_lot(session, reviewer, DEMO_PASSWORD, number)
        release_lot(session, qa, DEMO_PASSWORD, number)
    _release_results(session, analyst, "EV-2025-009", endotoxin=0.92, rng=rng)
    inv = qrepo.list_investigations(session, lot_id=repo.get_by(session, Lot,
                                                                number="EV-2025-009").id)[0]
    close_investigation(session, qa, inv.id, conclusion="confirmed_oos", phase="phase_II",
                        summary="no laboratory error; depyrogenation record of the TFF "
                                "cassette incomplete (process cause)")
    submit_for_release(session, analyst, "EV-2025-009")
    verify_lot(session, reviewer, DEMO_PASSWORD, "EV-2025-009")
    reject_lot(session, qa, DEMO_PASSWORD, "EV-2025-009",
               reason="endotoxin 0.92 EU/mL >= 0.5 EU/mL, OOS confirmed (phase II)")
    _release_results(session, analyst, "EV-2025-P01-B", endotoxin=0.11, rng=rng)
    submit_for_release(session, analyst, "EV-2025-P01-B")

    stability = None
    if out_dir is not None:
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        stability = out / "stability_study.csv"
        stability.write_text(_stability_csv(rng), encoding="utf-8")
    session.flush()
    return {"specification": {"name": spec.name, "version": spec.version},
            "released": released, "rejected": rejected, "awaiting_verification": waiting,
            "trend_lots": trend, "trend": {"attribute": "size_d50", "rule": 3,
                                           "lot": trend[-1]},
            "oos_investigations": [f"OOS-{inv.id}"],
            "stability_csv": str(stability) if stability else None}
