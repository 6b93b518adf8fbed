"""Stability data evaluation (ICH Q1E): poolability, model choice, shelf life.

Procedure:

1. Fit ``value = intercept + slope * time`` per batch.
2. Poolability by ANCOVA at ``alpha_pool = 0.25``: first equality of slopes
   (separate lines vs common slope, F test on the separate-lines residual
   mean square); if slopes are poolable, equality of intercepts (common slope
   vs one pooled line, F test on the common-slope residual mean square, as
   Q1E Appendix B.2 asks for the intercept test in a common-slope model).
3. Model: ``pooled`` (slopes and intercepts poolable), ``common slope``
   (slopes poolable, intercepts not; one line per batch, shared slope and
   residual variance) or ``separate`` (slopes not poolable; each batch fitted
   on its own, the worst batch decides).
4. Shelf life: the earliest time at which the confidence bound of the mean
   regression line crosses the acceptance limit. With one limit the bound is
   one-sided 95 %; with both limits the two-sided 95 % interval is used
   (each side at 97.5 %), as in Q1E and the R package ``expirest``. For the
   common-slope and separate models the shortest batch shelf life is taken.
5. The search runs from time 0 to the extrapolation cap (default twice the
   longest time observed, Q1E's "up to twice, not more than 12 months
   beyond" is the user's to apply through ``max_time``); a shelf life at the
   cap is reported with a warning, as is any extrapolation beyond the data.

Freeze-thaw studies use the same machinery with the number of cycles as time.

References
----------
.. [1] ICH Q1E, *Evaluation for Stability Data*, 2003, sections 2.4 and
   Appendix B.
.. [2] ICH Q1A(R2), *Stability Testing of New Drug Substances and Products*, 2003.
.. [3] P. Luebbert, R package ``expirest`` (CRAN), function ``expirest_osle``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
from scipy import optimize, stats

from ..errors import InsufficientData, InvalidInput

__all__ = [
    "FreezeThawResult",
    "ShelfLifeResult",
    "freeze_thaw_limit",
    "shelf_life",
]

_GRID = 4001  # points of the coarse crossing search before root refinement


@dataclass(frozen=True)
class _Fit:
    beta: np.ndarray
    xtx_inv: np.ndarray
    mse: float
    df: int
    rss: float


def _ols(X: np.ndarray, y: np.ndarray) -> _Fit:
    with np.errstate(all="ignore"):
        xtx = X.T @ X
        finite = bool(np.all(np.isfinite(xtx)))
        if finite:
            xtx_inv = np.linalg.pinv(xtx)
            beta = xtx_inv @ X.T @ y
            resid = y - X @ beta
            rss = float(resid @ resid)
            finite = bool(np.all(np.isfinite(beta))) and math.isfinite(rss)
    if not finite:
        raise InvalidInput("times or values too large for the regression (it overflows); "
                           "rescale them")
    df = X.shape[0] - np.linalg.matrix_rank(X)
    if df < 1:
        raise InsufficientData("too few points for the regression (no residual degrees of "
                               "freedom)")
    return _Fit(beta, xtx_inv, rss / df, int(df), rss)


def _f_test_p(rss_restricted: float, full: _Fit, df_num: int) -> float:
    """p value of the F test of a restricted model against ``full``."""
    extra = max(rss_restricted - full.rss, 0.0)  # clip rounding below zero
    if full.mse <= 0:
        # exact fit of the larger model: any extra residual is infinitely significant
        return 0.0 if extra > 0 else 1.0
    return float(stats.f.sf(extra / df_num / full.mse, df_num, full.df))


@dataclass(frozen=True)
class ShelfLifeResult:
    """Outcome of a Q1E stability evaluation.

    Attributes
    ----------
    shelf_life : float
        Shelf life in the time column's units (cycles for freeze-thaw).
    model : str
        ``pooled``, ``common slope`` or ``separate``.
    p_slopes, p_intercepts : float or None
        ANCOVA p values of equal slopes / equal intercepts (None with one
        batch, or intercepts when slopes are not poolable).
    alpha_pool : float
        Poolability level (0.25).
    confidence : float
        Confidence level of the bound (0.95).
    sided : str
        ``one-sided`` (one limit) or ``two-sided`` (both limits).
    lower_limit, upper_limit : float or None
        Acceptance limits (attribute units).
    limiting_batch : str or None
        Batch that sets the shelf life (None for the pooled line).
    crossing : str or None
        ``lower`` or ``upper``: which limit is crossed first (None when capped).
    batches : dict
        Batch -> {intercept, slope, shelf_life} from the chosen model.
    capped : bool
        True when no crossing was found before ``max_time``.
    max_time : float
        Extrapolation cap used.
    warnings : list of str
        Capping, extrapolation, limits already crossed at time 0.
    curves : dict
        Batch (``"pooled"`` for one line) -> ``{"time", "mean", "lower", "upper"}``
        lists on 101 points from 0 to ``max_time``, for plots.
    """

    shelf_life: float
    model: str
    p_slopes: float | None
    p_intercepts: float | None
    alpha_pool: float
    confidence: float
    sided: str
    lower_limit: float | None
    upper_limit: float | None
    limiting_batch: str | None
    crossing: str | None
    batches: dict[str, dict[str, float]]
    capped: bool
    max_time: float
    warnings: list[str] = field(default_factory=list)
    curves: dict[str, dict[str, list[float]]] = field(default_factory=dict)


class _Line:
    """Mean line of one batch under a fitted model, with its confidence bounds."""

    def __init__(self, fit: _Fit, make_x, tq: float) -> None:
        self.fit, self.make_x, self.tq = fit, make_x, tq

    def mean_se(self, t: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        X0 = self.make_x(np.atleast_1d(np.asarray(t, dtype=float)))
        mean = X0 @ self.fit.beta
        var = np.einsum("ij,jk,ik->i", X0, self.fit.xtx_inv, X0) * self.fit.mse
        return mean, np.sqrt(np.maximum(var, 0.0))

    def bounds(self, t):
        m, se = self.mean_se(t)
        return m, m - self.tq * se, m + self.tq * se


def _first_crossing(line: _Line, lower: float | None, upper: float | None,
                    t_max: float) -> tuple[float, str | None]:
    """Earliest t in [0, t_max] where a bound leaves the limits; (t_max, None) if never."""
    grid = np.linspace(0.0, t_max, _GRID)
    _, lo, hi = line.bounds(grid)
    best, which = t_max, None
    for side, g in (("lower", None if lower is None else lo - lower),
                    ("upper", None if upper is None else upper - hi)):
        if g is None:
            continue
        bad = np.nonzero(g < 0)[0]
        if bad.size == 0:
            continue
        j = int(bad[0])
        if j == 0:
            t = 0.0
        else:
            def h(t, side=side):
                _, lo_, hi_ = line.bounds(np.array([t]))
                return float(lo_[0] - lower) if side == "lower" else float(upper - hi_[0])
            t = optimize.brentq(h, grid[j - 1], grid[j], xtol=1e-12 * max(1.0, t_max))
        if t < best or which is None:
            best, which = t, side
    return best, which


def _read_inputs(time, values, batches):
    t = np.asarray(time, dtype=float).ravel()
    y = np.asarray(values, dtype=float).ravel()
    if t.shape != y.shape:
        raise InvalidInput(f"time and values differ in length ({t.size} vs {y.size})")
    if not (np.all(np.isfinite(t)) and np.all(np.isfinite(y))):
        raise InvalidInput("time and values must be finite numbers")
    if np.any(t < 0):
        raise InvalidInput("time must not be negative")
    if batches is None:
        labels = np.zeros(t.size, dtype=int)
        names = ["pooled"]
    else:
        b = np.asarray([str(v) for v in np.asarray(batches).ravel()])
        if b.size != t.size:
            raise InvalidInput(f"batch labels and values differ in length ({b.size} vs {t.size})")
        names = list(dict.fromkeys(b.tolist()))
        index = {n: i for i, n in enumerate(names)}
        labels = np.array([index[v] for v in b.tolist()], dtype=int)
    for i, n in enumerate(names):
        ti = t[labels == i]
        if ti.size < 3 or np.unique(ti).size < 2:
            raise InsufficientData(f"batch {n}: need at least 3 points at 2 or more distinct "
                                   f"times, got {ti.size}")
    return t, y, labels, names


def shelf_life(time, values, batches=None, *, lower_limit: float | None = None,
               upper_limit: float | None = None, alpha_pool: float = 0.25,
               confidence: float = 0.95, max_time: float | None = None) -> ShelfLifeResult:
    """Shelf life from stability data by ICH Q1E.

    Parameters
    ----------
    time : array_like, shape (n,)
        Storage time of each measurement (any unit; months usual), >= 0.
    values : array_like, shape (n,)
        Attribute value (attribute units).
    batches : array_like, shape (n,), optional
        Batch label of each measurement; None for a single batch.
    lower_limit, upper_limit : float, optional
        Acceptance limits (at least one).
    alpha_pool : float
        Poolability significance level (Q1E: 0.25).
    confidence : float
        Confidence of the bound (0.95): one-sided with one limit, two-sided
        with both.
    max_time : float, optional
        Extrapolation cap (time units); default twice the longest time observed.

    Returns
    -------
    ShelfLifeResult

    Raises
    ------
    InvalidInput
        No limit, limits in the wrong order, bad numbers.
    InsufficientData
        A batch with fewer than 3 points or 2 distinct times.
    """
    if lower_limit is None and upper_limit is None:
        raise InvalidInput("give a lower limit, an upper limit or both")
    if lower_limit is not None and upper_limit is not None and lower_limit >= upper_limit:
        raise InvalidInput(f"lower limit {lower_limit} must be below upper limit {upper_limit}")
    if not 0.5 < confidence < 1:
        raise InvalidInput(f"confidence must be in (0.5, 1), got {confidence}")
    t, y, labels, names = _read_inputs(time, values, batches)
    k = len(names)
    t_max = float(max_time) if max_time is not None else 2.0 * float(t.max())
    if not (math.isfinite(t_max) and t_max > 0):
        raise InvalidInput(f"max_time must be a positive number, got {t_max:g}")
    if t_max > 1000.0 * float(t.max()):
        # far beyond any Q1E extrapolation, and the confidence bound overflows out there
        raise InvalidInput(f"max_time {t_max:g} is more than 1000 times the longest time "
                           f"observed ({float(t.max()):g})")
    two_sided = lower_limit is not None and upper_limit is not None
    q = 1 - (1 - confidence) / 2 if two_sided else confidence
    onehot = (labels[:, None] == np.arange(k)[None, :]).astype(float)

    p_slopes = p_int = None
    if k == 1:
        model = "pooled"
    else:
        full = _ols(np.hstack([onehot, onehot * t[:, None]]), y)
        common = _ols(np.hstack([onehot, t[:, None]]), y)
        pooled = _ols(np.column_stack([np.ones_like(t), t]), y)
        p_slopes = _f_test_p(common.rss, full, k - 1)
        if p_slopes >= alpha_pool:
            p_int = _f_test_p(pooled.rss, common, k - 1)
            model = "pooled" if p_int >= alpha_pool else "common slope"
        else:
            model = "separate"

    lines: dict[str, _Line] = {}
    coefs: dict[str, tuple[float, float]] = {}
    if model == "pooled":
        fit = _ols(np.column_stack([np.ones_like(t), t]), y)
        tq = stats.t.ppf(q, fit.df)
        lines["pooled"] = _Line(fit, lambda s: np.column_stack([np.ones_like(s), s]), tq)
        coefs["pooled"] = (float(fit.beta[0]), float(fit.beta[1]))
    elif model == "common slope":
        fit = _ols(np.hstack([onehot, t[:, None]]), y)
        tq = stats.t.ppf(q, fit.df)
        for i, n in enumerate(names):
            def mk(s, i=i):
                X0 = np.zeros((s.size, k + 1))
                X0[:, i] = 1.0
                X0[:, k] = s
                return X0
            lines[n] = _Line(fit, mk, tq)
            coefs[n] = (float(fit.beta[i]), float(fit.beta[k]))
    else:
        for i, n in enumerate(names):
            m = labels == i
            fit = _ols(np.column_stack([np.ones(m.sum()), t[m]]), y[m])
            lines[n] = _Line(fit, lambda s: np.column_stack([np.ones_like(s), s]),
                             stats.t.ppf(q, fit.df))
            coefs[n] = (float(fit.beta[0]), float(fit.beta[1]))

    per: dict[str, dict[str, float]] = {}
    best, limiting, crossing = math.inf, None, None
    for n, line in lines.items():
        sl, side = _first_crossing(line, lower_limit, upper_limit, t_max)
        per[n] = {"intercept": coefs[n][0], "slope": coefs[n][1], "shelf_life": sl}
        if sl < best or (sl == best and crossing is None and side is not None):
            best, limiting, crossing = sl, n, side
    warnings: list[str] = []
    capped = crossing is None
    if capped:
        warnings.append(f"no crossing before the extrapolation cap {t_max:g}; shelf life "
                        "capped")
    elif best == 0.0:
        warnings.append("the confidence bound is outside the limit already at time 0")
    if best > float(t.max()):
        warnings.append(f"shelf life {best:.4g} extrapolates beyond the last time point "
                        f"{float(t.max()):g}")
    grid = np.linspace(0.0, t_max, 101)
    curves = {}
    for n, line in lines.items():
        m, lo, hi = line.bounds(grid)
        curves[n] = {"time": grid.tolist(), "mean": m.tolist(), "lower": lo.tolist(),
                     "upper": hi.tolist()}
    return ShelfLifeResult(
        shelf_life=float(best), model=model, p_slopes=p_slopes, p_intercepts=p_int,
        alpha_pool=alpha_pool, confidence=confidence,
        sided="two-sided" if two_sided else "one-sided", lower_limit=lower_limit,
        upper_limit=upper_limit, limiting_batch=None if model == "pooled" else limiting,
        crossing=crossing, batches=per, capped=capped, max_time=t_max, warnings=warnings,
        curves=curves)


@dataclass(frozen=True)
class FreezeThawResult:
    """Freeze-thaw study: whole cycles allowed and the underlying analysis."""

    max_cycles: int
    analysis: ShelfLifeResult


def freeze_thaw_limit(cycles, values, batches=None, *, lower_limit: float | None = None,
                      upper_limit: float | None = None, **kwargs) -> FreezeThawResult:
    """Largest whole number of freeze-thaw cycles whose confidence bound stays within limits.

    Parameters
    ----------
    cycles : array_like, shape (n,)
        Number of freeze-thaw cycles of each measurement (0 = never frozen/thawed).
    values, batches, lower_limit, upper_limit, kwargs
        As for :func:`shelf_life`, with cycles as time.

    Returns
    -------
    FreezeThawResult
        ``max_cycles = floor(shelf life in cycles)``.
    """
    res = shelf_life(cycles, values, batches, lower_limit=lower_limit,
                     upper_limit=upper_limit, **kwargs)
    return FreezeThawResult(int(math.floor(res.shelf_life + 1e-9)), res)
