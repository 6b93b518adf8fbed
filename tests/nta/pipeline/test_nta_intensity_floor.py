"""The detection threshold in intensity units, from real detector output."""

from __future__ import annotations

import math

import numpy as np

from exotrace.nta import Acquisition, track_frames
from exotrace.nta.diffusion import track_diffusion
from exotrace.nta.simulate import simulate_video

ACQ = Acquisition(pixel_size_nm=140.0, fps=25.0, temperature_c=22.0, exposure_ms=30.0)


def _tracks(refractive_index, particles_per_ml):
    v = simulate_video(diameters_nm=(100.0,), particles_per_ml=particles_per_ml, n_frames=60,
                       width_px=384, height_px=320, exposure_ms=30.0,
                       drift_px_per_frame=(3.5, -1.0), refractive_index=refractive_index,
                       seed=1, bit_depth=12)
    return track_frames(v.frames, ACQ)


def test_beads_and_evs_seen_by_one_camera_share_the_intensity_threshold():
    # The bead calibration's depth and the sample's rest on u = ln(I0 / T) with
    # T the detection threshold in intensity units. Both videos are detected
    # against the same noise with spots of the same shape (100 nm: same blur),
    # so T must come out the same although polystyrene is ~19x brighter.
    # The dimmest spots' intensities (the former estimate) differed by
    # 0.25 ln units on this pair (-0.13 to +0.66 over three seeds) and put
    # concentrations 13 % low; the threshold mapped through the spots' own
    # intensity per unit of peak differs by 0.02.
    beads, evs = _tracks(1.59, 3e8), _tracks(1.39, 5e8)
    floor_b = track_diffusion(beads, ACQ).intensity_floor
    floor_e = track_diffusion(evs, ACQ).intensity_floor
    assert abs(math.log(floor_b / floor_e)) < 0.1
    # and it is the threshold the spots were detected against: almost no
    # unsaturated spot of either video lies far below it
    for t, floor in ((beads, floor_b), (evs, floor_e)):
        assert np.mean(t.intensity < 0.5 * floor) < 0.01
