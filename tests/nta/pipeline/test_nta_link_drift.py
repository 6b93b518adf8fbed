"""Linking and drift on synthetic detections with known identities."""

from __future__ import annotations

import math

import numpy as np
import pytest

from exotrace.errors import InvalidInput
from exotrace.nta import (
    Acquisition,
    Detections,
    Linker,
    Tracks,
    estimate_drift,
    link,
    pool_tracks,
    search_radius_px,
    subtract_drift,
)


def random_walks(n_particles=60, n_frames=50, *, step_sd=2.0, drift=(0.0, 0.0), size=400.0,
                 seed=0, drop=0.0):
    """Detections of random walkers (ids kept aside), optional missing frames."""
    rng = np.random.default_rng(seed)
    x0 = rng.uniform(0, size, n_particles)
    y0 = rng.uniform(0, size, n_particles)
    steps = rng.normal(0, step_sd, (n_frames, n_particles, 2))
    steps[0] = 0
    steps[1:, :, 0] += drift[0]
    steps[1:, :, 1] += drift[1]
    pos = np.cumsum(steps, axis=0)
    x = x0[None, :] + pos[:, :, 0]
    y = y0[None, :] + pos[:, :, 1]
    frame = np.repeat(np.arange(n_frames), n_particles)
    pid = np.tile(np.arange(n_particles), n_frames)
    keep = rng.random(frame.size) >= drop
    keep[frame == 0] = True
    det = Detections(frame=frame[keep], x_px=x.ravel()[keep], y_px=y.ravel()[keep],
                     intensity=np.full(keep.sum(), 100.0), n_frames=n_frames,
                     frame_shape=(int(size), int(size)))
    return det, pid[keep]


def purity(tracks: Tracks, det: Detections, pid: np.ndarray) -> float:
    """Fraction of consecutive track points that belong to the same particle."""
    key = {(int(f), float(x)): p for f, x, p in zip(det.frame, det.x_px, pid, strict=True)}
    ids = np.array([key[(int(f), float(x))] for f, x in zip(tracks.frame, tracks.x_px, strict=True)])
    same = tracks.track_id[1:] == tracks.track_id[:-1]
    return float(np.mean(ids[1:][same] == ids[:-1][same]))


def test_search_radius_from_stokes_einstein():
    acq = Acquisition(pixel_size_nm=140, fps=25, temperature_c=22)
    r = search_radius_px(acq, min_diameter_nm=30, n_sigma=4, localization_px=0)
    # D(30 nm, 22 C, 0.9544 cP) = kT / (3 pi eta d) = 1.509e-11 m^2/s;
    # per-axis step sd = sqrt(2 D / 25) = 1.099 um = 7.85 px; x 4 = 31.4 px
    assert r == pytest.approx(31.4, rel=0.01)
    # four times the diameter: half the radius
    r4 = search_radius_px(acq, min_diameter_nm=120, n_sigma=4, localization_px=0)
    assert r4 == pytest.approx(r / 2, rel=1e-9)
    with pytest.raises(InvalidInput):
        search_radius_px(acq, min_diameter_nm=0)


def test_linking_recovers_identities():
    det, pid = random_walks(seed=1)
    tracks = link(det, search_radius_px=4 * 2.0 * math.sqrt(2))
    assert tracks.n_tracks <= 70  # 60 particles; a few broken tracks at most
    # 60 walkers on 400x400 px with 2 px steps: close encounters (where two
    # walkers can swap identities, unavoidably) touch ~1 % of steps
    assert purity(tracks, det, pid) > 0.98
    # sorted by (track, frame)
    order = np.lexsort((tracks.frame, tracks.track_id))
    assert np.array_equal(order, np.arange(len(tracks)))


def test_memory_bridges_missing_frames():
    det, pid = random_walks(seed=2, drop=0.1)
    no_mem = link(det, search_radius_px=12.0, memory=0)
    mem = link(det, search_radius_px=12.0, memory=2)
    # dropping 10 % of points breaks tracks without memory
    assert mem.n_tracks < no_mem.n_tracks * 0.5
    gaps = np.diff(mem.frame)[mem.track_id[1:] == mem.track_id[:-1]]
    assert gaps.max() <= 3 and (gaps > 1).any()
    assert purity(mem, det, pid) > 0.98


def test_drift_prediction_allows_fast_flow_with_a_small_radius():
    det, pid = random_walks(seed=3, drift=(9.0, -4.0), step_sd=1.0, size=600)
    # without prediction the 9 px/frame flow exceeds a 6 px radius: no links
    blind = link(det, search_radius_px=6.0)
    assert blind.n_tracks > 0.9 * len(det) / 2
    drift = np.tile([9.0, -4.0], (50, 1))
    drift[0] = 0
    guided = link(det, search_radius_px=6.0, drift_px_per_frame=drift)
    assert guided.n_tracks <= 65
    assert purity(guided, det, pid) > 0.99


def test_weak_detections_only_continue_established_tracks():
    linker = Linker(5.0)
    # an established track (6 strong spots) and a young one (1 strong spot)
    for f in range(6):
        linker.add(f, [10.0 + 0.5 * f, 50.0 if f == 5 else 90.0],
                   [10.0, 50.0 if f == 5 else 90.0], [1, 1],
                   strong=[True, f == 5])
    # frame 6: weak spots next to both tracks and a lone weak spot
    linker.add(6, [13.5, 50.5, 80.0], [10.2, 50.2, 20.0], [1, 1, 1],
               strong=[False, False, False])
    t = linker.result(n_frames=7, frame_shape=(100, 100))
    # the established track took its weak spot; the young track (born on
    # frame 5) may not continue on a weak spot, which is dropped like the
    # lone one; the weak spot at (90, 90) of frames 0-4 started nothing
    assert t.n_tracks == 2
    assert len(t) == 8
    assert int(np.sum(t.frame == 6)) == 1
    with pytest.raises(InvalidInput):
        linker.add(6, [], [], [])


def test_estimate_and_subtract_drift():
    det, pid = random_walks(n_particles=80, seed=4, drift=(3.5, -1.25), step_sd=3.0)
    # Blind linking prefers short steps where two particles compete, which
    # biases the flow ~3 % low; re-linking with the flow predicted (as the
    # pipeline does) removes that (measured over 12 seeds: -0.01 +- 0.05 px).
    tracks = link(det, search_radius_px=20.0)
    tracks = link(det, search_radius_px=20.0, drift_px_per_frame=estimate_drift(tracks))
    drift = estimate_drift(tracks)
    assert drift.shape == (50, 2)
    assert np.all(drift[0] == 0)
    # compare with the flow these walkers actually made (their mean step);
    # the estimate scatters about it by 0.055 px (sd over 12 seeds): 3 sd
    true_x = np.diff(det.x_px.reshape(50, 80), axis=0).mean()
    true_y = np.diff(det.y_px.reshape(50, 80), axis=0).mean()
    assert drift[1:, 0].mean() == pytest.approx(true_x, abs=0.17)
    assert drift[1:, 1].mean() == pytest.approx(true_y, abs=0.17)
    corrected = subtract_drift(tracks, drift)
    assert corrected.drift_corrected
    assert corrected.drift_px_per_frame == pytest.approx((3.5, -1.25), abs=0.2)
    same = corrected.track_id[1:] == corrected.track_id[:-1]
    assert abs(np.diff(corrected.x_px)[same].mean()) < 0.15


def test_drift_is_robust_to_wrong_links():
    det, pid = random_walks(n_particles=80, seed=5, drift=(3.0, 0.0), step_sd=2.0)
    tracks = link(det, search_radius_px=15.0)
    tracks = link(det, search_radius_px=15.0, drift_px_per_frame=estimate_drift(tracks))
    rng = np.random.default_rng(0)
    x = tracks.x_px.copy()
    # a fifth of points replaced by positions unrelated to the flow
    bad = rng.random(len(x)) < 0.2
    x[bad] += rng.normal(0, 15, bad.sum())
    noisy = Tracks(tracks.track_id, tracks.frame, x, tracks.y_px, tracks.intensity,
                   tracks.n_frames, tracks.frame_shape)
    drift = estimate_drift(noisy)
    assert drift[1:, 0].mean() == pytest.approx(3.0, abs=0.15)


def test_no_steps_means_no_drift():
    t = Tracks(np.arange(3), np.arange(3), np.zeros(3), np.zeros(3), np.ones(3), 3, (10, 10))
    assert np.all(estimate_drift(t) == 0)
    with pytest.raises(InvalidInput):
        subtract_drift(t, np.zeros((2, 2)))


@pytest.mark.parametrize("radius, memory", [(0.0, 1), (float("nan"), 1), (5.0, -1), (5.0, 9)])
def test_bad_linker_settings(radius, memory):
    with pytest.raises(InvalidInput):
        Linker(radius, memory=memory)


def test_track_velocity_estimator_resists_blur_selection():
    # Mimic what blur does to dim particles: a frame reached by a long step
    # along the flow is often missed. One-frame steps that survive are then
    # biased against the flow; end-to-end displacements are not.
    rng = np.random.default_rng(8)
    n_p, n_f, drift = 60, 60, 3.0
    steps = rng.normal(0, 3.0, (n_f, n_p, 2))
    steps[0] = 0
    steps[1:, :, 0] += drift
    pos = np.cumsum(steps, axis=0) + rng.uniform(0, 2000, (1, n_p, 2))
    missed = (steps[:, :, 0] > drift + 2.0) & (rng.random((n_f, n_p)) < 0.7)
    missed[0] = False
    missed[-1] = False
    tid, fr, x, y = [], [], [], []
    for p in range(n_p):
        f = np.flatnonzero(~missed[:, p])
        tid.append(np.full(len(f), p))
        fr.append(f)
        x.append(pos[f, p, 0])
        y.append(pos[f, p, 1])
    n = sum(len(f) for f in fr)
    tracks = Tracks(np.concatenate(tid), np.concatenate(fr), np.concatenate(x),
                    np.concatenate(y), np.ones(n), n_f, (2000, 2000))
    true_flow = np.diff(pos[:, :, 0], axis=0).mean()
    by_step = estimate_drift(tracks, method="step")[1:, 0].mean()
    by_track = estimate_drift(tracks)[1:, 0].mean()
    # ~3500 steps: the step median is pulled ~0.6 px low; the end-to-end
    # estimate is within ~0.05 px (sd) of the flow the walkers made
    assert by_step < true_flow - 0.4
    assert by_track == pytest.approx(true_flow, abs=0.15)
    with pytest.raises(InvalidInput, match="drift method"):
        estimate_drift(tracks, method="fft")


def test_peak_and_saturated_flags_follow_their_spots():
    det, pid = random_walks(n_particles=20, n_frames=10, seed=7)
    peak = np.arange(len(det), dtype=float) + 1.0
    sat = (np.arange(len(det)) % 3) == 0
    det = Detections(frame=det.frame, x_px=det.x_px, y_px=det.y_px, intensity=det.intensity,
                     n_frames=det.n_frames, frame_shape=det.frame_shape, threshold=1.0,
                     peak=peak, saturated=sat)
    tracks = link(det, search_radius_px=8.0)
    # each tracked spot keeps its own peak/flag (peaks are unique keys here)
    key = {(int(f), float(x)): (p, s) for f, x, p, s in
           zip(det.frame, det.x_px, peak, sat, strict=True)}
    got = [key[(int(f), float(x))] for f, x in zip(tracks.frame, tracks.x_px, strict=True)]
    assert np.array_equal(tracks.peak, [g[0] for g in got])
    assert np.array_equal(tracks.saturated, [g[1] for g in got])
    moved = subtract_drift(tracks, np.zeros((10, 2)))
    assert np.array_equal(moved.peak, tracks.peak)
    assert np.array_equal(moved.saturated, tracks.saturated)
    pooled = pool_tracks([moved, moved])
    assert np.array_equal(pooled.peak, np.concatenate([moved.peak, moved.peak]))
    assert np.array_equal(pooled.saturated, np.concatenate([moved.saturated, moved.saturated]))
    # defaults when not given: unknown peak, nothing saturated
    plain = Detections(frame=np.zeros(2, np.int64), x_px=np.zeros(2), y_px=np.zeros(2),
                       intensity=np.ones(2), n_frames=1, frame_shape=(5, 5))
    assert np.isnan(plain.peak).all() and not plain.saturated.any()
    with pytest.raises(InvalidInput):
        Detections(frame=np.zeros(2, np.int64), x_px=np.zeros(2), y_px=np.zeros(2),
                   intensity=np.ones(2), n_frames=1, frame_shape=(5, 5), peak=np.ones(3))


def test_candidate_pairs_match_brute_force():
    from exotrace.nta import _kernels

    rng = np.random.default_rng(3)
    x, y = rng.uniform(0, 300, 400), rng.uniform(0, 200, 400)
    px, py = rng.uniform(-20, 320, 150), rng.uniform(-20, 220, 150)
    radius = rng.uniform(0.5, 40.0, 150)
    ti, di = _kernels.candidate_pairs_nb(px, py, radius, x, y, 16.0)
    d2 = (x[None, :] - px[:, None]) ** 2 + (y[None, :] - py[:, None]) ** 2
    bt, bd = np.nonzero(d2 <= radius[:, None] ** 2)  # row-major: by track, then detection
    np.testing.assert_array_equal(ti, bt)
    np.testing.assert_array_equal(di, bd)
    empty = _kernels.candidate_pairs_nb(px, py, radius, x[:0], y[:0], 16.0)
    assert len(empty[0]) == 0 and len(empty[1]) == 0


def test_compiled_link_frame_matches_the_reference():
    # candidates, weak-spot rule, cost order and greedy assignment in one
    # kernel: the same matches as the numpy version, crowded conflicts included
    from exotrace.nta import _kernels, _link

    rng = np.random.default_rng(11)
    nt, nd = 120, 140
    px, py = rng.uniform(0, 100, nt), rng.uniform(0, 80, nt)
    x, y = rng.uniform(0, 100, nd), rng.uniform(0, 80, nd)
    radius = rng.uniform(2.0, 12.0, nt)
    strong = rng.uniform(size=nd) < 0.8
    established = rng.uniform(size=nt) < 0.5
    var_t = rng.uniform(0.5, 9.0, nt)
    li_t, li_d = rng.normal(5, 1, nt), rng.normal(5, 1, nd)
    got = _kernels.link_frame_nb(px, py, radius, x, y, strong, established, var_t, li_t, li_d,
                                 0.3, 16.0)
    ref = _link._link_frame_py(px, py, radius, x, y, strong, established, var_t, li_t, li_d, 0.3)
    assert len(ref[0]) > 50  # a crowded frame with many matches
    np.testing.assert_array_equal(got[0], ref[0])
    np.testing.assert_array_equal(got[1], ref[1])
    assert len(set(got[1].tolist())) == len(got[1])  # one detection per track
    assert (strong[got[1]] | established[got[0]]).all()


def test_compiled_flow_by_frame_matches_the_reference():
    # the compiled per-frame flow must equal the numpy loop it replaces,
    # wrong links (outliers) and frames spanned by too few tracks included
    from exotrace.nta import _drift, _kernels

    rng = np.random.default_rng(5)
    m, n = 300, 80
    f0 = rng.integers(0, n - 2, m)
    f1 = np.minimum(f0 + rng.integers(1, 40, m), n - 1)
    span = (f1 - f0).astype(float)
    ex = 3.0 * span + 2.0 * np.sqrt(span) * rng.standard_normal(m)
    ey = -1.0 * span + 2.0 * np.sqrt(span) * rng.standard_normal(m)
    ex[:10] += 60.0  # wrong links
    ref = _drift._flow_by_frame(f0, f1, ex, ey, span, n)
    got = _kernels.flow_by_frame_nb(f0, f1, ex, ey, span, n, _drift._MIN_STEPS_PER_FRAME)
    assert np.isnan(ref[0]).all() and np.isfinite(ref[n // 2]).all()
    np.testing.assert_allclose(got, ref, rtol=1e-12, atol=1e-12, equal_nan=True)
    few = _kernels.flow_by_frame_nb(f0[:2], f1[:2], ex[:2], ey[:2], span[:2], n, 3)
    assert np.isnan(few).all()


def _flowing_tracks(seed, v=(3.0, -1.0), sigma=4.0, shape=(160, 192), n=3000, frames=60):
    """Brownian particles under flow, seen only inside the field (ids per visit)."""
    rng = np.random.default_rng(seed)
    rows, cols = shape
    x = rng.uniform(-200, cols + 200, n)
    y = rng.uniform(-100, rows + 100, n)
    tid, fr, xs, ys = [], [], [], []
    current = np.full(n, -1)
    next_id = 0
    for f in range(frames):
        x = x + v[0] + sigma * rng.standard_normal(n)
        y = y + v[1] + sigma * rng.standard_normal(n)
        inside = (x >= 11) & (x <= cols - 12) & (y >= 11) & (y <= rows - 12)
        new = inside & (current < 0)
        current[new] = np.arange(next_id, next_id + new.sum())
        next_id += int(new.sum())
        current[~inside] = -1
        idx = np.flatnonzero(inside)
        tid.append(current[idx])
        fr.append(np.full(len(idx), f))
        xs.append(x[idx])
        ys.append(y[idx])
    tid, fr, xs, ys = (np.concatenate(a) for a in (tid, fr, xs, ys))
    o = np.lexsort((fr, tid))
    return Tracks(track_id=tid[o], frame=fr[o], x_px=xs[o], y_px=ys[o],
                  intensity=np.ones(len(o)), n_frames=frames, frame_shape=shape)


def test_flow_is_not_under_stated_by_tracks_leaving_the_field(monkeypatch):
    from exotrace.nta import _drift

    cut, whole = [], []
    for seed in range(4):
        t = _flowing_tracks(seed)
        cut.append(estimate_drift(t)[1:].mean(axis=0))
        with monkeypatch.context() as m:
            m.setattr(_drift, "_interior_excursions", lambda tr, b: (b[:-1], b[1:] - 1))
            whole.append(estimate_drift(t)[1:].mean(axis=0))
    cut, whole = np.mean(cut, axis=0), np.mean(whole, axis=0)
    # Tracks seen only inside a 192 x 160 px field. Cut where they first enter
    # the band along the edges, the flow comes out 2.90 px/frame in x (the
    # tracks spanning a frame favour particles that lingered against the
    # flow, see _drift); whole tracks, stopped at the last frame before a step
    # out of the field, 2.88. ~0.03 SE over 4 seeds.
    assert cut[0] == pytest.approx(3.0, abs=0.15)
    assert cut[1] == pytest.approx(-1.0, abs=0.1)
    assert cut[0] > whole[0]


def test_online_flow_keeps_links_as_the_flow_grows_past_the_radius():
    # Flow 4 px/frame (inside a 6 px radius: the first links form) ramping to
    # 9 px/frame (outside it): only a linker that predicts positions by the
    # flow measured so far keeps following the particles.
    det, pid = random_walks(seed=4, drift=(0.0, 0.0), step_sd=1.0, size=900)
    ramp = np.linspace(4.0, 9.0, det.n_frames)
    shift = np.concatenate(([0.0], np.cumsum(ramp[1:])))
    moved = Detections(frame=det.frame, x_px=det.x_px + shift[det.frame], y_px=det.y_px,
                       intensity=det.intensity, n_frames=det.n_frames,
                       frame_shape=det.frame_shape)
    blind = Linker(6.0)
    online = Linker(6.0, online_drift=True)
    for linker in (blind, online):
        for f in range(det.n_frames):
            m = moved.frame == f
            linker.add(f, moved.x_px[m], moved.y_px[m], moved.intensity[m])
    kw = dict(n_frames=det.n_frames, frame_shape=det.frame_shape)
    t_blind, t_online = blind.result(**kw), online.result(**kw)
    # measured: 74 tracks for 60 particles online, 1802 blind
    assert t_online.n_tracks < 0.3 * t_blind.n_tracks
    assert purity(t_online, moved, pid) > 0.98


def test_a_learnt_initial_flow_links_the_first_frames_too():
    # 9 px/frame of flow, beyond a 6 px radius: a linker starting from no
    # flow cannot make the first links (and so never learns the flow); one
    # started from the flow learnt elsewhere links from the first frame and
    # records the flow it predicted each frame by.
    det, pid = random_walks(seed=5, step_sd=1.0, size=900, n_frames=20)
    moved = Detections(frame=det.frame, x_px=det.x_px + 9.0 * det.frame, y_px=det.y_px,
                       intensity=det.intensity, n_frames=det.n_frames,
                       frame_shape=det.frame_shape)
    cold = Linker(6.0, online_drift=True)
    warm = Linker(6.0, online_drift=True, initial_flow=(9.0, 0.0))
    for linker in (cold, warm):
        for f in range(det.n_frames):
            m = moved.frame == f
            linker.add(f, moved.x_px[m], moved.y_px[m], moved.intensity[m])
    kw = dict(n_frames=det.n_frames, frame_shape=det.frame_shape)
    t_cold, t_warm = cold.result(**kw), warm.result(**kw)
    assert t_warm.n_tracks == 60 and purity(t_warm, moved, pid) == 1.0
    assert t_cold.n_tracks > 10 * t_warm.n_tracks
    used = warm.online_flow(det.n_frames)
    # each frame was predicted by ~9 px/frame (the running median of the
    # links stays there): within the walkers' step noise, 1 px / sqrt(60)
    np.testing.assert_allclose(used[:, 0], 9.0, atol=0.5)
    assert np.all(np.isnan(Linker(6.0).online_flow(3)))
