"""Statistical process control: I-MR charts, the eight Nelson rules, capability.

Written here because no well-kept Python SPC library exists (the packages on
PyPI are unmaintained or implement the rules with differing, undocumented
conventions); the constants and rules are tested against published values.

Conventions (the same in ``docs/quality.md``):

* ``z = (x - mean) / sigma`` with the chart's centre line and sigma.
* "beyond k sigma" is strict: ``z > k`` or ``z < -k``; "within 1 sigma" is
  strict: ``|z| < 1``; "on one side" is strict: ``z > 0`` or ``z < 0`` (a point
  on the centre line breaks a run).
* Every window that satisfies a rule is reported, at the 0-based index of the
  window's last point; a rule is reported at most once per index.

====  =========================================================================
rule  window satisfied when
====  =========================================================================
1     1 point: ``|z| > 3``
2     9 points in a row, all ``z > 0`` or all ``z < 0``
3     6 points in a row strictly increasing, or strictly decreasing (5 steps)
4     14 points in a row alternating up and down (13 non-zero steps, each
      opposite in sign to the previous one)
5     2 of 3 in a row with ``z > 2``, or 2 of 3 with ``z < -2``
6     4 of 5 in a row with ``z > 1``, or 4 of 5 with ``z < -1``
7     15 points in a row with ``|z| < 1``
8     8 points in a row with ``|z| > 1`` (either side)
====  =========================================================================

All functions accept one series (1-D) or many series as rows of a 2-D array
(used by the bulk trending of many attributes at once).

References
----------
.. [1] L. S. Nelson, "The Shewhart control chart - tests for special causes",
   J. Quality Technology 16(4):237-239, 1984.
.. [2] NIST/SEMATECH e-Handbook of Statistical Methods, sections 6.3.2
   (individuals charts) and 6.3.2.1 (constants d2 = 1.128, D4 = 3.267 for n = 2).
.. [3] D. C. Montgomery, *Introduction to Statistical Quality Control*, 7th ed.,
   Wiley 2013, chapter 6.4 and appendix table VI.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ..errors import InsufficientData, InvalidInput

__all__ = [
    "D2_N2",
    "D3_N2",
    "D4_N2",
    "NELSON_RULES",
    "Capability",
    "IMRLimits",
    "Violation",
    "capability",
    "imr_limits",
    "moving_ranges",
    "nelson_flags",
    "nelson_rules",
]

#: d2 for subgroups of n = 2 (moving range of two points): E[R]/sigma = 2/sqrt(pi).
D2_N2 = 1.128
#: D3 for n = 2 (lower MR limit factor).
D3_N2 = 0.0
#: D4 for n = 2 (upper MR limit factor), 1 + 3 d3/d2 with d3 = 0.853.
D4_N2 = 3.267

#: Short descriptions of the rules (1-based).
NELSON_RULES: dict[int, str] = {
    1: "1 point beyond 3 sigma",
    2: "9 points in a row on one side of the centre line",
    3: "6 points in a row steadily increasing or decreasing",
    4: "14 points in a row alternating up and down",
    5: "2 of 3 points beyond 2 sigma on the same side",
    6: "4 of 5 points beyond 1 sigma on the same side",
    7: "15 points in a row within 1 sigma",
    8: "8 points in a row beyond 1 sigma, either side",
}


@dataclass(frozen=True)
class Violation:
    """One Nelson-rule signal: ``rule`` (1-8) at 0-based ``index`` (window's last point)."""

    rule: int
    index: int


@dataclass(frozen=True)
class IMRLimits:
    """Limits of an individuals and moving-range chart.

    Attributes
    ----------
    mean : float
        Centre line of the individuals chart (attribute units).
    sigma : float
        Process sigma (attribute units), ``MRbar / d2`` unless given.
    ucl, lcl : float
        Individuals limits, ``mean +- 3 sigma``.
    mr_bar : float
        Mean moving range (``sigma * d2`` when sigma was given).
    mr_ucl, mr_lcl : float
        Moving-range limits, ``D4 * MRbar`` and ``D3 * MRbar = 0``.
    n_baseline : int or None
        Points the limits were estimated from (None when given).
    source : str
        ``"baseline"`` or ``"given"``.
    """

    mean: float
    sigma: float
    ucl: float
    lcl: float
    mr_bar: float
    mr_ucl: float
    mr_lcl: float
    n_baseline: int | None
    source: str


def _as_float(x, name: str = "x") -> np.ndarray:
    arr = np.asarray(x, dtype=float)
    if arr.ndim not in (1, 2):
        raise InvalidInput(f"{name} must be one series or a 2-D array of series")
    if not np.all(np.isfinite(arr)):
        raise InvalidInput(f"{name} contains NaN or infinite values")
    return arr


def moving_ranges(x) -> np.ndarray:
    """Moving ranges ``|x[i] - x[i-1]|`` along the last axis (length n - 1)."""
    return np.abs(np.diff(_as_float(x), axis=-1))


def imr_limits(x, *, baseline: int | None = None, mean: float | None = None,
               sigma: float | None = None) -> IMRLimits:
    """Individuals and moving-range chart limits.

    Parameters
    ----------
    x : array_like, shape (n,)
        Individual values in time order (attribute units).
    baseline : int, optional
        Estimate the limits from the first ``baseline`` points (default: all).
    mean, sigma : float, optional
        Given centre line and sigma (both or neither); override ``baseline``.

    Returns
    -------
    IMRLimits

    Raises
    ------
    InsufficientData
        Fewer than 2 baseline points.
    InvalidInput
        Only one of ``mean``/``sigma``, or a non-positive sigma.

    Notes
    -----
    ``sigma = MRbar / d2`` with ``d2 = 1.128``; individuals limits
    ``mean +- 3 sigma = mean +- 2.66 MRbar``; MR chart UCL ``D4 MRbar`` with
    ``D4 = 3.267``.
    """
    x = _as_float(x)
    if x.ndim != 1:
        raise InvalidInput("imr_limits takes one series")
    if (mean is None) != (sigma is None):
        raise InvalidInput("give both mean and sigma, or neither")
    if mean is not None:
        if not np.isfinite(mean):
            raise InvalidInput(f"mean must be a finite number, got {mean}")
        if not (np.isfinite(sigma) and sigma > 0):
            raise InvalidInput(f"sigma must be positive, got {sigma}")
        mr_bar = float(sigma) * D2_N2
        return IMRLimits(float(mean), float(sigma), float(mean) + 3 * sigma,
                         float(mean) - 3 * sigma, mr_bar, D4_N2 * mr_bar, D3_N2 * mr_bar,
                         None, "given")
    n = x.size if baseline is None else int(baseline)
    if n < 2:
        raise InsufficientData(f"need at least 2 baseline points for I-MR limits, got {n}")
    if n > x.size:
        raise InsufficientData(f"baseline of {n} points but the series has {x.size}")
    base = x[:n]
    with np.errstate(over="ignore", invalid="ignore"):
        mr_bar = float(np.mean(np.abs(np.diff(base))))
        m = float(np.mean(base))
    if not (math.isfinite(mr_bar) and math.isfinite(m)):
        raise InvalidInput("values too large for I-MR limits (the moving range overflows)")
    if mr_bar <= 0:
        raise InsufficientData("baseline points are all equal; sigma would be zero")
    s = mr_bar / D2_N2
    return IMRLimits(m, s, m + 3 * s, m - 3 * s, mr_bar, D4_N2 * mr_bar, D3_N2 * mr_bar, n,
                     "baseline")


def _window_all(cond: np.ndarray, k: int) -> np.ndarray:
    """``out[..., i]`` True when ``cond[..., i-k+1 : i+1]`` are all True (False for i < k-1)."""
    return _window_count(cond, k) >= k


def _window_count(cond: np.ndarray, k: int) -> np.ndarray:
    """Number of True values in the window of length ``k`` ending at each index."""
    c = cond.astype(np.int32)
    cs = np.cumsum(c, axis=-1)
    out = np.zeros_like(cs)
    n = c.shape[-1]
    if n < k:
        return out
    out[..., k - 1] = cs[..., k - 1]
    out[..., k:] = cs[..., k:] - cs[..., :-k]
    return out


def nelson_flags(x, mean, sigma) -> np.ndarray:
    """Boolean flags of the eight Nelson rules.

    Parameters
    ----------
    x : array_like, shape (n,) or (m, n)
        One series, or ``m`` series as rows (attribute units).
    mean, sigma : float or array_like of shape (m,)
        Centre line and sigma per series.

    Returns
    -------
    numpy.ndarray of bool, shape (8, n) or (8, m, n)
        ``flags[r-1, ..., i]`` is True when a window ending at index ``i``
        satisfies rule ``r`` (conventions in the module docstring).
    """
    x = _as_float(x)
    mean = np.asarray(mean, dtype=float)
    sigma = np.asarray(sigma, dtype=float)
    if np.any(~np.isfinite(sigma)) or np.any(sigma <= 0):
        raise InvalidInput("sigma must be positive and finite")
    if x.ndim == 2:
        mean = np.broadcast_to(mean, (x.shape[0],))[:, None]
        sigma = np.broadcast_to(sigma, (x.shape[0],))[:, None]
    with np.errstate(over="ignore"):  # a tiny sigma gives |z| = inf: beyond 3 sigma
        z = (x - mean) / sigma
    flags = np.zeros((8, *x.shape), dtype=bool)
    flags[0] = np.abs(z) > 3
    flags[1] = _window_all(z > 0, 9) | _window_all(z < 0, 9)
    d = np.diff(x, axis=-1)
    pad = np.zeros((*x.shape[:-1], 1), dtype=bool)
    # up[..., i] refers to the step x[i-1] -> x[i]; index 0 has no step.
    up = np.concatenate([pad, d > 0], axis=-1)
    down = np.concatenate([pad, d < 0], axis=-1)
    flags[2] = _window_all(up, 5) | _window_all(down, 5)
    # Alternation: the step into i is opposite in sign (both non-zero) to the step into i-1.
    sd = np.sign(d)
    alt = (sd[..., 1:] * sd[..., :-1]) < 0
    alt = np.concatenate([pad, pad, alt], axis=-1) if x.shape[-1] >= 2 else np.zeros_like(up)
    # 14 points -> 13 steps -> 12 consecutive sign changes ending at the last point.
    flags[3] = _window_all(alt, 12)
    flags[4] = (_window_count(z > 2, 3) >= 2) | (_window_count(z < -2, 3) >= 2)
    flags[5] = (_window_count(z > 1, 5) >= 4) | (_window_count(z < -1, 5) >= 4)
    flags[6] = _window_all(np.abs(z) < 1, 15)
    flags[7] = _window_all(np.abs(z) > 1, 8)
    return flags


def nelson_rules(x, *, mean: float, sigma: float,
                 rules: tuple[int, ...] = (1, 2, 3, 4, 5, 6, 7, 8)) -> list[Violation]:
    """Nelson-rule violations of one series.

    Parameters
    ----------
    x : array_like, shape (n,)
        Values in time order (attribute units).
    mean, sigma : float
        Centre line and sigma (attribute units).
    rules : tuple of int
        Rules to check (1-8).

    Returns
    -------
    list of Violation
        Sorted by index, then rule; each (rule, index) once.
    """
    bad = [r for r in rules if r not in NELSON_RULES]
    if bad:
        raise InvalidInput(f"Nelson rules are numbered 1-8, got {bad}")
    x = _as_float(x)
    if x.ndim != 1:
        raise InvalidInput("nelson_rules takes one series; use nelson_flags for many")
    flags = nelson_flags(x, mean, sigma)
    wanted = np.zeros(8, dtype=bool)
    wanted[[r - 1 for r in rules]] = True
    r_idx, i_idx = np.nonzero(flags & wanted[:, None])
    order = np.lexsort((r_idx, i_idx))
    return [Violation(int(r_idx[j]) + 1, int(i_idx[j])) for j in order]


@dataclass(frozen=True)
class Capability:
    """Process capability against specification limits.

    Attributes
    ----------
    mean : float
        Sample mean (attribute units).
    sigma_within : float
        ``MRbar / d2`` (short-term sigma).
    sigma_overall : float
        Sample standard deviation (ddof = 1).
    cp, pp : float or None
        ``(USL - LSL) / 6 sigma`` (None with one limit).
    cpk, ppk : float
        ``min(USL - mean, mean - LSL) / 3 sigma`` over the limits given.
    n : int
        Number of values.
    """

    mean: float
    sigma_within: float
    sigma_overall: float
    cp: float | None
    cpk: float
    pp: float | None
    ppk: float
    n: int


def capability(x, *, lsl: float | None = None, usl: float | None = None) -> Capability:
    """Cp/Cpk (within sigma from MRbar/d2) and Pp/Ppk (overall sample SD).

    Parameters
    ----------
    x : array_like, shape (n,)
        Values in time order (attribute units); n >= 2.
    lsl, usl : float, optional
        Lower and upper specification limits (at least one).

    Returns
    -------
    Capability

    Notes
    -----
    ``Cpk = min(USL - mu, mu - LSL) / (3 sigma_within)``; ``Ppk`` the same with
    the overall standard deviation. 1.33 is the usual minimum.
    """
    x = _as_float(x)
    if x.ndim != 1:
        raise InvalidInput("capability takes one series")
    if lsl is None and usl is None:
        raise InvalidInput("capability needs a lower or an upper specification limit")
    if lsl is not None and usl is not None and lsl >= usl:
        raise InvalidInput(f"lower limit {lsl} must be below upper limit {usl}")
    if x.size < 2:
        raise InsufficientData(f"capability needs at least 2 values, got {x.size}")
    mu = float(np.mean(x))
    s_within = float(np.mean(np.abs(np.diff(x)))) / D2_N2
    s_overall = float(np.std(x, ddof=1))
    if s_within <= 0 or s_overall <= 0:
        raise InsufficientData("all values are equal; capability is undefined")

    def idx(s: float) -> tuple[float | None, float]:
        parts = []
        if usl is not None:
            parts.append((usl - mu) / (3 * s))
        if lsl is not None:
            parts.append((mu - lsl) / (3 * s))
        cp = (usl - lsl) / (6 * s) if (usl is not None and lsl is not None) else None
        return cp, min(parts)

    cp, cpk = idx(s_within)
    pp, ppk = idx(s_overall)
    return Capability(mu, s_within, s_overall, cp, cpk, pp, ppk, int(x.size))
