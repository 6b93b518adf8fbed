"""Simulated samples shared by the sizing tests (track-level simulator, fixed seeds)."""

from __future__ import annotations

import pytest

from exotrace.nta._sizing_sim import simulate_sample
from exotrace.nta._types import Acquisition
from exotrace.nta.diffusion import track_diffusion

# NanoSight-like capture: 140 nm pixels, 25 fps, 30 ms shutter (75 % of the
# frame time, the blur condition), 22 C water.
ACQ = Acquisition(pixel_size_nm=140.0, fps=25.0, temperature_c=22.0, exposure_ms=30.0)
# A 800 x 1000 px field over 300 frames gives ~1000-2500 tracks: enough for the
# accuracy targets and a test suite that runs in seconds.
FIELD = (800, 1000)


@pytest.fixture(scope="session")
def acq() -> Acquisition:
    return ACQ


@pytest.fixture(scope="session")
def mono100():
    sample = simulate_sample(ACQ, diameters_nm=(100.0,), particles_per_ml=1e9, n_frames=300,
                             frame_shape=FIELD, seed=101)
    return sample, track_diffusion(sample.tracks, ACQ)


@pytest.fixture(scope="session")
def mix70_140():
    sample = simulate_sample(ACQ, diameters_nm=(70.0, 140.0), fractions=(0.6, 0.4),
                             particles_per_ml=1.5e9, n_frames=300, frame_shape=FIELD, seed=202)
    return sample, track_diffusion(sample.tracks, ACQ)
