"""Inputs: folder walks, manifests with per-sample settings and groups, one-line errors."""

from __future__ import annotations

import statistics

import pytest

from exotrace.batch import collect_jobs, run_batch, summary_rows
from exotrace.errors import FileFormatError, InvalidInput
from exotrace.nta import calibrate_videos

from .conftest import DEFAULTS


def test_folder_walk_finds_videos_below_and_skips_hidden_and_other_files(videos):
    (videos / "sub").mkdir()
    (videos / "v1.avi").rename(videos / "sub" / "v1.avi")
    (videos / ".trash").mkdir()
    (videos / "v2.avi").rename(videos / ".trash" / "v2.avi")
    (videos / "notes.txt").write_text("not a video")
    jobs = collect_jobs([videos.parent], DEFAULTS)
    # sorted by path: plate1/sub/v1.avi before plate1/v3.avi
    assert [(j.sample, j.group) for j in jobs] == [("v1", "sub"), ("v3", "plate1")]


def test_the_same_video_named_twice_is_one_job(videos):
    jobs = collect_jobs([videos / "v1.avi", videos, videos / "v1.avi"], DEFAULTS)
    assert [j.sample for j in jobs] == ["v1", "v2", "v3"]


@pytest.mark.parametrize(("inputs", "message"), [
    (["nowhere"], "nowhere: file or folder not found"),
    (["empty"], "empty: no video files (.avi"),
    (["notes.txt"], "notes.txt: not a video"),
])
def test_bad_command_line_inputs_are_named(tmp_path, monkeypatch, inputs, message):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "empty").mkdir()
    (tmp_path / "notes.txt").write_text("x")
    with pytest.raises(FileFormatError) as err:
        collect_jobs(inputs, DEFAULTS)
    assert str(err.value).startswith(message)


def test_required_settings_missing_on_the_command_line(videos):
    with pytest.raises(InvalidInput, match="--pixel-size-nm, --fps required"):
        collect_jobs([videos], {"temperature_c": 22.0})


@pytest.fixture(scope="module")
def calibration_file(tiny_video_dir, tmp_path_factory):
    """A calibration from one tiny video taken as beads at 1e9/mL (any value will do:
    the test checks how dilution scales the concentration, not its accuracy)."""
    from exotrace.nta import Acquisition

    acq = Acquisition(pixel_size_nm=140.0, fps=25.0, temperature_c=22.0, exposure_ms=30.0)
    cal = calibrate_videos([tiny_video_dir / "v1.avi"], acq, particles_per_ml=1e9)
    return cal.to_json(tmp_path_factory.mktemp("cal") / "cal.json")


def test_manifest_rows_carry_their_own_settings_and_groups(videos, tmp_path, calibration_file,
                                                           scheduler_address):
    manifest = tmp_path / "plate.csv"
    manifest.write_text(
        "# plate 7, 2026-12-01\n"
        "video,sample,group,dilution,calibration,fps\n"
        f"videos/plate1/v1.avi,A-neat,A,1,{calibration_file},\n"
        f"videos/plate1/v1.avi,A-x10,A,10,{calibration_file},\n"
        f"videos/plate1/v2.avi,B,B,,{calibration_file},25\n")
    jobs = collect_jobs([manifest], DEFAULTS)
    assert [(j.sample, j.group, j.settings.dilution) for j in jobs] == [
        ("A-neat", "A", 1.0), ("A-x10", "A", 10.0), ("B", "B", 1.0)]
    report = run_batch(jobs, tmp_path / "out", scheduler=scheduler_address)
    conc = [r["result"]["particles_per_ml"] for r in report.records]
    assert all(c is not None and c > 0 for c in conc)
    # the same capture at ten times the dilution: exactly ten times the concentration
    assert conc[1] == pytest.approx(10 * conc[0], rel=1e-12)
    assert report.records[0]["settings_sha256"] != report.records[1]["settings_sha256"]
    groups = {r["group"]: r for r in summary_rows(report.records) if r["row_type"] == "group"}
    assert groups["A"]["n_videos"] == 2 and groups["B"]["n_videos"] == 1
    assert groups["A"]["particles_per_ml"] == pytest.approx(statistics.fmean(conc[:2]))
    assert groups["A"]["particles_per_ml_sd"] == pytest.approx(statistics.stdev(conc[:2]))
    assert groups["A"]["particles_per_ml_cv_percent"] == pytest.approx(
        100 * statistics.stdev(conc[:2]) / statistics.fmean(conc[:2]))
    assert groups["B"]["particles_per_ml_sd"] is None  # one video has no spread


@pytest.mark.parametrize(("text", "where", "problem"), [
    ("video,colour\na.avi,red\n", "line 1, field 'colour'", "unknown column"),
    ("sample\nx\n", "line 1", "has no 'video' column"),
    ("video,video\na.avi,b.avi\n", "line 1, field 'video'", "column appears twice"),
    ("video\n", "", "has a header but no video rows"),
    ("video,fps\na.avi,25\nb.avi,fast\n", "line 3, field 'fps'", "'fast' is not a number"),
    ("video,invert\na.avi,maybe\n", "line 2, field 'invert'", "'maybe' is not true or false"),
    ("video,sample\n,x\n", "line 2, field 'video'", "no video given"),
    ("video\na.avi,extra\n", "line 2", "2 cells for 1 columns"),
    ("video,temperature_c\na.avi,120\n", "line 2", "temperature-c must be between 0 and 100"),
    ("video,calibration\na.avi,missing.json\n", "line 2, field 'calibration'", "not found"),
    ("", "", "is empty"),
])
def test_manifest_errors_name_file_line_and_column(tmp_path, text, where, problem):
    manifest = tmp_path / "m.csv"
    manifest.write_text(text)
    with pytest.raises(FileFormatError) as err:
        collect_jobs([manifest], DEFAULTS)
    msg = str(err.value)
    assert msg.startswith(f"{manifest}{', ' + where if where else ''}:"), msg
    assert problem in msg and "\n" not in msg


@pytest.mark.parametrize(("data", "problem"), [
    ("video,sample\na.avi,x\n".encode("utf-16"), "is not UTF-8 text"),
    ("video,sample\na.avi,Probe \xe4\n".encode("latin-1"), "is not UTF-8 text"),
    (b"video,sample\na.avi,x\x00y\n", "is not valid CSV"),
    (b"video,sample\na.avi," + b"x" * 200_000 + b"\n", "is not valid CSV"),
    (b"video;sample\na.avi;x\n", "unknown column"),
])
def test_hostile_manifests_get_one_line_errors(tmp_path, data, problem):
    manifest = tmp_path / "m.csv"
    manifest.write_bytes(data)
    with pytest.raises(FileFormatError) as err:
        collect_jobs([manifest], DEFAULTS)
    assert str(err.value).startswith(str(manifest)) and problem in str(err.value)
    assert "\n" not in str(err.value)


def test_a_manifest_lot_column_overrides_the_command_line_lot(tmp_path):
    manifest = tmp_path / "m.csv"
    manifest.write_text("video,lot\na.avi,L-7\nb.avi,\n")
    jobs = collect_jobs([manifest], DEFAULTS, lot="L-1")
    assert [j.lot for j in jobs] == ["L-7", "L-1"]


def test_a_manifest_without_acquisition_columns_needs_them_on_the_command_line(tmp_path):
    manifest = tmp_path / "m.csv"
    manifest.write_text("video,pixel_size_nm\na.avi,140\n")
    with pytest.raises(FileFormatError, match=r"m.csv, line 2: --fps, --temperature-c required"):
        collect_jobs([manifest], {})
