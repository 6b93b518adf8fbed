"""Walker's maximum-likelihood size distribution, by EM over a diameter grid.

Each track i is summarised by its mean squared step per axis
:math:`m_i` over :math:`k_i` steps in x and y (2 k_i squared steps), the
steps spanning :math:`L_i` frame intervals on average (1 unless the track
bridges linking gaps). Given a diameter d (diffusion D), a step per axis is
Gaussian with variance and adjacent-step covariance (motion blur factor R,
localization variance sigma^2)::

    v = 2 D dt (L - 2R) + 2 sigma^2
    c = 2 R D dt - sigma^2

Adjacent steps are correlated (c != 0), so the 2k squares are not
independent; matching the variance of m_i::

    Var(m) = (k v^2 + 2 P c^2) / k^2     (P adjacent pairs per axis)

gives a gamma law for m_i with mean v and shape
``alpha = k / (1 + 2 P (c/v)^2 / k)`` (an effective number of independent
step pairs). For c = 0 this is the exact chi-square law of Walker (2012).
The mixture weights over the grid maximise the (optionally weighted)
likelihood of all tracks; EM updates with a light smoothing step after each
(EMS, Silverman et al. 1990) keep the solution free of grid-scale spikes.

References
----------
.. [1] J. G. Walker, "Improved nano-particle tracking analysis", Meas. Sci.
   Technol. 23, 065605 (2012).
.. [2] B. W. Silverman, M. C. Jones, J. D. Wilson, D. W. Nychka, "A smoothed EM
   approach to indirect estimation problems", J. R. Stat. Soc. B 52, 271 (1990).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.special import gammaln

__all__ = ["EMResult", "em_mixture", "gamma_log_likelihood"]


def gamma_log_likelihood(mean_step_sq_m2, n_steps, n_pairs, grid_diffusion_m2_per_s, *,
                         frame_interval_s: float, blur: float, localization_var_m2,
                         mean_lag=None):
    """Log-likelihood matrix ln p(m_i | D_j), shape (n_tracks, n_grid).

    Parameters
    ----------
    mean_step_sq_m2 : ndarray, shape (n,)
        Mean squared one-frame step per axis, m^2.
    n_steps, n_pairs : ndarray of int, shape (n,)
        Steps and adjacent step pairs per axis.
    grid_diffusion_m2_per_s : ndarray, shape (g,)
        Diffusion coefficients of the grid, m^2/s.
    frame_interval_s : float
        s.
    blur : float
        Motion-blur factor R.
    localization_var_m2 : float or ndarray of shape (n,)
        Localization variance per axis, m^2 (global or per track).
    mean_lag : ndarray of shape (n,), optional
        Mean frame intervals spanned by each track's steps (default 1).
    """
    m = np.asarray(mean_step_sq_m2, dtype=float)[:, None]
    k = np.asarray(n_steps, dtype=float)[:, None]
    p = np.asarray(n_pairs, dtype=float)[:, None]
    s2 = np.asarray(localization_var_m2, dtype=float)
    s2 = s2[:, None] if s2.ndim == 1 else s2
    dd = np.asarray(grid_diffusion_m2_per_s, dtype=float)[None, :] * frame_interval_s
    lag = 1.0 if mean_lag is None else np.asarray(mean_lag, dtype=float)[:, None]
    v = 2.0 * dd * (lag - 2.0 * blur) + 2.0 * s2
    c = 2.0 * blur * dd - s2
    alpha = k / (1.0 + 2.0 * p * (c / v) ** 2 / k)
    # A non-positive mean square (impossible for real steps) gets a floor.
    m = np.maximum(m, 1e-30)
    ratio = alpha * m / v
    return alpha * np.log(ratio) - ratio - np.log(m) - gammaln(alpha)


@dataclass(frozen=True)
class EMResult:
    weights: np.ndarray  # mixture weights over the grid (sum 1)
    posterior: np.ndarray  # (n_tracks, n_grid) responsibilities
    log_likelihood: float  # weighted, per unit weight
    iterations: int
    converged: bool


def _smooth(p: np.ndarray, kernel: np.ndarray) -> np.ndarray:
    if kernel.size == 1:
        return p
    half = kernel.size // 2
    padded = np.pad(p, half, mode="constant")
    out = np.convolve(padded, kernel, mode="valid")
    return out / out.sum()


def em_mixture(log_lik: np.ndarray, *, track_weights=None, smoothing: float = 0.5,
               max_iter: int = 2000, tol: float = 1e-7, init=None) -> EMResult:
    """Maximise the mixture likelihood over the grid by (smoothed) EM.

    Parameters
    ----------
    log_lik : ndarray, shape (n, g)
        ln p(track i | grid point j).
    track_weights : ndarray, shape (n,), optional
        Weight of each track in the likelihood (e.g. its points, to estimate
        the number present per frame); default 1.
    smoothing : float
        SD, in grid steps, of the Gaussian kernel applied after each EM step
        (0 = plain EM).
    max_iter : int
        Iteration cap.
    tol : float
        Stop when the weighted mean log-likelihood rises by less than this.
    init : ndarray, shape (g,), optional
        Starting weights (default uniform).
    """
    n, g = log_lik.shape
    w = np.ones(n) if track_weights is None else np.asarray(track_weights, dtype=float)
    w = w / w.sum()
    shift = log_lik.max(axis=1, keepdims=True)
    rel = log_lik - shift
    # Terms below e^-60 of a track's best grid point change nothing but would be
    # denormal floats that slow every matrix product many times over.
    lik = np.where(rel > -60.0, np.exp(np.maximum(rel, -60.0)), 0.0)
    shift = shift[:, 0]
    if smoothing > 0:
        half = max(1, int(np.ceil(3 * smoothing)))
        xs = np.arange(-half, half + 1)
        kernel = np.exp(-0.5 * (xs / smoothing) ** 2)
        kernel /= kernel.sum()
    else:
        kernel = np.ones(1)
    p = np.full(g, 1.0 / g) if init is None else np.asarray(init, dtype=float) / np.sum(init)
    prev = -np.inf
    converged = False
    it = 0
    # einsum rather than ``@``: these matrix-vector products are too small for
    # multi-threaded BLAS, which is many times slower on a busy machine.
    for it in range(1, max_iter + 1):  # noqa: B007 - the count is reported
        denom = np.maximum(np.einsum("ij,j->i", lik, p), 1e-300)
        ll = float(np.dot(w, np.log(denom) + shift))
        p = p * np.einsum("ij,i->j", lik, w / denom)
        p = _smooth(p, kernel)
        if ll - prev < tol:
            converged = True
            break
        prev = ll
    denom = np.maximum(np.einsum("ij,j->i", lik, p), 1e-300)
    ll = float(np.dot(w, np.log(denom) + shift))
    post = lik * p[None, :] / denom[:, None]
    return EMResult(weights=p, posterior=post, log_likelihood=ll, iterations=it,
                    converged=converged)
