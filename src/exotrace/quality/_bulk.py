"""Vectorised evaluation and trending of many lots at once.

:func:`evaluate_matrix` applies the numeric criteria (range and relative) of a
specification to a lots-by-tests array with the same rules as
:func:`~exotrace.quality.evaluate` (inclusive/exclusive bounds, unit
conversion, alternative groups, NaN = missing). :func:`trend_matrix` computes
I-MR limits per attribute and the Nelson-rule flags of every attribute in one
pass (:func:`~exotrace.quality.nelson_flags` on the transposed array).

References
----------
.. [1] See :mod:`exotrace.quality._evaluate` and :mod:`exotrace.quality._spc`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ..errors import InsufficientData, InvalidInput
from ._spc import D2_N2, nelson_flags
from ._spec import RangeCriterion, RelativeCriterion, ReportOnlyCriterion, Specification
from ._units import convert_array

__all__ = ["BulkEvaluation", "BulkTrend", "evaluate_matrix", "trend_matrix"]

# Outcome codes of the outcome array.
PASS, FAIL, MISSING, REPORT_ONLY = 0, 1, 2, 3


@dataclass(frozen=True)
class BulkEvaluation:
    """Outcomes of many lots.

    Attributes
    ----------
    tests : list of str
        Column order.
    outcomes : numpy.ndarray of int8, shape (n_lots, n_tests)
        0 pass, 1 fail, 2 missing, 3 report only.
    conclusion : numpy.ndarray of int8, shape (n_lots,)
        0 complies, 1 does not comply, 2 incomplete.
    """

    tests: list[str]
    outcomes: np.ndarray
    conclusion: np.ndarray


def evaluate_matrix(spec: Specification, tests: Sequence[str], values, units: Sequence[str], *,
                    references: np.ndarray | None = None,
                    reference_unit: str | None = None) -> BulkEvaluation:
    """Evaluate many lots' numeric results against ``spec``.

    Parameters
    ----------
    spec : Specification
        Its tests named in ``tests`` must have range, relative or report-only criteria.
    tests : sequence of str
        Test name of each column.
    values : array_like, shape (n_lots, n_tests)
        Results; NaN means missing.
    units : sequence of str
        Unit of each column.
    references : array_like, shape (n_lots,), optional
        Reference value (e.g. label claim) per lot for relative criteria.
    reference_unit : str, optional
        Unit of ``references``.

    Returns
    -------
    BulkEvaluation
        Tests of the specification absent from ``tests`` count as missing.
    """
    v = np.asarray(values, dtype=float)
    if v.ndim != 2 or v.shape[1] != len(tests) or len(units) != len(tests):
        raise InvalidInput("values must be lots x tests, with one name and unit per column")
    n = v.shape[0]
    out = np.full((n, len(tests)), MISSING, dtype=np.int8)
    group_of: dict[str, str | None] = {}
    for j, name in enumerate(tests):
        try:
            t = spec.test(name)
        except KeyError:
            raise InvalidInput(f"test {name!r} is not in specification {spec.name}") from None
        c = t.criterion
        group_of[name] = t.alternative_group
        col = v[:, j]
        present = np.isfinite(col)
        if isinstance(c, ReportOnlyCriterion):
            out[present, j] = REPORT_ONLY
            continue
        if isinstance(c, RangeCriterion):
            x = convert_array(col, units[j], c.unit)
            ok = np.ones(n, dtype=bool)
            if c.lower is not None:
                ok &= (x >= c.lower) if c.lower_inclusive else (x > c.lower)
            if c.upper is not None:
                ok &= (x <= c.upper) if c.upper_inclusive else (x < c.upper)
        elif isinstance(c, RelativeCriterion):
            if references is None or reference_unit is None:
                raise InvalidInput(f"test {name!r} needs reference values and their unit")
            x = convert_array(col, units[j], c.unit)
            ref = convert_array(references, reference_unit, c.unit)
            with np.errstate(divide="ignore", invalid="ignore"):
                dev = np.abs(x - ref) / np.abs(ref) * 100.0
            ok = dev <= c.tolerance_percent * (1 + 1e-12)
        else:
            raise InvalidInput(f"test {name!r} is qualitative; evaluate it with evaluate()")
        out[present, j] = np.where(ok[present], PASS, FAIL)

    fail = np.zeros(n, dtype=bool)
    missing = np.zeros(n, dtype=bool)
    groups: dict[str, list[int]] = {}
    for j, name in enumerate(tests):
        g = group_of[name]
        if g:
            groups.setdefault(g, []).append(j)
            continue
        fail |= out[:, j] == FAIL
        missing |= out[:, j] == MISSING
    for cols in groups.values():
        sub = out[:, cols]
        g_pass = np.any(sub == PASS, axis=1)
        g_missing = ~g_pass & np.any(sub == MISSING, axis=1)
        fail |= ~g_pass & ~g_missing
        missing |= g_missing
    listed = set(tests)
    for t in spec.tests:
        if t.name in listed or isinstance(t.criterion, ReportOnlyCriterion):
            continue
        if t.alternative_group and t.alternative_group in groups:
            continue  # another member of the group was given
        missing[:] = True
    conclusion = np.where(fail, 1, np.where(missing, 2, 0)).astype(np.int8)
    return BulkEvaluation(list(tests), out, conclusion)


@dataclass(frozen=True)
class BulkTrend:
    """I-MR limits and Nelson flags of many attributes.

    Attributes
    ----------
    mean, sigma : numpy.ndarray, shape (n_attributes,)
        Centre line and sigma (MRbar/d2) per attribute from the baseline.
    flags : numpy.ndarray of bool, shape (8, n_attributes, n_lots)
        Nelson-rule flags (window's last point).
    """

    mean: np.ndarray
    sigma: np.ndarray
    flags: np.ndarray

    def violation_counts(self) -> np.ndarray:
        """Number of flagged indices per rule and attribute, shape (8, n_attributes)."""
        return self.flags.sum(axis=-1)


def trend_matrix(values, *, baseline: int | None = None) -> BulkTrend:
    """I-MR limits from a baseline and Nelson flags for every column of ``values``.

    Parameters
    ----------
    values : array_like, shape (n_lots, n_attributes)
        Lots in time order (rows) by attributes (columns).
    baseline : int, optional
        Lots used for the limits (default all).
    """
    v = np.asarray(values, dtype=float)
    if v.ndim != 2:
        raise InvalidInput("values must be lots x attributes")
    n = v.shape[0] if baseline is None else int(baseline)
    if n < 2 or n > v.shape[0]:
        raise InsufficientData(f"baseline must be 2..{v.shape[0]} lots, got {n}")
    series = np.ascontiguousarray(v.T)
    base = series[:, :n]
    mean = base.mean(axis=1)
    sigma = np.abs(np.diff(base, axis=1)).mean(axis=1) / D2_N2
    if np.any(sigma <= 0):
        raise InsufficientData("an attribute is constant over the baseline")
    return BulkTrend(mean, sigma, nelson_flags(series, mean, sigma))
