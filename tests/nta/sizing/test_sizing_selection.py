"""The effective blur factor that corrects the detection's preference for compact exposures."""

from __future__ import annotations

import numpy as np
import pytest

from exotrace.nta._sizing_selection import (
    MIN_LAG3_PAIRS,
    SELECTION_SCALE,
    effective_blur_factor,
    selection_weight,
)
from exotrace.nta.sizing import size_distribution

DT = 0.04
R = 0.125


def _moments(d, s2, extra_blur, n=400, steps=60):
    """Exact per-track moments of Brownian tracks whose consecutive steps look
    as if blurred with R + extra_blur (lags 2 and 3: the same per-frame offset)."""
    d = np.broadcast_to(np.asarray(d, dtype=float), (n,))
    m1 = 2 * d * DT * (1 - 2 * (R + extra_blur)) + 2 * s2
    m2 = m1 + 2 * d * DT
    m3 = m1 + 4 * d * DT
    k = np.full(n, steps)
    return m1, k, m2, k - 1, m3, k - 2


def test_recovers_the_extra_blur_of_selected_frames():
    d = 4.5e-12
    m1, n1, m2, n2, m3, n3 = _moments(d, 4e-16, extra_blur=0.02)
    cal = effective_blur_factor(m1, n1, m2, n2, m3, n3, 4e-16, frame_interval_s=DT, blur=R)
    assert cal.linear and not cal.clipped
    assert cal.reference_diffusion_m2_per_s == pytest.approx(d, rel=1e-9)
    assert cal.blur_factor == pytest.approx(R + 0.02, abs=1e-9)


def test_brightness_dependent_selection_is_recovered():
    # Dim tracks (y near 0) are selected strongly, bright ones not at all.
    rng = np.random.default_rng(0)
    y = rng.uniform(0.0, 4.0, 400)
    g = selection_weight(y, SELECTION_SCALE)
    d = rng.uniform(3e-12, 8e-12, 400)  # polydisperse
    m1, n1, m2, n2, m3, n3 = _moments(d, 4e-16, extra_blur=0.08 * g)
    cal = effective_blur_factor(m1, n1, m2, n2, m3, n3, 4e-16, frame_interval_s=DT, blur=R,
                                log_peak_ratio=y)
    assert cal.delta == pytest.approx(0.08, abs=1e-9)
    np.testing.assert_allclose(cal.per_track, R + 0.08 * g, rtol=1e-9)


def test_no_calibration_without_enough_pairs_or_linear_growth():
    m1, n1, m2, n2, m3, n3 = _moments(4.5e-12, 4e-16, extra_blur=0.02, n=5, steps=20)
    assert n3.sum() < MIN_LAG3_PAIRS
    few = effective_blur_factor(m1, n1, m2, n2, m3, n3, 4e-16, frame_interval_s=DT, blur=R)
    assert few.blur_factor == R and few.reference_diffusion_m2_per_s is None
    # Wrong links between crowded particles: the 3-frame displacements grow
    # faster than linearly; the reference would be wrong, so nothing changes.
    m1, n1, m2, n2, m3, n3 = _moments(4.5e-12, 4e-16, extra_blur=0.02)
    bent = effective_blur_factor(m1, n1, m2, n2, m3 * 1.3, n3, 4e-16, frame_interval_s=DT,
                                 blur=R)
    assert not bent.linear and bent.blur_factor == R


def test_clean_simulated_tracks_need_no_correction(mono100, acq):
    # Track-level simulator: blur but no detection selection of exposures,
    # so the calibration must leave the nominal factor (within its noise).
    # (the calibration belongs to the CVE-based "intensity" noise model)
    _, td = mono100
    dist = size_distribution(td, acq, localization_model="intensity")
    assert dist.selection is not None and dist.selection.linear
    assert dist.selection.blur_factor == pytest.approx(td.blur_factor, abs=0.01)
    # and the size stays where it was without calibration (ideal tracks)
    plain = size_distribution(td, acq, localization_model="intensity",
                              selection_calibration=False)
    assert dist.d50_nm == pytest.approx(plain.d50_nm, rel=0.02)
    assert dist.d50_nm == pytest.approx(100.0, rel=0.02)
