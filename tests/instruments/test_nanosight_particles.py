"""NanoSight per-particle exports (ParticleData, AllTracks) and .nano descriptors."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest

from exotrace.errors import FileFormatError
from exotrace.instruments import read_file, read_nanosight_tracks
from exotrace.nta import Tracks
from exotrace.physics import diffusion_m2_per_s_from_diameter

DATA = Path(__file__).resolve().parents[1] / "data" / "instruments"
PARTICLES = DATA / "ev_lot7_00_ParticleData.csv"
ALLTRACKS = DATA / "ev_lot7_00_AllTracks.csv"
NANO = DATA / "ev_lot7.nano"

# Simulation constants of make_fixtures.write_all_tracks.
PIXEL_NM = 140.0
FPS = 24.9825
DIAMETER_NM = 100.0


def _included_sizes() -> np.ndarray:
    with PARTICLES.open(encoding="cp1252", newline="") as fh:
        rows = list(csv.DictReader(fh))
    return np.array([float(r["Size/nm"]) for r in rows if r["Included in distribution?"] == "True"])


def test_particle_data_statistics_are_those_of_included_tracks():
    r = read_file(PARTICLES)
    assert r.format == "nanosight-particledata"
    sizes = _included_sizes()
    assert r.extra["n_particles"] == 200 and r.extra["n_included"] == sizes.size
    assert r.mean_nm == pytest.approx(sizes.mean(), rel=1e-12)
    assert r.sd_nm == pytest.approx(sizes.std(), rel=1e-12)
    assert r.d50_nm == pytest.approx(np.median(sizes), rel=1e-12)
    assert r.d10_nm == pytest.approx(np.percentile(sizes, 10), rel=1e-12)
    # Lognormal(median 105, sigma 0.25) in the fixture: the median of ~180 draws lies within
    # +-10 % (about 4 standard errors of a sample median).
    assert 95 < r.d50_nm < 115
    p = r.extra["particles"]
    assert p["diffusion_m2_per_s"][0] == pytest.approx(
        diffusion_m2_per_s_from_diameter(p["size_nm"][0], temperature_c=22.0, viscosity_pa_s=0.952941e-3),
        rel=1e-3)  # written with one decimal in nm^2/s
    assert any("not NanoSight's FTLA" in w for w in r.warnings)
    # The lot's stored distribution: included sizes in 1-nm classes, as fractions.
    nd = r.extra["number_distribution"]
    lo = np.floor(sizes.min())
    assert r.extra["detection_range_nm"] == [lo, np.floor(sizes.max()) + 1.0]
    first = np.sum((sizes >= lo) & (sizes < lo + 1.0)) / sizes.size
    assert nd["diameter_nm"][0] == lo + 0.5 and nd["fraction"][0] == pytest.approx(first)


def test_all_tracks_become_sorted_tracks_with_the_simulated_diffusion():
    tracks = read_nanosight_tracks(ALLTRACKS)
    assert isinstance(tracks, Tracks)
    assert len(tracks) == 60 * 20 and tracks.n_tracks == 60
    order = np.lexsort((tracks.frame, tracks.track_id))
    assert np.array_equal(order, np.arange(len(tracks)))  # the export was shuffled
    b = tracks.boundaries()
    assert np.all(np.diff(b) == 20)
    # Per-axis MSD at lag 1 of the exported pixel coordinates, converted with the
    # simulation's pixel size and frame rate, recovers Stokes-Einstein's D for 100 nm at
    # 22 C. 60 x 19 steps x 2 axes: relative SE of the mean squared step ~ sqrt(2/2280) = 3 %;
    # 12 % is 4 SE.
    same = tracks.track_id[1:] == tracks.track_id[:-1]
    dx = np.diff(tracks.x_px)[same]
    dy = np.diff(tracks.y_px)[same]
    d_est = np.mean(np.concatenate([dx, dy]) ** 2) / 2 * (PIXEL_NM * 1e-9) ** 2 * FPS
    d_true = diffusion_m2_per_s_from_diameter(DIAMETER_NM, temperature_c=22.0, viscosity_pa_s=0.952941e-3)
    assert d_est == pytest.approx(d_true, rel=0.12)
    assert np.all(tracks.intensity > 0) and not tracks.drift_corrected
    assert tracks.frame_shape[0] > tracks.y_px.max() and tracks.frame_shape[1] > tracks.x_px.max()
    assert tracks.n_frames == tracks.frame.max() + 1
    assert np.all(tracks.metadata["vendor_size_nm"] == 100.0)


def test_all_tracks_through_read_file():
    r = read_file(ALLTRACKS)
    assert r.format == "nanosight-alltracks"
    assert r.extra["n_rows"] == 1200 and r.extra["n_particles"] == 60
    assert r.mean_nm == 100.0 and r.sd_nm == 0.0
    assert np.all(r.extra["particles"]["track_length"] == 20)


def test_read_tracks_refuses_particle_data():
    with pytest.raises(FileFormatError, match="not a NanoSight AllTracks"):
        read_nanosight_tracks(PARTICLES)


def test_duplicate_frame_in_a_track_is_refused(tmp_path):
    lines = ALLTRACKS.read_text(encoding="cp1252").splitlines()
    f = tmp_path / "dup_AllTracks.csv"
    f.write_text("\n".join([*lines, lines[1]]) + "\n", encoding="cp1252")
    with pytest.raises(FileFormatError, match="same frame"):
        read_nanosight_tracks(f)


def test_bad_included_flag_names_line_and_column(tmp_path):
    lines = PARTICLES.read_text(encoding="cp1252").splitlines()
    lines[5] = lines[5].rsplit(",", 1)[0] + ",Maybe"
    f = tmp_path / "bad_ParticleData.csv"
    f.write_text("\n".join(lines) + "\n", encoding="cp1252")
    with pytest.raises(FileFormatError) as info:
        read_file(f)
    assert "line 6" in str(info.value) and "Included in distribution?" in str(info.value)


def test_non_numeric_size_is_refused(tmp_path):
    lines = PARTICLES.read_text(encoding="cp1252").splitlines()
    cells = lines[3].split(",")
    cells[1] = "abc"
    lines[3] = ",".join(cells)
    f = tmp_path / "bad2_ParticleData.csv"
    f.write_text("\n".join(lines) + "\n", encoding="cp1252")
    with pytest.raises(FileFormatError, match=r"line 4.*Size/nm"):
        read_file(f)


def test_nano_descriptor():
    r = read_file(NANO)
    assert r.format == "nanosight-nano"
    assert r.dilution_factor == 500.0
    assert r.extra["pixel_size_nm"] == 140.0
    assert r.extra["frame_rate_fps"] == pytest.approx(24.9825)
    assert r.extra["video_names"] == ["ev_lot7_00", "ev_lot7_01", "ev_lot7_02", "ev_lot7_03"]
    assert r.software_version == "NTA 3.4 Build 3.4.4"
    assert r.sample == "EV lot 7 (SEC F2)"
    assert r.temperature_c == 25.0


def test_nano_bad_pixel_size(tmp_path):
    f = tmp_path / "bad.nano"
    f.write_text(NANO.read_text(encoding="cp1252").replace("PixelSize=140", "PixelSize=-3"))
    with pytest.raises(FileFormatError, match="PixelSize"):
        read_file(f)
