"""Comparability of two groups of lots (ICH Q5E) by equivalence testing.

For each attribute the difference of means ``mean(B) - mean(A)`` (A is the
reference: before the change, the first site) is tested against a margin
``Delta`` with two one-sided Welch t tests (TOST):

* H01: diff <= -Delta, rejected when ``t1 = (diff + Delta) / se`` is large;
* H02: diff >= +Delta, rejected when ``t2 = (diff - Delta) / se`` is small;

``se = sqrt(s_A^2/n_A + s_B^2/n_B)``, Welch-Satterthwaite degrees of freedom.
Equivalence is shown when ``max(p1, p2) < alpha`` (alpha = 0.05), which is the
same as the ``1 - 2 alpha`` = 90 % confidence interval of the difference lying
strictly inside ``(-Delta, +Delta)``.

A relative margin is ``Delta = fraction * |mean(A)|`` (the reference mean is
treated as fixed). An attribute with fewer than ``min_n`` = 3 lots in either
group is reported "insufficient data" (with 2 lots a Welch test has at most 1-2
degrees of freedom and the interval is too wide to mean anything); so is an
attribute with no variability in either group.

References
----------
.. [1] ICH Q5E, *Comparability of Biotechnological/Biological Products Subject
   to Changes in their Manufacturing Process*, 2004.
.. [2] D. J. Schuirmann, "A comparison of the two one-sided tests procedure and
   the power approach for assessing the equivalence of average
   bioavailability", J. Pharmacokinet. Biopharm. 15:657-680, 1987.
.. [3] B. L. Welch, "The generalization of Student's problem when several
   different population variances are involved", Biometrika 34:28-35, 1947.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum

import numpy as np
from scipy import stats

from ..errors import InvalidInput
from ._distribution import DistributionComparison, compare_size_distributions

__all__ = [
    "AttributeComparison",
    "ComparabilityReport",
    "Equivalence",
    "Margin",
    "compare_groups",
    "tost_welch",
]


class Equivalence(StrEnum):
    """Verdict per attribute."""

    EQUIVALENT = "equivalent"
    NOT_SHOWN = "not shown equivalent"
    INSUFFICIENT = "insufficient data"


@dataclass(frozen=True)
class Margin:
    """Equivalence margin: ``absolute`` (attribute units) or ``relative`` (fraction of mean A)."""

    value: float
    kind: str = "absolute"

    def __post_init__(self) -> None:
        if self.kind not in ("absolute", "relative"):
            raise InvalidInput(f"margin kind must be absolute or relative, got {self.kind!r}")
        if not (math.isfinite(self.value) and self.value > 0):
            raise InvalidInput(f"margin must be positive, got {self.value}")


@dataclass(frozen=True)
class AttributeComparison:
    """TOST result for one attribute.

    Attributes
    ----------
    attribute : str
        Attribute name.
    verdict : Equivalence
        equivalent / not shown equivalent / insufficient data.
    n_a, n_b : int
        Lots per group.
    mean_a, mean_b : float or None
        Group means (attribute units).
    difference : float or None
        ``mean_b - mean_a``.
    margin : float or None
        Absolute margin Delta used.
    ci90 : tuple of float or None
        90 % confidence interval of the difference (``1 - 2 alpha``).
    p_value : float or None
        TOST p value ``max(p_lower, p_upper)``.
    p_lower, p_upper : float or None
        p values of the two one-sided tests.
    df : float or None
        Welch-Satterthwaite degrees of freedom.
    reason : str
        Why data were insufficient, if so.
    """

    attribute: str
    verdict: Equivalence
    n_a: int
    n_b: int
    mean_a: float | None = None
    mean_b: float | None = None
    difference: float | None = None
    margin: float | None = None
    ci90: tuple[float, float] | None = None
    p_value: float | None = None
    p_lower: float | None = None
    p_upper: float | None = None
    df: float | None = None
    reason: str = ""


@dataclass(frozen=True)
class ComparabilityReport:
    """Attribute-by-attribute comparability of group B against reference group A."""

    attributes: list[AttributeComparison]
    distribution: DistributionComparison | None = None
    alpha: float = 0.05
    min_n: int = 3
    summary: dict[str, list[str]] = field(default_factory=dict)


def tost_welch(a, b, margin: float, *, alpha: float = 0.05) -> dict[str, float]:
    """Two one-sided Welch t tests of ``mean(b) - mean(a)`` within ``(-margin, margin)``.

    Parameters
    ----------
    a, b : array_like
        Values of the two groups (n >= 2 each, not both constant).
    margin : float
        Absolute equivalence margin (attribute units).
    alpha : float
        Level of each one-sided test.

    Returns
    -------
    dict
        ``difference, se, df, t_lower, t_upper, p_lower, p_upper, p_value,
        ci_low, ci_high`` (CI at ``1 - 2 alpha``).
    """
    a = np.asarray(a, dtype=float)
    b = np.asarray(b, dtype=float)
    na, nb = a.size, b.size
    va, vb = np.var(a, ddof=1) / na, np.var(b, ddof=1) / nb
    se = math.sqrt(va + vb)
    if se == 0:
        raise InvalidInput("no variability in either group; TOST is undefined")
    df = (va + vb) ** 2 / (va**2 / (na - 1) + vb**2 / (nb - 1))
    diff = float(b.mean() - a.mean())
    t_lower = (diff + margin) / se
    t_upper = (diff - margin) / se
    p_lower = float(stats.t.sf(t_lower, df))
    p_upper = float(stats.t.cdf(t_upper, df))
    q = stats.t.ppf(1 - alpha, df)
    return dict(difference=diff, se=se, df=float(df), t_lower=float(t_lower),
                t_upper=float(t_upper), p_lower=p_lower, p_upper=p_upper,
                p_value=max(p_lower, p_upper), ci_low=diff - q * se, ci_high=diff + q * se)


def compare_groups(group_a: Mapping[str, Sequence[float]], group_b: Mapping[str, Sequence[float]],
                   margins: Mapping[str, Margin | float], *, alpha: float = 0.05, min_n: int = 3,
                   size_distributions: tuple | None = None) -> ComparabilityReport:
    """Compare group B with reference group A attribute by attribute (TOST).

    Parameters
    ----------
    group_a, group_b : mapping of str to sequence of float
        Attribute -> values of the lots in each group (NaN = not measured).
    margins : mapping of str to Margin or float
        Attribute -> equivalence margin (a float is an absolute margin).
        Attributes without a margin are refused.
    alpha : float
        Level of each one-sided test (0.05 gives a 90 % interval).
    min_n : int
        Minimum lots per group (>= 2); fewer gives "insufficient data".
    size_distributions : tuple, optional
        ``(diameters_nm_b, weights_b, diameters_nm_a, weights_a)`` pooled size
        distributions of the groups; compared with
        :func:`compare_size_distributions`.

    Returns
    -------
    ComparabilityReport
    """
    if min_n < 2:
        raise InvalidInput("min_n must be at least 2")
    if not 0 < alpha < 0.5:
        raise InvalidInput(f"alpha must be in (0, 0.5), got {alpha}")
    names = list(dict.fromkeys([*group_a.keys(), *group_b.keys()]))
    missing = [n for n in names if n not in margins]
    if missing:
        raise InvalidInput(f"no equivalence margin for attribute(s) {', '.join(missing)}")
    out: list[AttributeComparison] = []
    for name in names:
        a = np.asarray(group_a.get(name, []), dtype=float)
        b = np.asarray(group_b.get(name, []), dtype=float)
        a, b = a[np.isfinite(a)], b[np.isfinite(b)]
        m = margins[name]
        m = m if isinstance(m, Margin) else Margin(float(m))
        if a.size < min_n or b.size < min_n:
            out.append(AttributeComparison(name, Equivalence.INSUFFICIENT, a.size, b.size,
                                           reason=f"fewer than {min_n} lots in a group"))
            continue
        delta = m.value if m.kind == "absolute" else m.value * abs(float(a.mean()))
        if delta <= 0:
            out.append(AttributeComparison(name, Equivalence.INSUFFICIENT, a.size, b.size,
                                           reason="relative margin of a zero mean"))
            continue
        if np.ptp(a) == 0 and np.ptp(b) == 0:
            out.append(AttributeComparison(name, Equivalence.INSUFFICIENT, a.size, b.size,
                                           mean_a=float(a.mean()), mean_b=float(b.mean()),
                                           reason="no variability in either group"))
            continue
        with np.errstate(all="ignore"):
            r = tost_welch(a, b, delta, alpha=alpha)
        if not all(math.isfinite(r[k]) for k in ("difference", "se", "df", "p_value")):
            out.append(AttributeComparison(name, Equivalence.INSUFFICIENT, a.size, b.size,
                                           reason="values too large to compare (overflow)"))
            continue
        verdict = Equivalence.EQUIVALENT if r["p_value"] < alpha else Equivalence.NOT_SHOWN
        out.append(AttributeComparison(
            name, verdict, a.size, b.size, float(a.mean()), float(b.mean()), r["difference"],
            float(delta), (float(r["ci_low"]), float(r["ci_high"])), r["p_value"],
            r["p_lower"], r["p_upper"], r["df"]))
    dist = None
    if size_distributions is not None:
        db, wb, da, wa = size_distributions
        dist = compare_size_distributions(db, wb, da, wa)
    summary = {v.value: [c.attribute for c in out if c.verdict == v] for v in Equivalence}
    return ComparabilityReport(out, dist, alpha, min_n, summary)
