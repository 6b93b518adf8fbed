"""Peaks of a 1-D profile by prominence: ``scipy.signal.find_peaks(x, prominence=p)``
without scipy.signal, whose import (it pulls in scipy.stats) took longer than a
whole size analysis."""

from __future__ import annotations

import numpy as np

__all__ = ["find_peaks"]


def _local_maxima(x: np.ndarray) -> list[int]:
    """Indices of the local maxima (a flat top: its middle, rounded down), as scipy's
    ``_local_maxima_1d``; the first and last samples are never maxima."""
    peaks = []
    i = 1
    last = x.size - 1
    while i < last:
        if x[i - 1] < x[i]:
            ahead = i + 1
            while ahead < last and x[ahead] == x[i]:
                ahead += 1
            if x[ahead] < x[i]:
                peaks.append((i + ahead - 1) // 2)
                i = ahead
        i += 1
    return peaks


def _prominence(x: np.ndarray, peak: int) -> float:
    """Height of ``x[peak]`` above the higher of the lowest points on each side
    before a higher sample (scipy's ``_peak_prominences`` without a window)."""
    top = x[peak]
    left_min = top
    i = peak
    while i >= 0 and x[i] <= top:
        left_min = min(left_min, x[i])
        i -= 1
    right_min = top
    i = peak
    while i < x.size and x[i] <= top:
        right_min = min(right_min, x[i])
        i += 1
    return float(top - max(left_min, right_min))


def find_peaks(x, prominence: float) -> tuple[np.ndarray, dict]:
    """Indices of the peaks of ``x`` whose prominence is at least ``prominence``,
    and ``{"prominences": ...}`` (the two values scipy's ``find_peaks`` returns
    for these arguments)."""
    x = np.asarray(x, dtype=np.float64)
    peaks = _local_maxima(x)
    prom = np.array([_prominence(x, p) for p in peaks], dtype=np.float64)
    keep = prom >= prominence
    return np.array(peaks, dtype=np.intp)[keep], {"prominences": prom[keep]}
