"""Concentration: bead calibration, JSON round trip, accuracy on second samples, bad files."""

from __future__ import annotations

import json
from dataclasses import asdict

import pytest

from exotrace.errors import FileFormatError, InvalidInput
from exotrace.nta._sizing_sim import simulate_sample
from exotrace.nta.concentration import Calibration, calibrate, estimate_concentration
from exotrace.nta.diffusion import track_diffusion
from exotrace.nta.sizing import size_distribution


@pytest.fixture(scope="module")
def calibration(mono100, acq):
    sample, td = mono100
    # The beads' true concentration is the realized one: particles placed / box volume.
    return calibrate(sample.tracks, td, acq, particles_per_ml=sample.realized_particles_per_ml,
                     bead_diameter_nm=100.0)


def test_calibration_recovers_the_sheet(calibration, mono100):
    sample, _ = mono100
    assert calibration.depth_model == "gaussian-sheet"
    # Simulated sheet waist 6 um; the depth model (uniform-z brightness, threshold
    # from the dimmest spots) is approximate: 15 %.
    assert calibration.sheet_waist_um == pytest.approx(sample.sheet_waist_um, rel=0.15)
    # Effective depth of 100 nm beads vs the model's 2 z_max (noise and blur widen it).
    assert calibration.effective_depth_um == pytest.approx(2 * sample.half_depth_um[100.0],
                                                           rel=0.15)
    assert calibration.measured_diameter_nm == pytest.approx(100.0, rel=0.05)


def test_second_sample_concentration_within_10_percent(calibration, acq, tmp_path):
    path = calibration.to_json(tmp_path / "cal.json")
    cal = Calibration.from_json(path)
    assert cal == calibration
    sample = simulate_sample(acq, diameters_nm=(100.0,), particles_per_ml=2.5e9, n_frames=300,
                             frame_shape=(800, 1000), seed=303)
    td = track_diffusion(sample.tracks, acq)
    dist = size_distribution(td, acq)
    res = estimate_concentration(sample.tracks, td, dist, acq, calibration=cal, dilution=100.0)
    assert res.depth_model == "gaussian-sheet"
    # Issue target: within 10 % (Poisson noise of ~2000 particles in the box is ~2 %).
    assert res.particles_per_ml / 100.0 == pytest.approx(sample.realized_particles_per_ml,
                                                         rel=0.10)
    assert res.effective_volume_ml == pytest.approx(res.particles_per_frame * 100.0
                                                    / res.particles_per_ml, rel=1e-9)
    assert res.warnings == []


def test_mixture_concentration_uses_size_dependent_depth(calibration, mix70_140, acq):
    sample, td = mix70_140
    dist = size_distribution(td, acq)
    res = estimate_concentration(sample.tracks, td, dist, acq, calibration=calibration)
    # 70 nm particles are seen over a thinner slab than the 100 nm beads and 140 nm
    # over a thicker one; with per-size depth the total is within 10 %.
    assert res.particles_per_ml == pytest.approx(sample.realized_particles_per_ml, rel=0.10)


def test_without_calibration_counts_particles_per_frame(mono100, acq):
    sample, td = mono100
    res = estimate_concentration(sample.tracks, td, None, acq)
    assert res.particles_per_ml is None and res.effective_volume_ml is None
    assert any("no calibration" in w for w in res.warnings)
    expected = (td.n_points.sum() + td.short.n_points.sum()) / sample.tracks.n_frames
    assert res.particles_per_frame == pytest.approx(expected)
    # Every detected point with a neighbour frame is counted: at least 95 % of all points.
    assert res.n_points >= 0.95 * len(sample.tracks)


def test_constant_depth_without_brightness(calibration, mono100, acq):
    sample, td = mono100
    dist = size_distribution(td, acq, detection_correction=False)
    res = estimate_concentration(sample.tracks, td, dist, acq, calibration=calibration)
    assert res.depth_model == "constant"
    # Same video as the calibration: the constant model returns the beads' value.
    assert res.particles_per_ml == pytest.approx(sample.realized_particles_per_ml, rel=1e-9)


def test_invalid_numbers(mono100, acq, calibration):
    sample, td = mono100
    with pytest.raises(InvalidInput, match="particles-per-ml"):
        calibrate(sample.tracks, td, acq, particles_per_ml=0.0)
    with pytest.raises(InvalidInput, match="dilution"):
        estimate_concentration(sample.tracks, td, None, acq, calibration=calibration, dilution=-1)


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda d: d.pop("effective_depth_um"), "field 'effective_depth_um'"),
        (lambda d: d.update(effective_volume_ml=-1.0), "positive"),
        (lambda d: d.update(fps="fast"), "field 'fps'"),
        (lambda d: d.update(colour="red"), "unknown calibration field"),
        (lambda d: d.update(depth_model="cube"), "depth model"),
        (lambda d: d.update(n_frames=1.5), "positive integer"),
        (lambda d: d.update(schema_version=99), "schema version"),
        (lambda d: d.update(intensity_threshold="brightest"), "intensity threshold"),
        (lambda d: d.update(schema_version=1), "in a schema 1 file"),
        (lambda d: d.update(created_utc="yesterday"), "ISO 8601"),
    ],
)
def test_bad_calibration_files(calibration, tmp_path, mutate, message):
    data = asdict(calibration)
    mutate(data)
    path = tmp_path / "cal.json"
    path.write_text(json.dumps(data))
    with pytest.raises(FileFormatError, match=message) as info:
        Calibration.from_json(path)
    assert str(path) in str(info.value) and "\n" not in str(info.value)


def test_optional_fields_may_be_absent(calibration, tmp_path):
    data = asdict(calibration)
    for name in ("exposure_ms", "bead_diameter_nm", "source", "schema_version"):
        data.pop(name)
    path = tmp_path / "cal.json"
    path.write_text(json.dumps(data))
    cal = Calibration.from_json(path)
    assert cal.exposure_ms is None and cal.bead_diameter_nm is None
    assert cal.sheet_waist_um == calibration.sheet_waist_um


def test_unreadable_calibration_files(tmp_path):
    with pytest.raises(FileFormatError, match="not found"):
        Calibration.from_json(tmp_path / "missing.json")
    bad = tmp_path / "bad.json"
    bad.write_text('{\n  "fps": 25,\n  oops\n}')
    with pytest.raises(FileFormatError, match="line 3: not valid JSON"):
        Calibration.from_json(bad)
    arr = tmp_path / "list.json"
    arr.write_text("[1, 2]")
    with pytest.raises(FileFormatError, match="JSON object"):
        Calibration.from_json(arr)


def test_threshold_method_is_recorded_and_a_mismatch_warned(calibration, mix70_140, acq,
                                                            tmp_path):
    # The sizing simulator's tracks carry no peaks: the beads' threshold is the
    # dimmest spots'. A sample whose tracks carry peaks (threshold in peak
    # units, peaks 3x the intensities) maps the detection threshold instead;
    # the two are not comparable, and so is a calibration file of schema 1
    # (written before the threshold was recorded).
    import dataclasses

    assert calibration.intensity_threshold == "dimmest-spots"
    sample, td = mix70_140
    dist = size_distribution(td, acq)
    same = estimate_concentration(sample.tracks, td, dist, acq, calibration=calibration)
    assert not any("intensity threshold" in w for w in same.warnings)
    peaks = dataclasses.replace(sample.tracks, peak=sample.tracks.intensity * 3.0,
                                threshold=sample.tracks.threshold * 3.0)
    ptd = track_diffusion(peaks, acq)
    assert ptd.intensity_floor_method == "detection"
    mixed = estimate_concentration(peaks, ptd, size_distribution(ptd, acq), acq,
                                   calibration=calibration)
    assert any("calibrate again" in w for w in mixed.warnings)
    # a detection-threshold calibration matches the peak-carrying sample
    ours = dataclasses.replace(calibration, intensity_threshold="detection")
    path = ours.to_json(tmp_path / "cal.json")
    assert json.loads(path.read_text())["schema_version"] == 2
    fine = estimate_concentration(peaks, ptd, size_distribution(ptd, acq), acq,
                                  calibration=Calibration.from_json(path))
    assert not any("calibrate again" in w for w in fine.warnings)
    # schema 1: read, with the dimmest-spots threshold it was made with
    old = {k: v for k, v in asdict(ours).items() if k != "intensity_threshold"}
    old["schema_version"] = 1
    (tmp_path / "old.json").write_text(json.dumps(old))
    legacy = Calibration.from_json(tmp_path / "old.json")
    assert legacy.intensity_threshold == "dimmest-spots"
    assert legacy.sheet_waist_um == ours.sheet_waist_um
    warned = estimate_concentration(peaks, ptd, size_distribution(ptd, acq), acq,
                                    calibration=legacy)
    assert any("calibrate again" in w for w in warned.warnings)
