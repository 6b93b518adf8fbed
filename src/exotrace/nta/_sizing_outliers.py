"""Wrong links in the size likelihood: each step is Brownian or, rarely, a jump to another particle.

When a particle is missed in a frame (too dim, hidden by a neighbour), its
track may take another particle within the linking radius instead. That one
step is then not the particle's motion at all, and in the mean squared step
it weighs like several of the track's true steps: on simulated 640 x 480
fields at 1e9/mL, 5-6 % of the 70 nm EVs' steps were such wrong links and
held a third of their squared displacement; their tracks came out at
~21 nm, a spurious peak that the visible-depth correction then multiplied.
The jump test of :func:`~exotrace.nta.diffusion.track_diffusion` splits the
tracks at the grossest ones but cannot tell a wrong link three step sigmas
long from a genuine long step.

So the likelihood takes every consecutive-frame step r (squared length r^2,
x and y together) as Brownian with per-axis variance v (the size's) with
probability 1 - eps, or as a wrong link, spread evenly over the linking disc
of radius R, with probability eps::

    p(r^2 | v) = (1 - eps) exp(-r^2 / (2 v)) / (2 v) + eps / R^2

A track's log-likelihood is the sum over its steps of ln p relative to the
density at its own mean step (which makes it free of units), times the
effective number of independent steps per step, alpha / k (adjacent steps
share the motion during an exposure; the same factor as the gamma law of
:func:`~exotrace.nta._sizing_em.gamma_log_likelihood`). Without wrong links
(eps = 0) this is that gamma law (up to a constant per track, with its
normalization in the effective number of steps). eps is measured from the tracks with at
least four steps, each judged against its own median step.
"""

from __future__ import annotations

import math

import numpy as np

from . import _kernels
from ._numeric import log_gamma

__all__ = ["step_mixture_log_likelihood", "wrong_link_rate"]

# Tracks with at least this many consecutive steps measure the wrong-link rate.
_MIN_RATE_STEPS = 4
# The rate is kept within these bounds (a few wrong links in a dilute field,
# some per cent in a crowded one).
RATE_BOUNDS = (1e-4, 0.2)
_RATE_ITERATIONS = 30


def wrong_link_rate(step_sq_m2, step_row, n_rows: int, *, disc_r2_m2: float) -> float:
    """Fraction of consecutive steps that are wrong links (see the module notes).

    Each track with at least four steps is scaled by its own median squared
    step (robust to a wrong link or two): v = median / (2 ln 2). The rate is
    the fixed point of eps = mean over steps of the probability that the
    step is a wrong link under that v.

    Parameters
    ----------
    step_sq_m2 : ndarray, shape (s,)
        Squared length of every step, m^2.
    step_row : ndarray of int, shape (s,)
        Track (row) of every step.
    n_rows : int
        Number of rows.
    disc_r2_m2 : float
        Squared radius of the linking disc, m^2.

    Returns
    -------
    float
        The rate, within :data:`RATE_BOUNDS`; the lower bound when no track
        has four steps.
    """
    r2 = np.asarray(step_sq_m2, dtype=float)
    row = np.asarray(step_row, dtype=np.int64)
    counts = np.bincount(row, minlength=n_rows)
    use = counts[row] >= _MIN_RATE_STEPS
    if not np.any(use) or not (disc_r2_m2 > 0):
        return RATE_BOUNDS[0]
    r2, row = r2[use], row[use]
    order = np.lexsort((r2, row))
    r2s, rows = r2[order], row[order]
    starts = np.flatnonzero(np.r_[True, rows[1:] != rows[:-1]])
    ends = np.r_[starts[1:], len(rows)]
    mid = (starts + ends - 1) / 2.0
    med = 0.5 * (r2s[np.floor(mid).astype(np.int64)] + r2s[np.ceil(mid).astype(np.int64)])
    v_track = np.maximum(med / (2.0 * math.log(2.0)), 1e-30)
    v = np.repeat(v_track, ends - starts)
    log_brownian = -r2s / (2.0 * v) - np.log(2.0 * v)
    log_wrong = -math.log(disc_r2_m2)
    eps = 0.01
    for _ in range(_RATE_ITERATIONS):
        a = math.log1p(-eps) + log_brownian
        b = math.log(eps) + log_wrong
        resp = 1.0 / (1.0 + np.exp(np.clip(a - b, -700.0, 700.0)))
        new = float(np.clip(resp.mean(), *RATE_BOUNDS))
        if abs(new - eps) < 1e-6:
            eps = new
            break
        eps = new
    return eps


def step_mixture_log_likelihood(step_sq_m2, step_local_row, variance_m2, temper, *,
                                rate: float, disc_r2_m2: float) -> np.ndarray:
    """ln p(track's steps | grid point) under the Brownian-or-wrong-link law.

    Parameters
    ----------
    step_sq_m2 : ndarray, shape (s,)
        Squared length of every step, m^2.
    step_local_row : ndarray of int, shape (s,)
        Row (0 .. n - 1) of every step.
    variance_m2 : ndarray, shape (n, g)
        Per-axis step variance of each row at each grid point, m^2.
    temper : ndarray, shape (n, g)
        Effective independent steps per step (alpha / k).
    rate : float
        Wrong-link probability per step.
    disc_r2_m2 : float
        Squared radius of the linking disc, m^2.

    Returns
    -------
    ndarray, shape (n, g)
    """
    v = np.ascontiguousarray(variance_m2, dtype=np.float64)
    out = np.zeros_like(v)
    inv2v = 1.0 / (2.0 * v)
    log2v = np.log(2.0 * v)
    r2 = np.ascontiguousarray(step_sq_m2, dtype=np.float64)
    row = np.ascontiguousarray(step_local_row, dtype=np.int64)
    log_w, log_wrong = math.log1p(-rate), math.log(rate) - math.log(disc_r2_m2)
    if _kernels.HAVE_NUMBA:
        _kernels.step_mixture_loglik_nb(r2, row, inv2v, log2v, log_w, log_wrong, out)
    else:  # pragma: no cover - numba is a hard dependency
        a = log_w - r2[:, None] * inv2v[row] - log2v[row]
        np.add.at(out, row, np.logaddexp(a, log_wrong))
    # Relative to the density at the track's own mean step (1 / (e x_mean)),
    # so the sum is free of units before the tempering, which varies over
    # the grid: ln p in m^-2 carries ~+28 per step, and 0.7-0.96 of it would
    # have tilted every track towards large sizes. Without wrong links this
    # is exactly k [1 + ln(x / 2v) - x / 2v], the core of the gamma law.
    n_rows = v.shape[0]
    k = np.bincount(row, minlength=n_rows).astype(float)
    total = np.bincount(row, weights=r2, minlength=n_rows)
    with np.errstate(invalid="ignore", divide="ignore"):
        log_mean = np.log(np.maximum(np.where(k > 0, total / np.maximum(k, 1), 0.0), 1e-300))
    out += (k * (1.0 + log_mean))[:, None]
    # and the gamma law's own normalization for alpha = k temper independent
    # steps, so that with eps = 0 the two are the same function of the grid
    alpha = np.maximum(k[:, None] * temper, 1e-12)
    return out * temper + alpha * np.log(alpha) - log_gamma(alpha) - alpha
