"""The prominence peak finder of the size statistics is scipy's find_peaks."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.signal import find_peaks as scipy_find_peaks

from exotrace.nta._peaks import find_peaks

# quantized values: plateaus and equal neighbours (the hard cases) are common
_profiles = st.lists(st.integers(0, 6), min_size=0, max_size=60).map(
    lambda v: np.array(v, dtype=np.float64) / 2.0)


@settings(max_examples=400, deadline=None)
@given(_profiles, st.sampled_from([0.0, 0.5, 1.0, 2.5]))
def test_same_peaks_and_prominences_as_scipy(x, prominence):
    idx, props = find_peaks(x, prominence=prominence)
    ref_idx, ref_props = scipy_find_peaks(x, prominence=prominence)
    np.testing.assert_array_equal(idx, ref_idx)
    np.testing.assert_array_equal(props["prominences"], ref_props["prominences"])


def test_smoothed_size_profile():
    # two lognormal modes on a log grid, as the size statistics see them
    grid = np.linspace(np.log(30), np.log(1000), 300)
    x = np.exp(-0.5 * ((grid - np.log(70)) / 0.1) ** 2) + 0.4 * np.exp(
        -0.5 * ((grid - np.log(150)) / 0.1) ** 2)
    idx, _ = find_peaks(np.concatenate(([0.0], x, [0.0])), prominence=0.05)
    assert [round(float(np.exp(grid[i - 1]))) for i in idx] == [70, 150]
    assert idx.tolist() == scipy_find_peaks(np.concatenate(([0.0], x, [0.0])),
                                            prominence=0.05)[0].tolist()
