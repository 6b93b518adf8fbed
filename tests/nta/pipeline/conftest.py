"""Shared simulated captures for the NTA pipeline tests (small, seeded)."""

from __future__ import annotations

import pytest

from exotrace.nta import Acquisition
from exotrace.nta.simulate import simulate, simulate_video

# 192x160 px, 60 frames: large enough for a few hundred track steps, small
# enough that simulating it takes about a second.
SMALL = dict(diameters_nm=(100.0,), particles_per_ml=4e9, n_frames=60, width_px=192,
             height_px=160, exposure_ms=30.0, fps=25.0, pixel_size_nm=140.0,
             temperature_c=22.0, drift_px_per_frame=(3.0, -1.0), seed=11)


@pytest.fixture(scope="session")
def small_acquisition() -> Acquisition:
    return Acquisition(pixel_size_nm=140.0, fps=25.0, temperature_c=22.0, exposure_ms=30.0)


@pytest.fixture(scope="session")
def small_video():
    return simulate_video(**SMALL)


@pytest.fixture(scope="session")
def small_avi(tmp_path_factory):
    path = tmp_path_factory.mktemp("nta") / "small.avi"
    truth = simulate(path, **SMALL)
    return path, truth


@pytest.fixture(scope="session")
def field_video():
    """100 nm EVs on 320 x 240 px at 1.2e9/mL: ~27 spots per frame, the spot
    density of a 640 x 480 capture at 1e9/mL (the SMALL field holds 3x more)."""
    return simulate_video(**{**SMALL, "particles_per_ml": 1.2e9, "width_px": 320,
                             "height_px": 240, "n_frames": 80})
