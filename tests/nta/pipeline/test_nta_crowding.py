"""The crowded-field warning: other spots within a fast particle's linking radius."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from exotrace.nta import Acquisition, analyze_tracks
from exotrace.nta._pipeline import CROWDING_LIMIT, crowding_index
from exotrace.nta._types import Tracks
from exotrace.nta.diffusion import track_diffusion

ACQ = Acquisition(pixel_size_nm=140.0, fps=25.0, temperature_c=22.0, exposure_ms=30.0)
STEP_SD_PX = 3.0  # per axis
SHAPE = (400, 600)


def _walks(n_tracks=300, n_points=40, seed=2):
    rng = np.random.default_rng(seed)
    tid = np.repeat(np.arange(n_tracks), n_points)
    fr = np.tile(np.arange(n_points), n_tracks)
    x = np.cumsum(rng.normal(0, STEP_SD_PX, tid.size)) + rng.uniform(50, 550, n_tracks)[tid]
    y = np.cumsum(rng.normal(0, STEP_SD_PX, tid.size)) + rng.uniform(50, 350, n_tracks)[tid]
    inten = rng.uniform(500.0, 5000.0, tid.size)
    return Tracks(track_id=tid, frame=fr, x_px=x, y_px=y, intensity=inten, n_frames=n_points,
                  frame_shape=SHAPE, source="walks")


def _with_spots(tracks, spots_per_frame):
    meta = dict(tracks.metadata, n_detections=int(spots_per_frame * tracks.n_frames))
    return dataclasses.replace(tracks, metadata=meta)


def test_crowding_index_is_density_times_the_linking_disc():
    t = _with_spots(_walks(), 150)
    lam = crowding_index(t, track_diffusion(t, ACQ), ACQ)
    # 150 spots on 400 x 600 px, disc of radius 6 sigma. A track's mean squared
    # step per axis averages 78 squared Gaussian steps (39 in x and y): sigma^2
    # times a gamma of shape 39 and mean 1, whose 80th percentile is 1.133.
    # Over 300 tracks the sample percentile's SE is ~1 %: 4 % tolerance.
    from scipy.stats import gamma

    factor = gamma.ppf(0.8, 39, scale=1 / 39)
    expected = 150 / (SHAPE[0] * SHAPE[1]) * np.pi * 36 * STEP_SD_PX**2 * factor
    assert lam == pytest.approx(expected, rel=0.04)


def test_a_crowded_field_is_reported_and_a_dilute_one_is_not():
    walks = _walks()
    per_spot = crowding_index(_with_spots(walks, 1), track_diffusion(walks, ACQ), ACQ)
    dilute = _with_spots(walks, 0.6 * CROWDING_LIMIT / per_spot)
    crowded = _with_spots(walks, 1.6 * CROWDING_LIMIT / per_spot)
    quiet = analyze_tracks([dilute], ACQ)
    loud = analyze_tracks([crowded], ACQ)
    assert not any("crowded" in w for w in quiet.warnings)
    hits = [w for w in loud.warnings if "crowded field" in w]
    assert len(hits) == 1 and hits[0].startswith("walks: ")
    assert any("crowded field" in w for w in loud.videos[0].warnings)
    # the advice: the spots per frame that would bring the field to the limit
    advised = int(hits[0].rsplit("fewer than ~", 1)[1].split()[0])
    assert advised == pytest.approx(CROWDING_LIMIT / per_spot, rel=0.02)


def test_no_index_without_a_frame_size():
    t = dataclasses.replace(_walks(), frame_shape=(0, 0))
    assert crowding_index(t, track_diffusion(t, ACQ), ACQ) is None
