"""run_batch: results equal the in-process pipeline, resume, failures, settings changes."""

from __future__ import annotations

import csv
import json
import os
import shutil
import statistics

import pytest

from exotrace.batch import (
    AnalysisSettings,
    collect_jobs,
    load_result,
    run_batch,
    settings_sha256,
    sha256_file,
)
from exotrace.errors import Conflict
from exotrace.nta import analyze_videos

from .conftest import DEFAULTS


def _summary(report):
    with report.summary_csv.open(newline="") as fh:
        return list(csv.DictReader(fh))


def _mtimes(folder):
    return {p.name: p.stat().st_mtime_ns for p in folder.glob("*.json")}


def test_each_result_equals_nta_analyze_of_that_video(videos, tmp_path):
    jobs = collect_jobs([videos], DEFAULTS)
    # two thread workers: results arrive in any order but land in job order
    report = run_batch(jobs, tmp_path / "out", workers=2, processes=False)
    assert report.outcomes == ["analysed"] * 3 and report.workers == 2
    # the LocalCluster's two workers share the machine's cores
    assert {r["threads"] for r in report.records} == {max(1, (os.cpu_count() or 1) // 2)}
    settings = AnalysisSettings(**DEFAULTS)
    for job, record in zip(jobs, report.records, strict=True):
        direct = analyze_videos([job.video], settings.acquisition()).to_dict()
        on_disk = load_result(tmp_path / "out" / record["result_file"])
        assert on_disk["state"] == "ok" and on_disk["error"] is None
        assert on_disk["video_sha256"] == sha256_file(job.video)
        assert on_disk["settings_sha256"] == settings_sha256(settings)
        # same code on the same bytes: the numbers must be identical
        for key in ("n_tracks", "mean_nm", "d10_nm", "d50_nm", "d90_nm", "particles_per_frame"):
            assert on_disk["result"][key] == direct[key], key
        assert on_disk["group"] == "plate1" and on_disk["sample"] == job.video.stem


def test_summary_has_video_rows_and_a_group_row_with_mean_and_sd(videos, tmp_path,
                                                                  scheduler_address):
    report = run_batch(collect_jobs([videos], DEFAULTS), tmp_path / "out",
                       scheduler=scheduler_address)
    rows = _summary(report)
    assert [r["row_type"] for r in rows] == ["video", "video", "video", "group"]
    d50 = [r["result"]["d50_nm"] for r in report.records]
    group = rows[-1]
    assert group["group"] == "plate1" and group["n_videos"] == "3" and group["n_failed"] == "0"
    # written with 7 significant digits
    assert float(group["d50_nm"]) == pytest.approx(statistics.fmean(d50), rel=1e-6)
    assert float(group["d50_nm_sd"]) == pytest.approx(statistics.stdev(d50), rel=1e-6)
    assert group["particles_per_ml"] == ""  # no calibration, no concentration
    assert int(group["n_tracks"]) == sum(r["result"]["n_tracks"] for r in report.records)


def test_rerun_reuses_every_result_without_touching_files(videos, tmp_path, scheduler_address):
    out = tmp_path / "out"
    jobs = collect_jobs([videos], DEFAULTS)
    first = run_batch(jobs, out, scheduler=scheduler_address)
    # a worker of an existing cluster is one of one-per-core: its video gets one core
    assert [r["threads"] for r in first.records] == [1, 1, 1]
    before = _mtimes(out)
    again = run_batch(jobs, out, scheduler=scheduler_address)
    assert again.outcomes == ["skipped"] * 3
    assert again.workers == 0  # nothing to analyse: no cluster contacted
    assert _mtimes(out) == before
    assert [r["result"] for r in again.records] == [r["result"] for r in first.records]


def test_changed_settings_are_analysed_again_engine_is_not_a_setting(videos, tmp_path,
                                                                     scheduler_address):
    out = tmp_path / "out"
    run_batch(collect_jobs([videos], DEFAULTS), out, scheduler=scheduler_address)
    other_engine = run_batch(collect_jobs([videos], {**DEFAULTS, "engine": "numba"}), out,
                             scheduler=scheduler_address)
    assert other_engine.outcomes == ["skipped"] * 3
    changed = run_batch(collect_jobs([videos], {**DEFAULTS, "exposure_ms": 20.0}), out,
                        scheduler=scheduler_address)
    assert changed.outcomes == ["analysed"] * 3
    assert len(list(out.glob("*.json"))) == 6  # both settings' results are kept
    assert {r["settings"]["exposure_ms"] for r in changed.records} == {20.0}


def test_a_corrupt_video_fails_alone_and_only_it_is_rerun_once_fixed(videos, tmp_path,
                                                                     scheduler_address):
    bad = videos / "v0_bad.avi"
    bad.write_bytes(b"RIFF\x00\x00\x00\x00AVI garbage" * 100)
    out = tmp_path / "out"
    jobs = collect_jobs([videos], DEFAULTS)
    report = run_batch(jobs, out, scheduler=scheduler_address)
    outcome = dict(zip([j.sample for j in jobs], report.outcomes, strict=True))
    assert outcome == {"v0_bad": "failed", "v1": "analysed", "v2": "analysed", "v3": "analysed"}
    failed = next(r for r in report.records if r["sample"] == "v0_bad")
    assert failed["state"] == "failed" and failed["result"] is None
    assert str(bad) in failed["error"] and "\n" not in failed["error"]
    assert load_result(out / failed["result_file"])["error"] == failed["error"]
    rows = {r["sample"]: r for r in _summary(report)}
    assert rows["v0_bad"]["state"] == "failed" and rows["v0_bad"]["error"] == failed["error"]
    assert rows[""]["n_videos"] == "3" and rows[""]["n_failed"] == "1"

    # unchanged, the failed video is tried again (and fails again); the others are reused
    again = run_batch(jobs, out, scheduler=scheduler_address)
    assert sorted(again.outcomes) == ["failed", "skipped", "skipped", "skipped"]

    shutil.copyfile(videos / "v1.avi", bad)  # "fixed": now a readable capture
    fixed = run_batch(collect_jobs([videos], DEFAULTS), out, scheduler=scheduler_address)
    outcome = dict(zip([j.sample for j in jobs], fixed.outcomes, strict=True))
    assert outcome == {"v0_bad": "analysed", "v1": "skipped", "v2": "skipped", "v3": "skipped"}
    assert fixed.records[0]["result"]["d50_nm"] == fixed.records[1]["result"]["d50_nm"]


def test_a_missing_manifest_video_fails_alone(videos, tmp_path, scheduler_address):
    manifest = tmp_path / "m.csv"
    manifest.write_text("video,sample\nvideos/plate1/v1.avi,a\nvideos/plate1/gone.avi,b\n")
    report = run_batch(collect_jobs([manifest], DEFAULTS), tmp_path / "out",
                       scheduler=scheduler_address)
    assert report.outcomes == ["analysed", "failed"]
    assert report.records[1]["error"] == f"{tmp_path / 'videos/plate1/gone.avi'}: file not found"


def test_a_second_batch_on_the_same_folder_is_refused(videos, tmp_path):
    from exotrace.batch._files import folder_lock

    out = tmp_path / "out"
    out.mkdir()
    with folder_lock(out), pytest.raises(Conflict, match="another exotrace batch"):
        run_batch(collect_jobs([videos], DEFAULTS), out, processes=False)


def test_an_unreadable_result_file_is_recomputed(videos, tmp_path, scheduler_address):
    out = tmp_path / "out"
    jobs = collect_jobs([videos / "v1.avi"], DEFAULTS)
    first = run_batch(jobs, out, scheduler=scheduler_address)
    (out / first.records[0]["result_file"]).write_text('{"schema": "exotrace-nta-batch-re')
    assert run_batch(jobs, out, scheduler=scheduler_address).outcomes == ["analysed"]
    assert json.loads((out / first.records[0]["result_file"]).read_text())["state"] == "ok"


@pytest.mark.parametrize(("workers", "cores", "expected"), [
    (None, 8, 8),  # no Dask worker: every core
    (1, 2, 2),     # one single-threaded worker on two cores: both for its video
    (2, 2, 1),     # one worker per core
    (3, 2, 1),     # more workers than cores: never below one
    (3, 8, 2),     # 8 // 3
    (4, 8, 2),
    (0, 4, 4),     # no worker counts as one
])
def test_each_video_gets_its_share_of_the_cores(workers, cores, expected):
    from exotrace.batch._task import cores_per_task

    assert cores_per_task(workers, cores) == expected


def test_a_video_on_one_core_gives_the_result_of_a_video_on_two(videos):
    from exotrace.batch import analyze_video

    settings = AnalysisSettings(**DEFAULTS)
    one = analyze_video(str(videos / "v1.avi"), settings, threads=1)
    two = analyze_video(str(videos / "v1.avi"), settings, threads=2)
    assert one["state"] == two["state"] == "ok"
    assert one["result"] == two["result"]
