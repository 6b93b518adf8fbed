"""Per-track diffusion: CVE against ground truth, MSD bias, error bars, gaps, bad input."""

from __future__ import annotations

import numpy as np
import pytest

from exotrace.errors import InsufficientData, InvalidInput
from exotrace.nta._sizing_sim import simulate_sample
from exotrace.nta._types import Acquisition, Tracks
from exotrace.nta.diffusion import blur_factor, cve_variance, track_diffusion
from exotrace.physics import diffusion_m2_per_s_from_diameter, effective_viscosity_pa_s

ACQ = Acquisition(pixel_size_nm=140.0, fps=25.0, temperature_c=22.0, exposure_ms=30.0)

D100 = diffusion_m2_per_s_from_diameter(100.0, temperature_c=22.0,
                                        viscosity_pa_s=effective_viscosity_pa_s(22.0))
SIGMA_PX = 1.0  # 140 nm localization noise: large, so the MSD bias from noise is visible


@pytest.fixture(scope="module")
def noisy100():
    # Fixed (brightness-independent) noise so the expected MSD bias is exact.
    sample = simulate_sample(ACQ, diameters_nm=(100.0,), particles_per_ml=1e9, n_frames=300,
                             frame_shape=(800, 1000), localization_px=SIGMA_PX,
                             fixed_localization=True, seed=7)
    return sample


def test_cve_is_unbiased_under_blur_and_noise(noisy100):
    td = track_diffusion(noisy100.tracks, ACQ, method="cve")
    assert len(td) > 800
    ratio = np.average(td.diffusion_m2_per_s, weights=td.n_steps) / D100
    # ~50k steps: the statistical error of the pooled ratio is ~1 %; 3 % allows 3 SE.
    assert ratio == pytest.approx(1.0, abs=0.03)
    sigma_nm = np.sqrt(np.average(td.localization_var_m2, weights=td.n_steps)) * 1e9
    # sigma^2 is the small difference of two large terms (steps ~600 nm); 15 % is ~3 SE.
    assert sigma_nm == pytest.approx(SIGMA_PX * 140.0, rel=0.15)


def test_msd_is_biased_by_blur_and_noise_as_expected(noisy100):
    td = track_diffusion(noisy100.tracks, ACQ, method="msd")
    r = blur_factor(ACQ)
    sigma2 = (SIGMA_PX * 140e-9) ** 2
    # <dx^2>/(2 dt) = D (1 - 2R) + sigma^2 / dt
    expected = (1 - 2 * r) + sigma2 / (D100 * ACQ.frame_interval_s)
    assert expected < 0.9  # the bias is real: more than 10 % low here
    ratio = np.average(td.diffusion_m2_per_s, weights=td.n_steps) / D100
    assert ratio == pytest.approx(expected, abs=0.03)  # same statistics as the CVE test
    assert np.all(np.isnan(td.localization_var_m2))


def test_cve_variance_matches_spread_across_tracks(noisy100):
    td = track_diffusion(noisy100.tracks, ACQ)
    long = td.n_steps >= 30
    assert long.sum() > 200
    empirical = np.var(td.diffusion_m2_per_s[long] - D100)
    s2 = (SIGMA_PX * 140e-9) ** 2
    at_truth = np.mean(cve_variance(D100, s2, td.n_steps[long],
                                    frame_interval_s=ACQ.frame_interval_s, blur=td.blur_factor))
    # The variance of a variance estimated from ~300 tracks has ~8 % relative SE;
    # 20 % allows for that and for the plug-in (estimated D, sigma) version below.
    assert empirical / at_truth == pytest.approx(1.0, abs=0.2)
    assert empirical / np.mean(td.diffusion_var[long]) == pytest.approx(1.0, abs=0.2)


def _manual_tracks(xs, ys, frames, ids, intensity=None, n_frames=50):
    n = len(xs)
    return Tracks(track_id=np.asarray(ids, np.int64), frame=np.asarray(frames, np.int64),
                  x_px=np.asarray(xs, float), y_px=np.asarray(ys, float),
                  intensity=np.ones(n) if intensity is None else np.asarray(intensity, float),
                  n_frames=n_frames, frame_shape=(100, 100), source="manual.csv")


@pytest.mark.parametrize(("gap", "max_lag"), [(1, 1), (4, 3)])
def test_gaps_beyond_max_lag_skip_steps_and_pairs(gap, max_lag):
    acq = Acquisition(pixel_size_nm=100.0, fps=10.0, temperature_c=20.0)
    rng = np.random.default_rng(3)
    frames = np.r_[np.arange(0, 8), np.arange(8 + gap, 16 + gap)]
    x = np.cumsum(rng.standard_normal(frames.size))
    y = np.cumsum(rng.standard_normal(frames.size))
    x[8:] += 500.0  # an enormous jump across the gap must not enter any step
    td = track_diffusion(_manual_tracks(x, y, frames, np.zeros(frames.size), n_frames=60), acq,
                         max_lag_frames=max_lag)
    assert td.n_steps[0] == 14 and td.n_pairs[0] == 12 and td.n_points[0] == 16
    assert td.mean_lag[0] == 1.0
    steps = np.r_[np.diff(x[:8]), np.diff(x[8:])], np.r_[np.diff(y[:8]), np.diff(y[8:])]
    m2 = (np.sum(steps[0] ** 2) + np.sum(steps[1] ** 2)) / 28 * (100e-9) ** 2
    assert td.mean_step_sq_m2[0] == pytest.approx(m2, rel=1e-12)


def test_steps_across_gaps_keep_the_cve_unbiased(noisy100):
    # Drop 15 % of the positions at random: tracks then bridge one- and
    # two-frame gaps (as the linker's memory does) and the lag-aware moments
    # must still give the true D and sigma.
    tr = noisy100.tracks
    keep = np.random.default_rng(11).random(len(tr)) > 0.15
    holed = Tracks(tr.track_id[keep], tr.frame[keep], tr.x_px[keep], tr.y_px[keep],
                   tr.intensity[keep], tr.n_frames, tr.frame_shape)
    td = track_diffusion(holed, ACQ)
    consecutive = track_diffusion(holed, ACQ, max_lag_frames=1)
    assert np.any(td.mean_lag > 1.0)
    assert td.n_steps.sum() > 1.1 * consecutive.n_steps.sum()
    ratio = np.average(td.diffusion_m2_per_s, weights=td.n_steps) / D100
    # ~40k steps: pooled ratio SE ~1 %; 3 % is 3 SE (as the gap-free test above).
    assert ratio == pytest.approx(1.0, abs=0.03)
    sigma_nm = np.sqrt(np.average(td.localization_var_m2, weights=td.n_steps)) * 1e9
    assert sigma_nm == pytest.approx(SIGMA_PX * 140.0, rel=0.15)


def test_a_linking_jump_splits_the_track():
    acq = Acquisition(pixel_size_nm=100.0, fps=10.0, temperature_c=20.0)
    rng = np.random.default_rng(5)
    n = 40
    x = np.cumsum(rng.standard_normal(n))
    y = np.cumsum(rng.standard_normal(n))
    x[20:] += 25.0  # the track jumps to another particle 25 sigma away
    tracks = _manual_tracks(x, y, np.arange(n), np.full(n, 3), n_frames=n)
    split = track_diffusion(tracks, acq)
    kept = track_diffusion(tracks, acq, jump_alpha=None)
    assert len(split) == 2 and np.all(split.track_id == 3)  # both pieces keep the id
    assert split.n_steps.sum() == n - 2 and kept.n_steps[0] == n - 1
    # Unit steps of 100 nm at 10 fps: D = 1e-14 m^2/s per axis. The jump makes the
    # unsplit track ~8x too fast; the pieces (~19 steps each) are within ~3 SE.
    truth = (100e-9) ** 2 / (2 * 0.1)
    assert kept.diffusion_m2_per_s[0] > 4 * truth
    np.testing.assert_allclose(split.diffusion_m2_per_s, truth, rtol=0.7)
    with pytest.raises(InvalidInput, match="jump-alpha"):
        track_diffusion(tracks, acq, jump_alpha=1.5)
    with pytest.raises(InvalidInput, match="max-lag-frames"):
        track_diffusion(tracks, acq, max_lag_frames=0)


def test_unsorted_input_gives_the_same_result(mono100):
    sample, td = mono100
    tr = sample.tracks
    perm = np.random.default_rng(0).permutation(len(tr))
    shuffled = Tracks(tr.track_id[perm], tr.frame[perm], tr.x_px[perm], tr.y_px[perm],
                      tr.intensity[perm], tr.n_frames, tr.frame_shape)
    td2 = track_diffusion(shuffled, ACQ)
    np.testing.assert_array_equal(td.track_id, td2.track_id)
    np.testing.assert_allclose(td.diffusion_m2_per_s, td2.diffusion_m2_per_s, rtol=1e-12)


def test_short_tracks_are_kept_aside(mono100):
    sample, td = mono100
    assert td.short is not None and len(td.short) > 0
    assert np.all(td.short.n_steps < 5) and np.all(td.short.n_steps >= 1)
    assert np.all(td.n_steps >= 5)
    # A track split at a linking jump may leave a long and a short piece with
    # the same id; without splitting, kept and short tracks are disjoint.
    td_whole = track_diffusion(sample.tracks, ACQ, jump_alpha=None)
    assert set(td_whole.track_id).isdisjoint(set(td_whole.short.track_id))
    both = set(td.track_id) & set(td.short.track_id)
    assert len(both) < 0.02 * len(td)  # false splits of genuine tracks are rare
    # Brightness summary: upper quartile lies within the track's range.
    assert np.all(td.intensity > 0) and np.all(np.isfinite(td.mean_log_intensity))


def test_bad_input_raises_clear_errors():
    acq = Acquisition(pixel_size_nm=100.0, fps=10.0, temperature_c=20.0)
    empty = _manual_tracks([], [], [], [])
    with pytest.raises(InsufficientData, match="no tracks"):
        track_diffusion(empty, acq)
    short = _manual_tracks([0, 1, 2], [0, 1, 2], [0, 1, 2], [1, 1, 1])
    with pytest.raises(InsufficientData, match="consecutive-frame steps"):
        track_diffusion(short, acq)
    with pytest.raises(InvalidInput, match="min-steps"):
        track_diffusion(short, acq, min_steps=1)
    with pytest.raises(InvalidInput, match="method"):
        track_diffusion(short, acq, method="fit")
    dup = _manual_tracks([0, 1, 2], [0, 1, 2], [0, 1, 1], [4, 4, 4])
    with pytest.raises(InvalidInput, match="track 4 has two positions in the same frame"):
        track_diffusion(dup, acq)
    nan = _manual_tracks([0, np.nan, 2], [0, 1, 2], [0, 1, 2], [9, 9, 9])
    with pytest.raises(InvalidInput, match="manual.csv: track 9 has non-finite"):
        track_diffusion(nan, acq)
    with pytest.raises(InvalidInput, match="fps"):
        Acquisition(pixel_size_nm=100.0, fps=0.0, temperature_c=20.0)


def test_combine_videos_pools_tracks(mono100):
    from exotrace.nta.diffusion import combine_diffusion

    _, td = mono100
    both = combine_diffusion([td, td])
    assert len(both) == 2 * len(td) and len(both.short) == 2 * len(td.short)
    first = np.concatenate((both.track_id[:len(td)], both.short.track_id[:len(td.short)]))
    second = np.concatenate((both.track_id[len(td):], both.short.track_id[len(td.short):]))
    # ids of different videos never collide (a track split at a linking jump
    # keeps its id twice within one video)
    assert not set(first) & set(second)
    np.testing.assert_array_equal(both.mean_lag[len(td):], td.mean_lag)
    np.testing.assert_array_equal(both.diffusion_m2_per_s[len(td):], td.diffusion_m2_per_s)
    other = track_diffusion(_manual_tracks(np.arange(8.0), np.zeros(8), np.arange(8),
                                           np.zeros(8)),
                            Acquisition(pixel_size_nm=100.0, fps=10.0, temperature_c=20.0))
    with pytest.raises(InvalidInput, match="frame rate, exposure and method"):
        combine_diffusion([td, other])
    with pytest.raises(InvalidInput, match="no diffusion"):
        combine_diffusion([])


def test_closed_form_f2_quantile_matches_scipy():
    # the wrong-link test's critical values: F(2, m) upper quantiles in closed form
    from scipy.stats import f as f_dist

    from exotrace.nta.diffusion import f2_upper_quantile

    p = np.array([1e-3 / 4, 1e-3 / 50, 0.05, 0.5])
    for m in (2, 6, 40, 598):
        np.testing.assert_allclose(f2_upper_quantile(p, m), f_dist.isf(p, 2, m), rtol=1e-10)
