"""Sizing on tracks from a simulated video (simulator -> detection -> linking -> drift -> EM)."""

from __future__ import annotations

import numpy as np
import pytest

from exotrace.nta import Acquisition, track_frames
from exotrace.nta.diffusion import track_diffusion
from exotrace.nta.simulate import simulate_video
from exotrace.nta.sizing import size_distribution

ACQ = Acquisition(pixel_size_nm=140.0, fps=25.0, temperature_c=22.0, exposure_ms=30.0)


@pytest.fixture(scope="module")
def video_tracks():
    # 100 nm EVs, the conditions (drift 3.5 px/frame, 30 ms shutter at
    # 25 fps) on a small field so the test runs in a few seconds. Seed 5 gives
    # a few tracks with linking jumps and gaps: without the jump split and the
    # gap steps this video shows a spurious ~57 nm peak and D90/D10 ~2.2.
    v = simulate_video(diameters_nm=(100.0,), particles_per_ml=1.5e9, n_frames=150,
                       width_px=320, height_px=240, fps=25.0, exposure_ms=30.0,
                       drift_px_per_frame=(3.5, -1.0), refractive_index=1.39, seed=5)
    return track_frames(v.frames, ACQ)


def test_monodisperse_video_gives_one_peak_near_truth(video_tracks):
    td = track_diffusion(video_tracks, ACQ)
    assert np.any(td.mean_lag > 1.0)  # the linker's memory bridged some gaps
    dist = size_distribution(td, ACQ)
    assert len(dist.peaks_nm) == 1
    # Tolerance: on this small field (short tracks) detection under blur and
    # linking lose the largest steps and currently bias sizes up by 8-13 %
    # (imaging stage; see docs/benchmarks.md). 20 % still catches a
    # regression to the spurious small-size peaks (D50 ~115 nm with a 57 nm peak).
    assert dist.d50_nm == pytest.approx(100.0, rel=0.2)
    assert dist.peaks_nm[0] == pytest.approx(100.0, rel=0.2)
    assert dist.d90_nm / dist.d10_nm < 1.8
