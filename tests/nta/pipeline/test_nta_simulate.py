"""Simulator: ground truth matches its parameters (counts, sizes, brightness, motion)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from exotrace.errors import InvalidInput
from exotrace.nta.simulate import (
    POLYSTYRENE_INDEX,
    SimulationSettings,
    rayleigh_contrast,
    simulate,
    simulate_video,
)
from exotrace.physics import diffusion_m2_per_s_from_diameter, water_viscosity_pa_s


def unwrap(step, span):
    return np.mod(step + span / 2, span) - span / 2


def test_same_seed_same_video_other_seed_other_video():
    kw = dict(n_frames=5, width_px=40, height_px=40, particles_per_ml=5e9)
    a = simulate_video(seed=1, **kw)
    b = simulate_video(seed=1, **kw)
    c = simulate_video(seed=2, **kw)
    np.testing.assert_array_equal(a.frames, b.frames)
    assert not np.array_equal(a.frames, c.frames)


def test_particle_count_and_fractions_follow_concentration():
    v = simulate_video(diameters_nm=(70, 140), fractions=(0.6, 0.4), particles_per_ml=2e10,
                       n_frames=1, width_px=128, height_px=128, seed=3)
    t = v.truth
    expected = 2e10 * t["volume_ml"]
    # Poisson count: within 4 standard deviations
    assert abs(t["n_particles"] - expected) < 4 * np.sqrt(expected)
    d = np.asarray(t["diameter_nm"])
    frac70 = np.mean(d == 70.0)
    # binomial with n ~ 1700: sd ~ 0.012
    assert frac70 == pytest.approx(0.6, abs=0.05)
    assert set(np.unique(d)) == {70.0, 140.0}


def test_rayleigh_contrast_matches_the_ev_polystyrene_rule_of_thumb():
    # DOMAIN.md: a 100 nm EV (n ~ 1.39) scatters about as much as a 61 nm
    # polystyrene bead: (d^6 ratio) 100^6 K(1.39) = d_ps^6 K(1.59).
    ratio = rayleigh_contrast(1.39) / rayleigh_contrast(POLYSTYRENE_INDEX)
    d_ps = 100 * ratio ** (1 / 6)
    assert d_ps == pytest.approx(61, abs=1.5)
    assert rayleigh_contrast(1.333) == 0.0


def test_brightness_scales_with_d6_and_index(tmp_path):
    # Static bright particles at the sheet centre: compare summed signal.
    kw = dict(n_frames=1, width_px=64, height_px=64, particles_per_ml=0.0, seed=1,
              background_counts=0.0, read_noise_counts=0.0, offset_counts=0.0, bit_depth=12)
    # No particles: the frame is exactly zero (no background, no noise)
    assert simulate_video(**kw).frames.max() == 0
    s = SimulationSettings(diameters_nm=(100,), **kw)
    s2 = SimulationSettings(diameters_nm=(100,), refractive_index=1.59, **kw)
    assert s.counts_100nm_polystyrene == s2.counts_100nm_polystyrene


def test_truth_positions_move_by_brownian_motion_plus_drift():
    v = simulate_video(diameters_nm=(100,), particles_per_ml=1e11, n_frames=20, width_px=64,
                       height_px=64, drift_px_per_frame=(2.0, -1.0), exposure_ms=0.0,
                       temperature_c=22.0, seed=5)
    span = 64 + 2 * v.truth["margin_px"]
    # undo the periodic wrap (minimal image); dropping wrapped steps instead
    # would drop the large steps that cross the boundary more often
    dx = unwrap(np.diff(v.x_px.astype(float), axis=0), span)
    dy = unwrap(np.diff(v.y_px.astype(float), axis=0), span)
    d = diffusion_m2_per_s_from_diameter(100, temperature_c=22, viscosity_pa_s=water_viscosity_pa_s(22))
    var_px2 = 2 * d * 0.04 / (140e-9) ** 2
    # ~15k steps: the mean is known to ~0.04 px, the variance to ~1.2 % (sd)
    assert dx.mean() == pytest.approx(2.0, abs=0.15)
    assert dy.mean() == pytest.approx(-1.0, abs=0.15)
    assert dx.var() == pytest.approx(var_px2, rel=0.06)
    assert dy.var() == pytest.approx(var_px2, rel=0.06)


def test_blur_reduces_the_step_variance_as_the_cve_model_says():
    # Exposure-averaged positions: <dx^2> = 2 D dt (1 - 2R), R = t_exp / (6 dt)
    v = simulate_video(diameters_nm=(100,), particles_per_ml=1e11, n_frames=20, width_px=64,
                       height_px=64, exposure_ms=30.0, substeps=16, seed=6)
    dx = unwrap(np.diff(v.x_px.astype(float), axis=0).ravel(), 64 + 2 * v.truth["margin_px"])
    d = diffusion_m2_per_s_from_diameter(100, temperature_c=22, viscosity_pa_s=water_viscosity_pa_s(22))
    r = 30.0 / (6 * 40.0)
    expected = 2 * d * 0.04 * (1 - 2 * r) / (140e-9) ** 2
    # 16 sub-steps approximate the continuous average to < 1 %; ~15k steps
    assert dx.var() == pytest.approx(expected, rel=0.06)


def test_bit_depth_and_saturation():
    v8 = simulate_video(n_frames=3, width_px=48, height_px=48, particles_per_ml=2e10,
                        counts_100nm_polystyrene=1e7, seed=2)
    assert v8.frames.dtype == np.uint8 and v8.frames.max() == 255
    v12 = simulate_video(n_frames=3, width_px=48, height_px=48, particles_per_ml=2e10,
                         counts_100nm_polystyrene=1e7, bit_depth=12, seed=2)
    assert v12.frames.dtype == np.uint16 and v12.frames.max() == 4095


def test_written_truth_file_holds_every_parameter(tmp_path):
    out = simulate(tmp_path / "s.avi", n_frames=4, width_px=32, height_px=32, seed=9,
                   diameters_nm=(70, 140), fractions=(3, 1))
    truth = json.loads((tmp_path / "s.json").read_text())
    assert truth["settings"]["fractions"] == [0.75, 0.25]
    assert truth["settings"]["seed"] == 9
    assert truth["particles_per_ml"] == 1e9
    assert len(truth["diameter_nm"]) == truth["n_particles"]
    assert out["video"].endswith("s.avi")
    assert "particles_in_view_per_frame" in truth


@pytest.mark.parametrize("kwargs, match", [
    ({"diameters_nm": (70, 140), "fractions": (1.0,)}, "fractions"),
    ({"diameters_nm": (-5,)}, "diameters"),
    ({"fps": 0}, "fps"),
    ({"exposure_ms": 50.0, "fps": 25.0}, "exceeds the frame interval"),
    ({"temperature_c": -5}, "temperature"),
    ({"bit_depth": 10}, "bit-depth"),
    ({"n_frames": 0}, "n-frames"),
    ({"particles_per_ml": -1}, "particles-per-ml"),
])
def test_nonsense_settings_are_rejected(kwargs, match):
    with pytest.raises(InvalidInput, match=match):
        SimulationSettings(**kwargs)


def test_unknown_keyword_is_an_input_error():
    with pytest.raises(InvalidInput, match="unknown simulation setting"):
        simulate_video(n_frame=3)
