"""The whole pipeline on small simulated videos with known truth."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from exotrace.errors import InsufficientData, InvalidInput
from exotrace.nta import (
    Acquisition,
    NtaResult,
    analyze_tracks,
    analyze_videos,
    pool_tracks,
    track_frames,
    track_video,
)
from exotrace.nta.diffusion import track_diffusion
from exotrace.physics import diffusion_m2_per_s_from_diameter, water_viscosity_pa_s


@pytest.fixture(scope="module")
def small_tracks(small_video, small_acquisition):
    return track_frames(small_video.frames, small_acquisition)


def test_tracks_are_drift_corrected_and_follow_the_flow(small_tracks):
    t = small_tracks
    assert t.drift_corrected
    # truth: 3.0, -1.0 px/frame. This small, crowded 192 x 160 field holds
    # only ~20 spots per frame and ~100 short tracks: over seeds 11-13 the
    # flow comes out 2.68-2.97 and -0.64 to -1.14 px/frame (on 1024 x 768 at
    # 5e8/mL within 0.03 px). 0.45 px still catches a missing or doubled
    # correction.
    assert t.drift_px_per_frame[0] == pytest.approx(3.0, abs=0.45)
    assert t.drift_px_per_frame[1] == pytest.approx(-1.0, abs=0.45)
    same = t.track_id[1:] == t.track_id[:-1]
    one = same & (np.diff(t.frame) == 1)
    # After correction the mean one-frame step is near 0; not exactly 0 on so
    # small a field, because one-frame steps near the exit edges are only
    # seen when they did not step out (|mean| 0.02-0.23 px over seeds 11-13
    # vs 3 px uncorrected).
    assert abs(np.diff(t.x_px)[one].mean()) < 0.3
    assert abs(np.diff(t.y_px)[one].mean()) < 0.3
    assert t.metadata["n_detections"] >= len(t)
    # the streaming pass's flow is too rough on so small a field (its mean
    # difference from the measured flow ~0.4 px/frame, over the 0.2
    # tolerance): the detections are linked again with the measured flow
    assert t.metadata["relinked"] == 1


def test_detected_particles_match_the_truth(small_video, small_tracks):
    t = small_tracks
    truth = small_video.truth
    per_frame = len(t) / t.n_frames
    # Bright 100 nm particles are seen deeper than the sheet's half-maximum
    # slab (truth counts |z| <= FWHM/2) but less than all depths: the number
    # per frame must fall between those two true counts.
    assert truth["particles_in_view_per_frame"] * 0.9 < per_frame
    assert per_frame < truth["particles_in_view_per_frame_all_depths"]


@pytest.fixture(scope="module")
def field_tracks(field_video, small_acquisition):
    return track_frames(field_video.frames, small_acquisition)


def test_sizes_of_monodisperse_100nm(field_tracks, small_acquisition):
    result = analyze_tracks([field_tracks], small_acquisition)
    assert isinstance(result, NtaResult)
    assert result.n_tracks >= 50
    # What the tracking controls: the step-weighted mean of per-track CVE
    # diffusion coefficients, unbiased for correct tracks. ~80 tracks of ~15
    # steps scatter by ~4 %; seeds 11-14 gave 0.95-1.08 of the truth: 10 %.
    # (On the 3x denser small_video field wrong links between overlapping spots
    # put it 20-40 % high; see docs/nta.md on crowded fields.)
    diff = track_diffusion(field_tracks, small_acquisition)
    d_true = diffusion_m2_per_s_from_diameter(100.0, temperature_c=22.0,
                                              viscosity_pa_s=water_viscosity_pa_s(22.0))
    d_mean = np.average(diff.diffusion_m2_per_s, weights=diff.n_steps)
    assert d_mean == pytest.approx(d_true, rel=0.10, abs=0.0)
    # The EM distribution on ~80 tracks: seeds 11-14 gave D50 99-112 nm; the
    # bound only catches gross failures.
    assert 85.0 < result.d50_nm < 130.0
    assert result.particles_per_ml is None
    d = result.to_dict()
    for key in ("n_tracks", "mean_nm", "mode_nm", "sd_nm", "d10_nm", "d50_nm", "d90_nm",
                "peaks_nm", "particles_per_frame", "particles_per_ml", "drift_px_per_frame",
                "distribution", "videos", "warnings"):
        assert key in d
    assert len(d["distribution"]["diameter_nm"]) == len(d["distribution"]["number_fraction"])
    assert sum(d["distribution"]["number_fraction"]) == pytest.approx(1.0)
    assert len(d["videos"]) == 1


def test_avi_streaming_gives_the_same_tracks_as_memory(small_avi, small_video, small_acquisition,
                                                       small_tracks):
    path, _ = small_avi
    seen = []
    t = track_video(path, small_acquisition, chunk_frames=7, progress=seen.append)
    assert sum(seen) == 60 and max(seen) == 7
    np.testing.assert_array_equal(t.track_id, small_tracks.track_id)
    np.testing.assert_allclose(t.x_px, small_tracks.x_px)
    # the AVI streams as uint8; the same frames as float32 give the very same
    # tracks (the kernels read either type into the same arithmetic)
    as_float = track_frames(small_video.frames.astype(np.float32), small_acquisition)
    np.testing.assert_array_equal(t.track_id, as_float.track_id)
    np.testing.assert_array_equal(t.x_px, as_float.x_px)
    np.testing.assert_array_equal(t.intensity, as_float.intensity)


def test_several_videos_are_pooled_with_per_video_results(small_avi, small_acquisition):
    path, _ = small_avi
    result = analyze_videos([path, path], small_acquisition)
    assert len(result.videos) == 2
    single = analyze_videos(path, small_acquisition)
    # the same capture twice: twice the tracks, the same particles per frame
    assert result.n_tracks == 2 * single.n_tracks
    assert result.particles_per_frame == pytest.approx(single.particles_per_frame)
    assert result.videos[0].n_tracks == single.n_tracks


def test_pool_tracks_keeps_ids_and_frames_apart(small_tracks):
    pooled = pool_tracks([small_tracks, small_tracks])
    assert pooled.n_frames == 2 * small_tracks.n_frames
    assert pooled.n_tracks == 2 * small_tracks.n_tracks
    assert pooled.frame.max() == small_tracks.frame.max() + small_tracks.n_frames


def test_too_short_blank_and_nonsense(small_video, small_acquisition):
    with pytest.raises(InsufficientData, match="only 5 frames"):
        track_frames(small_video.frames[:5], small_acquisition)
    rng = np.random.default_rng(0)
    blank = rng.normal(20, 2, (20, 64, 64)).astype(np.float32)
    with pytest.raises(InsufficientData, match="no particles detected"):
        track_frames(blank, small_acquisition, threshold_sigma=8)
    with pytest.raises(InvalidInput):
        Acquisition(pixel_size_nm=140, fps=0, temperature_c=22)
    with pytest.raises(InvalidInput):
        Acquisition(pixel_size_nm=140, fps=25, temperature_c=-4)
    with pytest.raises(InvalidInput, match="dilution"):
        analyze_tracks([], small_acquisition, dilution=0)


def test_few_tracks_give_a_warning_not_a_silent_number(small_tracks, small_acquisition):
    keep = small_tracks.track_id < np.unique(small_tracks.track_id)[12]
    few = type(small_tracks)(
        small_tracks.track_id[keep], small_tracks.frame[keep], small_tracks.x_px[keep],
        small_tracks.y_px[keep], small_tracks.intensity[keep], small_tracks.n_frames,
        small_tracks.frame_shape, drift_corrected=True)
    result = analyze_tracks([few], small_acquisition)
    assert any("tracks" in w for w in result.warnings)


def test_nanosight_alltracks_csv_is_reanalysed(tmp_path, small_tracks, small_acquisition):
    # an AllTracks export of the same particles: camera coordinates, i.e. the
    # measured flow put back in
    t = small_tracks
    vx, vy = t.drift_px_per_frame
    x = t.x_px + vx * t.frame
    y = t.y_px + vy * t.frame
    lines = ["Particle ID,Frame,X/pixels,Y/pixels,Ln(Adjusted intensity)"]
    lines += [f"{i},{f},{a:.4f},{b:.4f},{np.log(max(v, 1.0)):.4f}"
              for i, f, a, b, v in zip(t.track_id, t.frame, x, y, t.intensity, strict=True)]
    csv = tmp_path / "AllTracks.csv"
    csv.write_text("\n".join(lines) + "\n")
    result = analyze_videos([csv], small_acquisition)
    # The re-estimated flow is the one in the coordinates, within 0.2 px: the
    # mean flow put back is not the smoothed per-frame flow that was removed,
    # and the band along the edges (where tracks are cut) follows the
    # coordinates' extent (measured 0.12 px apart on this 192 x 160 field).
    assert result.drift_px_per_frame[0] == pytest.approx(vx, abs=0.2)
    assert result.drift_px_per_frame[1] == pytest.approx(vy, abs=0.2)
    # The export carries intensities but no band-passed peaks: the same
    # tracks without peaks, analysed in memory, give the same distribution.
    # (2 % apart, not identical: the flow re-estimated from the export is not
    # the smoothed per-frame flow removed in memory.)
    no_peaks = dataclasses.replace(small_tracks, peak=None, saturated=None)
    direct = analyze_tracks([no_peaks], small_acquisition)
    assert result.n_tracks == direct.n_tracks
    assert result.d50_nm == pytest.approx(direct.d50_nm, rel=0.05)


def test_one_capture_is_sized_once_with_the_pooled_figures(field_tracks, small_acquisition,
                                                           monkeypatch):
    from exotrace.nta import _pipeline
    from exotrace.nta.concentration import calibrate, estimate_concentration
    from exotrace.nta.sizing import size_distribution

    # the figures of an independent sizing of the same tracks, with a calibration
    diff = track_diffusion(field_tracks, small_acquisition, method="cve", min_steps=5)
    dist = size_distribution(diff, small_acquisition, method="em")
    cal = calibrate(field_tracks, diff, small_acquisition, particles_per_ml=1e9)
    conc = estimate_concentration(field_tracks, diff, dist, small_acquisition, calibration=cal,
                                  dilution=10.0)
    calls = []

    def counted(*args, **kwargs):
        calls.append(1)
        return size_distribution(*args, **kwargs)

    monkeypatch.setattr(_pipeline, "size_distribution", counted)
    result = analyze_tracks([field_tracks], small_acquisition, calibration=cal, dilution=10.0)
    assert len(calls) == 1  # the capture's sizing is the pooled one
    assert result.n_tracks == dist.n_tracks > 50
    assert result.d50_nm == dist.d50_nm and result.mean_nm == dist.mean_nm
    np.testing.assert_array_equal(result.number_fraction, dist.number_fraction)
    assert result.particles_per_ml == conc.particles_per_ml
    assert result.videos[0].particles_per_ml == conc.particles_per_ml
    assert result.videos[0].d50_nm == result.d50_nm
    # two captures are still sized each and pooled
    calls.clear()
    two = analyze_tracks([field_tracks, field_tracks], small_acquisition)
    assert len(calls) == 3 and two.n_tracks == 2 * result.n_tracks
