"""Potency: 4-parameter logistic dose-response and relative potency.

Model (dose ``x`` > 0)::

    y = d + (a - d) / (1 + (x / c) ** b)

``a`` is the response at zero dose, ``d`` at infinite dose, ``c`` the EC50
(dose units) and ``b`` the slope factor. The relative potency of a test
sample against the reference standard comes from the *constrained*
(parallel-curve) model: both curves share ``a``, ``b`` and ``d`` and
``c_test = c_ref / rho``; ``rho`` is the relative potency (``rho = 2`` means
the test sample needs half the reference's dose for the same effect).

The confidence interval of ``rho`` is a Wald interval on ``log(rho)`` from the
least-squares covariance of the constrained fit (the delta method applied to
the log of the EC50 ratio), with ``n - 5`` degrees of freedom, transformed back
by ``exp`` (so it is asymmetric around ``rho``).

Parallelism is checked by an F test of the constrained model (5 parameters)
against two independent 4PL fits (8 parameters); ``p >= 0.05`` means
non-parallelism was not detected. USP <1032>/<1034> prefer an equivalence
test on the slope ratio; the slope and asymptote ratios are reported so that
such margins can be applied.

References
----------
.. [1] D. J. Finney, *Statistical Method in Biological Assay*, 3rd ed., Griffin, 1978.
.. [2] USP <1034>, *Analysis of Biological Assays*.
.. [3] C. Ritz, F. Baty, J. C. Streibig, D. Gerhard, "Dose-response analysis
   using R", PLoS ONE 10:e0146021, 2015 (the drc package's 4PL parameterisation).
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass

import numpy as np
from scipy import optimize, stats

from ..errors import InsufficientData, InvalidInput

__all__ = ["FourPLFit", "PotencyResult", "fit_4pl", "four_pl", "relative_potency"]


def four_pl(dose, a: float, b: float, c: float, d: float) -> np.ndarray:
    """4-parameter logistic response at ``dose`` (dose units, > 0)."""
    x = np.asarray(dose, dtype=float)
    # The optimizer tries wild parameters; overflow to inf is handled, not printed.
    with np.errstate(all="ignore"):
        return d + (a - d) / (1.0 + np.power(x / c, b))


@dataclass(frozen=True)
class FourPLFit:
    """A fitted 4PL curve.

    Attributes
    ----------
    a, b, c, d : float
        Zero-dose asymptote, slope factor, EC50 (dose units), infinite-dose asymptote.
    rss : float
        Residual sum of squares (response units squared).
    n : int
        Points fitted.
    """

    a: float
    b: float
    c: float
    d: float
    rss: float
    n: int


@dataclass(frozen=True)
class PotencyResult:
    """Relative potency of a test sample against a reference standard.

    Attributes
    ----------
    relative_potency : float
        ``EC50_ref / EC50_test`` from the constrained fit.
    ci_low, ci_high : float
        Confidence interval of the relative potency.
    confidence : float
        Confidence level (0.95).
    log_rp_se : float
        Standard error of ``log(relative_potency)``.
    parallel : bool
        True when the F test does not reject parallelism at ``alpha_parallel``.
    parallelism_f, parallelism_p : float
        F statistic (3 and n - 8 df) and its p value.
    slope_ratio : float
        ``b_test / b_ref`` from the unconstrained fits.
    reference, sample : FourPLFit
        Unconstrained fits.
    shared : dict
        Constrained fit: ``a, b, d, ec50_reference, ec50_sample`` and ``rss``.
    n : int
        Points in both curves.
    """

    relative_potency: float
    ci_low: float
    ci_high: float
    confidence: float
    log_rp_se: float
    parallel: bool
    parallelism_f: float
    parallelism_p: float
    slope_ratio: float
    reference: FourPLFit
    sample: FourPLFit
    shared: dict[str, float]
    n: int


def _check(dose, response, name: str) -> tuple[np.ndarray, np.ndarray]:
    x = np.asarray(dose, dtype=float).ravel()
    y = np.asarray(response, dtype=float).ravel()
    if x.shape != y.shape:
        raise InvalidInput(f"{name}: dose and response differ in length ({x.size} vs {y.size})")
    if not (np.all(np.isfinite(x)) and np.all(np.isfinite(y))):
        raise InvalidInput(f"{name}: dose and response must be finite numbers")
    if np.any(x <= 0):
        raise InvalidInput(f"{name}: doses must be positive (the 4PL uses log dose)")
    if np.unique(x).size < 4 or x.size < 5:
        raise InsufficientData(f"{name}: a 4PL fit needs at least 4 distinct doses and 5 "
                               f"points, got {np.unique(x).size} doses and {x.size} points")
    return x, y


def _start(x: np.ndarray, y: np.ndarray) -> list[float]:
    lo, hi = x.min(), x.max()
    a = float(np.mean(y[x == lo]))
    d = float(np.mean(y[x == hi]))
    mid = (a + d) / 2
    # EC50 start: dose whose mean response is closest to half-way.
    xs = np.unique(x)
    means = np.array([y[x == v].mean() for v in xs])
    c = float(xs[np.argmin(np.abs(means - mid))])
    return [a, 1.0, math.log(c), d]


def _curve_fit(f, x, y, p0):
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore", optimize.OptimizeWarning)
        try:
            return optimize.curve_fit(f, x, y, p0=p0, maxfev=20000)
        except (RuntimeError, ValueError, OverflowError, np.linalg.LinAlgError):
            # RuntimeError: no convergence; ValueError: non-finite residuals at the start.
            raise InsufficientData("the 4PL fit did not converge; check that the doses span "
                                   "the curve") from None


def fit_4pl(dose, response) -> FourPLFit:
    """Least-squares 4PL fit of one dose-response curve.

    Parameters
    ----------
    dose : array_like, shape (n,)
        Doses (> 0, any dose unit).
    response : array_like, shape (n,)
        Responses (assay units).

    Returns
    -------
    FourPLFit
    """
    x, y = _check(dose, response, "curve")

    def f(x, a, b, lc, d):
        with np.errstate(all="ignore"):
            return four_pl(x, a, b, np.exp(lc), d)

    p, _ = _curve_fit(f, x, y, _start(x, y))
    a, b, lc, d = (float(v) for v in p)
    rss = float(np.sum((y - f(x, *p)) ** 2))
    if not (math.isfinite(rss) and abs(lc) < 700):
        raise InsufficientData("the 4PL fit diverged (EC50 outside any dose range); check "
                               "that the doses span the curve")
    return FourPLFit(a, b, math.exp(lc), d, rss, int(x.size))


def _exp(v: float) -> float:
    """``exp`` that gives inf instead of raising OverflowError (unbounded CI ends)."""
    return math.exp(v) if v < 709.0 else math.inf


def relative_potency(dose_reference, response_reference, dose_sample, response_sample, *,
                     confidence: float = 0.95, alpha_parallel: float = 0.05) -> PotencyResult:
    """Relative potency of a sample against the reference standard (parallel 4PL).

    Parameters
    ----------
    dose_reference, response_reference : array_like
        Reference standard curve (dose units; assay units).
    dose_sample, response_sample : array_like
        Test sample curve (same units).
    confidence : float
        Confidence of the interval (0.95).
    alpha_parallel : float
        Level of the parallelism F test.

    Returns
    -------
    PotencyResult

    Raises
    ------
    InsufficientData
        Fewer than 4 doses per curve, too few points for the F test, or a
        fit that does not converge.
    """
    xr, yr = _check(dose_reference, response_reference, "reference")
    xs, ys = _check(dose_sample, response_sample, "sample")
    ref = fit_4pl(xr, yr)
    smp = fit_4pl(xs, ys)
    x = np.concatenate([xr, xs])
    y = np.concatenate([yr, ys])
    is_s = np.concatenate([np.zeros(xr.size), np.ones(xs.size)])
    n = x.size
    if n <= 8:
        raise InsufficientData(f"need more than 8 points in both curves for the parallelism "
                               f"test, got {n}")

    def g(xx, a, b, d, lc_ref, log_rho):
        x_, s_ = xx
        lc = lc_ref - log_rho * s_
        with np.errstate(all="ignore"):
            return d + (a - d) / (1.0 + np.power(x_ / np.exp(lc), b))

    p0 = [(ref.a + smp.a) / 2, (ref.b + smp.b) / 2, (ref.d + smp.d) / 2, math.log(ref.c),
          math.log(ref.c / smp.c)]
    p, cov = _curve_fit(g, np.vstack([x, is_s]), y, p0)
    rss_c = float(np.sum((y - g(np.vstack([x, is_s]), *p)) ** 2))
    df_c = n - 5
    se = float(math.sqrt(cov[4, 4])) if np.isfinite(cov[4, 4]) else math.inf
    tq = stats.t.ppf(1 - (1 - confidence) / 2, df_c)
    log_rho = float(p[4])
    if not (math.isfinite(rss_c) and abs(log_rho) < 700 and abs(float(p[3])) < 700):
        raise InsufficientData("the parallel 4PL fit diverged (no finite relative potency); "
                               "check that the doses span both curves")
    rss_u = ref.rss + smp.rss
    df_u = n - 8
    f_stat = ((rss_c - rss_u) / 3) / (rss_u / df_u) if rss_u > 0 else math.inf
    f_stat = max(f_stat, 0.0)  # a constrained fit cannot beat the free one; clip rounding
    p_par = float(stats.f.sf(f_stat, 3, df_u))
    return PotencyResult(
        relative_potency=math.exp(log_rho), ci_low=_exp(log_rho - tq * se),
        ci_high=_exp(log_rho + tq * se), confidence=confidence, log_rp_se=se,
        parallel=p_par >= alpha_parallel, parallelism_f=float(f_stat), parallelism_p=p_par,
        slope_ratio=smp.b / ref.b if ref.b != 0 else math.inf, reference=ref, sample=smp,
        shared={"a": float(p[0]), "b": float(p[1]), "d": float(p[2]),
                "ec50_reference": math.exp(p[3]), "ec50_sample": math.exp(p[3] - log_rho),
                "rss": rss_c},
        n=int(n))
