"""Hotelling T-squared chart for several attributes of individual lots.

References
----------
.. [1] NIST/SEMATECH e-Handbook of Statistical Methods, section 6.5.4.3,
   "Hotelling's T squared" (individual observations, phase I and phase II limits).
.. [2] N. D. Tracy, J. C. Young, R. L. Mason, "Multivariate control charts for
   individual observations", J. Quality Technology 24(2):88-95, 1992.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import stats

from ..errors import InsufficientData, InvalidInput

__all__ = ["HotellingResult", "hotelling_t2"]


@dataclass(frozen=True)
class HotellingResult:
    """Hotelling T-squared statistics of lots against a baseline.

    Attributes
    ----------
    t2 : numpy.ndarray, shape (n,)
        T-squared of each monitored lot (dimensionless).
    ucl : float
        Upper control limit at ``alpha``.
    out_of_control : numpy.ndarray of int
        0-based indices with ``t2 > ucl``.
    mean : numpy.ndarray, shape (p,)
        Baseline mean vector (attribute units).
    covariance : numpy.ndarray, shape (p, p)
        Baseline sample covariance (ddof = 1).
    phase : str
        ``"I"`` (baseline lots against their own mean) or ``"II"`` (new lots).
    m, p : int
        Baseline lots and attributes.
    alpha : float
        False-alarm probability per lot.
    """

    t2: np.ndarray
    ucl: float
    out_of_control: np.ndarray
    mean: np.ndarray
    covariance: np.ndarray
    phase: str
    m: int
    p: int
    alpha: float


def hotelling_t2(baseline, new=None, *, alpha: float = 0.0027) -> HotellingResult:
    """Hotelling T-squared of individual lots with mean/covariance from a baseline.

    Parameters
    ----------
    baseline : array_like, shape (m, p)
        Baseline lots (rows) by attributes (columns), m > p + 1.
    new : array_like, shape (n, p), optional
        Lots to monitor (phase II). Without it the baseline is charted
        against itself (phase I).
    alpha : float
        False-alarm probability (default 0.0027, the 3-sigma equivalent).

    Returns
    -------
    HotellingResult

    Notes
    -----
    ``T2 = (x - xbar)' S^-1 (x - xbar)``. Phase II limit
    ``p (m + 1)(m - 1) / (m^2 - m p) F(1 - alpha; p, m - p)``; phase I limit
    ``(m - 1)^2 / m Beta(1 - alpha; p/2, (m - p - 1)/2)`` (NIST 6.5.4.3).
    """
    if not 0 < alpha < 1:
        raise InvalidInput(f"alpha must be in (0, 1), got {alpha}")
    b = np.asarray(baseline, dtype=float)
    if b.ndim != 2:
        raise InvalidInput("baseline must be a 2-D array (lots x attributes)")
    if not np.all(np.isfinite(b)):
        raise InvalidInput("baseline contains NaN or infinite values")
    m, p = b.shape
    if m <= p + 1:
        raise InsufficientData(f"Hotelling T2 needs more than p + 1 = {p + 1} baseline lots, "
                               f"got {m}")
    mean = b.mean(axis=0)
    cov = np.cov(b, rowvar=False, ddof=1).reshape(p, p)
    try:
        inv = np.linalg.inv(cov)
    except np.linalg.LinAlgError:
        raise InsufficientData("baseline covariance is singular (constant or collinear "
                               "attributes)") from None
    if np.linalg.cond(cov) > 1e12:
        raise InsufficientData("baseline covariance is singular (constant or collinear "
                               "attributes)")
    if new is None:
        x, phase = b, "I"
        ucl = (m - 1) ** 2 / m * stats.beta.ppf(1 - alpha, p / 2, (m - p - 1) / 2)
    else:
        x = np.asarray(new, dtype=float)
        if x.ndim == 1:
            x = x[None, :]
        if x.ndim != 2 or x.shape[1] != p:
            raise InvalidInput(f"new lots must have {p} attributes per row")
        if not np.all(np.isfinite(x)):
            raise InvalidInput("new lots contain NaN or infinite values")
        phase = "II"
        ucl = p * (m + 1) * (m - 1) / (m * m - m * p) * stats.f.ppf(1 - alpha, p, m - p)
    dev = x - mean
    t2 = np.einsum("ij,jk,ik->i", dev, inv, dev)
    return HotellingResult(t2=t2, ucl=float(ucl), out_of_control=np.nonzero(t2 > ucl)[0],
                           mean=mean, covariance=cov, phase=phase, m=m, p=p, alpha=alpha)
