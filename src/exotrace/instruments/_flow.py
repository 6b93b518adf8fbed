"""Nano-flow EV analysis of FCS events: kept here for existing callers.

The implementations live in :mod:`exotrace.flow` (percent positive, bead
calibrations, Mie sizing, concentration); this module re-exports the two
functions the instruments package has always offered.
"""

from __future__ import annotations

from ..flow._gating import PercentPositive, percent_positive
from ..flow._powerlaw import ScatterCalibration, scatter_calibration

__all__ = ["PercentPositive", "ScatterCalibration", "percent_positive", "scatter_calibration"]
