"""Tiny simulated videos and a shared in-process Dask cluster for the batch tests."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from exotrace.nta.simulate import simulate

# 128 x 128 px, 30 frames at 4e9/mL: ~13 spots per frame and ~20 tracks, enough for
# the pipeline to give a distribution; about a second to simulate and analyse.
TINY = dict(diameters_nm=(100.0,), particles_per_ml=4e9, n_frames=30, width_px=128,
            height_px=128, exposure_ms=30.0, fps=25.0, pixel_size_nm=140.0,
            temperature_c=22.0)
SEEDS = (1, 2, 3)
#: Command-line settings of the TINY videos (``AnalysisSettings`` keyword arguments).
DEFAULTS = {"pixel_size_nm": 140.0, "fps": 25.0, "temperature_c": 22.0, "exposure_ms": 30.0}
CLI_SETTINGS = ["--pixel-size-nm", "140", "--fps", "25", "--temperature-c", "22",
                "--exposure-ms", "30"]


@pytest.fixture(scope="session")
def tiny_video_dir(tmp_path_factory) -> Path:
    """Three simulated AVIs (v1, v2, v3; seeds 1-3), simulated once per session."""
    folder = tmp_path_factory.mktemp("tiny_videos")
    for seed in SEEDS:
        simulate(folder / f"v{seed}.avi", seed=seed, **TINY)
        (folder / f"v{seed}.json").unlink()  # the ground-truth sidecar is not a video
    return folder


@pytest.fixture
def videos(tiny_video_dir, tmp_path) -> Path:
    """A private copy of the three videos in ``<tmp>/videos/plate1`` (tests change it)."""
    target = tmp_path / "videos" / "plate1"
    shutil.copytree(tiny_video_dir, target)
    return target


@pytest.fixture(scope="module")
def scheduler_address():
    """A one-worker, in-process (threads) Dask cluster: no process start-up per test."""
    from distributed import LocalCluster

    from exotrace.batch._run import NO_FIXED_PORTS

    with LocalCluster(n_workers=1, threads_per_worker=1, processes=False,
                      dashboard_address=None, scheduler_kwargs=NO_FIXED_PORTS) as cluster:
        yield cluster.scheduler_address
