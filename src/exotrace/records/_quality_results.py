"""Quality services: release-test results, reference values and size distributions of a
lot; an out-of-specification result opens an OOS investigation.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence

import numpy as np
from sqlalchemy.orm import Session

from ..errors import InvalidInput, RuleViolation
from ..quality import (
    IdentityCriterion,
    InvestigationConclusion,
    PassFailCriterion,
    RangeCriterion,
    RelativeCriterion,
    ReportOnlyCriterion,
    TestResult,
    convert,
    evaluate,
    normalize_unit,
)
from . import _repositories as repo
from ._auth import Permission, require_permission
from ._context import acting_as, change_reason
from ._enums import LotStatus
from ._models_auth import User
from ._models_lot import Lot
from ._models_quality import (
    LotReferenceValue,
    LotSizeDistribution,
    OOSInvestigationRecord,
    QualityResult,
)
from ._quality_common import _lot_data, _spec_model
from ._quality_investigations import _open_investigation
from ._quality_specs import specification_in_force

__all__ = ["add_quality_result", "add_size_distribution", "set_reference_value"]


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
