"""Quality services: I-MR trends and Nelson rules of an attribute over lots."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import date

import numpy as np
from sqlalchemy.orm import Session

from ..errors import InsufficientData, RuleViolation
from ..quality import IMRLimits, Violation, imr_limits, nelson_rules
from . import _repositories_quality as qrepo
from ._quality_common import _lot_values
from ._quality_specs import specification_in_force

__all__ = ["LotTrend", "spc_lots"]


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
