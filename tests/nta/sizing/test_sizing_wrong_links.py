"""Wrong links in the size likelihood, and the per-frame noise from lag moments."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from exotrace.nta._sizing_em import gamma_log_likelihood
from exotrace.nta._sizing_noise import MIN_LAG_NOISE_PAIRS, lag_noise_by_brightness
from exotrace.nta._sizing_outliers import step_mixture_log_likelihood, wrong_link_rate
from exotrace.nta._sizing_sim import simulate_sample
from exotrace.nta.diffusion import track_diffusion
from exotrace.nta.sizing import size_distribution

DT = 0.04
R = 0.125
PX = 140e-9
DISC_R2 = (31.0 * PX) ** 2


def test_without_wrong_links_the_step_law_is_the_gamma_law():
    rng = np.random.default_rng(0)
    grid_d = np.geomspace(5e-13, 3e-11, 120)
    k, s2 = 12, 3e-15
    v_true = 2 * 6e-12 * DT * (1 - 2 * R) + 2 * s2
    steps = rng.exponential(2 * v_true, k)  # squared 2-D steps
    dd = grid_d[None, :] * DT
    v = 2 * dd * (1 - 2 * R) + 2 * s2
    c = 2 * R * dd - s2
    temper = 1.0 / (1.0 + 2 * (k - 1) * (c / v) ** 2 / k)
    mix = step_mixture_log_likelihood(steps, np.zeros(k, np.int64), v, temper, rate=1e-30,
                                      disc_r2_m2=DISC_R2)[0]
    gamma = gamma_log_likelihood(np.array([steps.mean() / 2]), np.array([k]), np.array([k - 1]),
                                 grid_d, frame_interval_s=DT, blur=R,
                                 localization_var_m2=s2)[0]
    # the same function of the grid up to a constant per track, wherever the
    # track is not already e^-40 less likely than at its best size (beyond,
    # even a rate of 1e-30 floors the step law: a step ~12 sigmas long is
    # likelier a wrong link than Brownian)
    rel_gamma = gamma - gamma.max()
    near = rel_gamma > -40
    assert near.sum() > 30
    np.testing.assert_allclose((mix - mix.max())[near], rel_gamma[near], atol=1e-6)


def _jumps(tracks, rate, rng, *, r_min_px=0.0, r_max_px=25.0):
    """Make a fraction ``rate`` of the steps jumps to another place (uniform in
    the annulus r_min..r_max px), the track continuing from there."""
    tid = tracks.track_id
    same = tid[1:] == tid[:-1]
    jump = same & (rng.random(len(same)) < rate)
    r = np.sqrt(rng.uniform(r_min_px**2, r_max_px**2, len(same)))
    angle = rng.uniform(0, 2 * np.pi, len(same))
    jx = np.where(jump, r * np.cos(angle), 0.0)
    jy = np.where(jump, r * np.sin(angle), 0.0)
    # offsets accumulate along each track from the jump on
    start = np.r_[True, ~same]
    cx, cy = np.cumsum(np.r_[0.0, jx]), np.cumsum(np.r_[0.0, jy])
    first = np.maximum.accumulate(np.where(start, np.arange(len(tid)), 0))
    shift_x, shift_y = cx - cx[first], cy - cy[first]
    return dataclasses.replace(tracks, x_px=tracks.x_px + shift_x,
                               y_px=tracks.y_px + shift_y), int(jump.sum()), int(same.sum())


@pytest.fixture(scope="module")
def tracks70(acq):
    return simulate_sample(acq, diameters_nm=(70.0,), fractions=(1.0,), particles_per_ml=1.5e9,
                           n_frames=200, frame_shape=(600, 800), seed=5).tracks


def test_the_wrong_link_rate_is_measured(tracks70, acq):
    rng = np.random.default_rng(2)
    # jumps of 15-25 px (a neighbour in a 70 nm EV's linking disc; its own
    # steps are ~4.5 px per axis): every one is recognisable
    bad, n_jumps, n_steps = _jumps(tracks70, 0.03, rng, r_min_px=15.0)
    td = track_diffusion(bad, acq, jump_alpha=None)
    rate = wrong_link_rate(td.step1_sq_m2, td.step1_row, len(td), disc_r2_m2=DISC_R2)
    # a few thousand steps and the longest Brownian steps sharing the tail:
    # within 25 % of the planted rate
    assert rate == pytest.approx(n_jumps / n_steps, rel=0.25)
    clean = track_diffusion(tracks70, acq, jump_alpha=None)
    assert wrong_link_rate(clean.step1_sq_m2, clean.step1_row, len(clean),
                           disc_r2_m2=DISC_R2) < 0.005


def test_wrong_links_no_longer_make_a_spurious_small_peak(tracks70, acq):
    rng = np.random.default_rng(1)
    clean = size_distribution(track_diffusion(tracks70, acq), acq)
    plain = size_distribution(track_diffusion(tracks70, acq), acq, wrong_links=False)
    # clean tracks: the step law changes nothing
    assert clean.d50_nm == pytest.approx(plain.d50_nm, rel=0.005)
    bad, _, _ = _jumps(tracks70, 0.04, rng)
    td = track_diffusion(bad, acq)
    robust = size_distribution(td, acq)
    naive = size_distribution(td, acq, wrong_links=False)
    below = lambda d: float(d.number_fraction[d.diameter_nm < 45].sum())  # noqa: E731
    # 4 % of the steps jump up to 25 px: the mean-step likelihood puts ~5 % of
    # the particles below 45 nm and D50 8 % low; the step law keeps D50
    # within 5 % of the clean one (seed 1: +2.3 %) and nothing below 45 nm
    assert below(naive) > 0.03
    assert below(robust) < 0.005
    assert robust.d50_nm == pytest.approx(clean.d50_nm, rel=0.05)
    assert robust.wrong_link_rate > 0.01


def _lag_moments(d, y, a, c, n=600, steps=60, lag=2):
    """Exact per-track MSD(1), MSD(lag) for diffusion d and per-frame noise a + c exp(-y)."""
    s2 = a + c * np.exp(-np.maximum(y, 0.0))
    m1 = 2 * d * DT * (1 - 2 * R) + 2 * s2
    m_lag = m1 + 2 * (lag - 1) * d * DT
    k = np.full(n, steps)
    return m1, k, m_lag, k - lag + 1


@pytest.mark.parametrize("lag", [2, 3])
def test_the_noise_law_in_brightness_is_recovered_from_lag_moments(lag):
    rng = np.random.default_rng(4)
    y = rng.uniform(0.0, 4.0, 600)
    d = rng.uniform(2e-12, 9e-12, 600)  # polydisperse: the law must not care
    a, c = 4e-16, 3e-14
    m1, n1, m_lag, n_lag = _lag_moments(d, y, a, c, lag=lag)
    noise = lag_noise_by_brightness(m1, n1, m_lag, n_lag, y, frame_interval_s=DT, blur=R,
                                    class_width=0.5, lag=lag)
    assert noise.law == pytest.approx((a, c), rel=1e-9)
    np.testing.assert_allclose(noise.row_var_m2, a + c * np.exp(-y), rtol=1e-9)
    # a track of unknown brightness gets the pooled value
    rows = np.r_[y, np.nan]
    pooled = lag_noise_by_brightness(m1, n1, m_lag, n_lag, rows, frame_interval_s=DT, blur=R,
                                     class_width=0.5, lag=lag)
    assert pooled.row_var_m2[-1] == pytest.approx(pooled.global_var_m2)


def test_no_lag_noise_without_enough_pairs():
    m1, n1, m2, n2 = _lag_moments(np.full(5, 4e-12), np.ones(5), 4e-16, 3e-14, n=5, steps=20)
    assert n2.sum() < MIN_LAG_NOISE_PAIRS
    assert lag_noise_by_brightness(m1, n1, m2, n2, np.ones(5), frame_interval_s=DT, blur=R,
                                   class_width=0.5) is None


def test_an_unknown_exposure_is_measured_from_the_brightest_tracks(mono100, acq):
    from exotrace.nta import Acquisition

    sample, known = mono100
    unknown = Acquisition(pixel_size_nm=acq.pixel_size_nm, fps=acq.fps,
                          temperature_c=acq.temperature_c)
    td = track_diffusion(sample.tracks, unknown)
    assert td.blur_factor == 0.0
    with_exposure = size_distribution(known, acq)
    measured = size_distribution(td, unknown)
    # 30 ms at 25 fps is R = 0.125; the bright tracks' localization error
    # (0.3 px at the threshold, falling with brightness) is ~5 % of their
    # blur term: R within 10 %, and the sizes as with the shutter known
    note = [w for w in measured.warnings if "exposure time unknown" in w]
    assert len(note) == 1 and "ms shutter" in note[0]
    shutter_ms = float(note[0].split("as from a ")[1].split(" ms")[0])
    assert shutter_ms == pytest.approx(30.0, rel=0.10)
    assert measured.d50_nm == pytest.approx(with_exposure.d50_nm, rel=0.01)
    # with the blur left out the steps look short and sizes come out large
    # (D by 1 - 2R = 0.75 at most)
    ignored = size_distribution(td, unknown, localization_model="global",
                                selection_calibration=False)
    assert ignored.d50_nm > 1.1 * with_exposure.d50_nm
    # an explicit exposure of 0 (no blur, e.g. strobed light) is taken as given
    strobed = Acquisition(pixel_size_nm=acq.pixel_size_nm, fps=acq.fps,
                          temperature_c=acq.temperature_c, exposure_ms=0.0)
    plain = size_distribution(track_diffusion(sample.tracks, strobed), strobed)
    assert not any("exposure time unknown" in w for w in plain.warnings)
