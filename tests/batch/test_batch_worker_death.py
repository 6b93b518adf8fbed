"""A video that kills its worker process fails alone; the batch goes on."""

from __future__ import annotations

import os
import shutil
import sys

import cloudpickle
import dask

from exotrace.batch import _run as run_module
from exotrace.batch import collect_jobs, run_batch

from .conftest import DEFAULTS


def _crash_on_some_videos(video, settings, *, threads=None):
    """Die like a worker whose video decoder crashes (no exception, the process is gone)."""
    if video.endswith("crash.avi"):
        os._exit(70)
    from exotrace.batch import analyze_video

    return analyze_video(video, settings, threads=threads)


def test_a_video_that_kills_its_worker_fails_alone(videos, tmp_path, monkeypatch):
    shutil.copyfile(videos / "v1.avi", videos / "crash.avi")
    # the worker processes cannot import this test module: ship the function by value
    cloudpickle.register_pickle_by_value(sys.modules[__name__])
    monkeypatch.setattr(run_module, "analyze_video", _crash_on_some_videos)
    try:
        # without retries: Dask would otherwise try the video on 3 more workers first
        with dask.config.set({"distributed.scheduler.allowed-failures": 0}):
            report = run_batch(collect_jobs([videos], DEFAULTS), tmp_path / "out", workers=1)
    finally:
        cloudpickle.unregister_pickle_by_value(sys.modules[__name__])
    outcome = {r["sample"]: (o, r["error"]) for r, o in zip(report.records, report.outcomes,
                                                             strict=True)}
    assert outcome["crash"][0] == "failed"
    assert outcome["crash"][1].startswith("worker lost while analysing: ")
    assert "\n" not in outcome["crash"][1]
    assert {k: v[0] for k, v in outcome.items() if k != "crash"} == {
        "v1": "analysed", "v2": "analysed", "v3": "analysed"}
