"""Many videos on Dask: scaling from 1 to 2 workers and the overhead the cluster adds.

Runs the same 40 analyses three ways and prints the times and a Markdown table:

* in-process, one after another on one core (the task function called
  directly with ``threads=1``, no Dask; BLAS single-threaded as in a Dask
  worker): the one-core reference;
* ``run_batch`` on a LocalCluster of 1 worker process (on a 2-core machine
  its videos get both cores: decoding and centring threads);
* ``run_batch`` on a LocalCluster of 2 worker processes (one core each);

then a rerun with every result already there (hashing and skipping only).

* scaling efficiency = t(one core) / (2 x (t(2 workers) - cluster start-up and
  stop)): 100 % means the two workers analyse twice as fast as one core; also
  without each worker's warm-up (its first video's extra time: the pipeline's
  imports and the compiled kernels loaded once per worker process);
  start-up is timed on its own (a LocalCluster of the same size started and
  stopped);
* analysis CPU time: the CPU seconds the analyses used (``time.process_time``
  around each); equal CPU with a longer wall time means the analyses waited
  for a core, i.e. other jobs on the machine, not Dask;
* time outside the analysis per video = (t(1 worker) - start-up - the analysis
  time the worker measured) / 40: the same overhead, measured without
  comparing two runs (on a shared machine, the two runs' analyses are slowed
  by different amounts by other jobs).

The 40 videos are 10 copies of each of 4 simulated captures (256 x 256 px,
100 frames, 100 nm at 2e9/mL; each copy is analysed in full: it is another
file, sample and result) so that simulating them takes seconds, not minutes.

Usage: ``python benchmarks/nta_batch.py [--videos 40] [--frames 100]``.
"""

from __future__ import annotations

import os

# As Dask's nanny sets them in its workers: the in-process reference uses one core.
for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import platform  # noqa: E402
import shutil  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

from exotrace.batch import AnalysisSettings, analyze_video, collect_jobs, run_batch  # noqa: E402
from exotrace.batch._run import _start_client  # noqa: E402
from exotrace.nta.simulate import simulate  # noqa: E402

SETTINGS = {"pixel_size_nm": 140.0, "fps": 25.0, "temperature_c": 22.0, "exposure_ms": 30.0}
_DISTINCT = 4


def make_videos(folder: Path, n_videos: int, frames: int) -> list[Path]:
    originals = []
    for seed in range(_DISTINCT):
        path = folder / f"capture{seed}.avi"
        simulate(path, diameters_nm=(100.0,), particles_per_ml=2e9, n_frames=frames,
                 width_px=256, height_px=256, seed=seed)
        path.with_suffix(".json").unlink()
        originals.append(path)
    videos = []
    for i in range(n_videos):
        target = folder / f"v{i:03d}.avi"
        shutil.copyfile(originals[i % _DISTINCT], target)
        videos.append(target)
    for p in originals:
        p.unlink()
    return videos


def first_video_extra(records) -> float:
    """How much longer each worker's first video took than its median one, averaged over
    the workers: importing the pipeline and loading the compiled kernels."""
    import statistics

    by_worker: dict[str, list[dict]] = {}
    for r in records:
        by_worker.setdefault(r["worker"], []).append(r)
    extras = []
    for runs in by_worker.values():
        runs.sort(key=lambda r: r["started_at"])
        extras.append(runs[0]["seconds"] - statistics.median(r["seconds"] for r in runs))
    return statistics.mean(extras)


def startup_seconds(workers: int) -> float:
    t0 = time.perf_counter()
    client, cluster = _start_client(None, workers, True)
    client.close()
    cluster.close()
    return time.perf_counter() - t0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--videos", type=int, default=40)
    parser.add_argument("--frames", type=int, default=100)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="exotrace-batch-bench-") as tmp:
        tmp = Path(tmp)
        (tmp / "videos").mkdir()
        t0 = time.perf_counter()
        videos = make_videos(tmp / "videos", args.videos, args.frames)
        print(f"simulated {len(videos)} videos in {time.perf_counter() - t0:.1f} s")
        settings = AnalysisSettings(**SETTINGS)
        analyze_video(str(videos[0]), settings, threads=1)  # loads the compiled kernels once

        t0 = time.perf_counter()
        serial_runs = [analyze_video(str(v), settings, threads=1) for v in videos]
        t_serial = time.perf_counter() - t0
        serial_each = [r["seconds"] for r in serial_runs]
        cpu = {0: sum(r["cpu_seconds"] for r in serial_runs)}
        print(f"in-process, one core: {t_serial:.1f} s ({t_serial / len(videos):.2f} s/video)")

        jobs = collect_jobs([tmp / "videos"], SETTINGS)
        times, startup, worker_cpu, warmup = {}, {}, {}, {}
        for workers in (1, 2):
            startup[workers] = startup_seconds(workers)
            report = run_batch(jobs, tmp / f"out{workers}", workers=workers)
            assert report.count("analysed") == len(videos), report.to_dict()
            times[workers] = report.seconds
            worker_cpu[workers] = sum(r["seconds"] for r in report.records)
            cpu[workers] = sum(r["cpu_seconds"] for r in report.records)
            warmup[workers] = first_video_extra(report.records)
            print(f"{workers} worker(s): {report.seconds:.1f} s (cluster start+stop "
                  f"{startup[workers]:.1f} s; analysis time in workers {worker_cpu[workers]:.1f} s, "
                  f"CPU {cpu[workers]:.1f} s; a worker's first video takes "
                  f"{warmup[workers]:.1f} s longer: imports and kernel loading)")
        t0 = time.perf_counter()
        rerun = run_batch(jobs, tmp / "out2", workers=2)
        t_rerun = time.perf_counter() - t0
        assert rerun.count("skipped") == len(videos)

    n = len(videos)
    efficiency = t_serial / (2 * (times[2] - startup[2]))
    warm = t_serial / (2 * (times[2] - startup[2] - warmup[2]))
    print(f"scaling efficiency, 2 workers against one core: {100 * efficiency:.0f} % "
          f"({100 * warm:.0f} % once the workers are warm)")
    outside = (times[1] - startup[1] - worker_cpu[1]) / n
    print(f"time outside the analysis per video (1 worker): {1000 * outside:.0f} ms")
    print(f"rerun, all {n} reused: {t_rerun:.2f} s")
    print()
    print(f"{time.strftime('%Y-%m-%d')}, {platform.machine()}, {os.cpu_count()} cores, "
          f"{n} videos of 256 x 256 px x {args.frames} frames")
    print()
    print("| run | wall time | per video | vs in-process | analysis CPU time |")
    print("|---|---|---|---|---|")
    print(f"| in-process, one core (no Dask) | {t_serial:.1f} s | {t_serial / n:.2f} s | 1.00x | "
          f"{cpu[0]:.1f} s |")
    for w in (1, 2):
        print(f"| LocalCluster, {w} worker process{'es' if w > 1 else ''} | {times[w]:.1f} s | "
              f"{times[w] / n:.2f} s | {t_serial / times[w]:.2f}x | {cpu[w]:.1f} s |")
    print(f"| rerun, every result reused | {t_rerun:.2f} s | {t_rerun / n * 1000:.0f} ms | | |")
    print()
    print(f"scaling efficiency {100 * efficiency:.0f} % (2 workers against one core; "
          f"{100 * warm:.0f} % without the workers' first-video warm-up of "
          f"{warmup[2]:.1f} s); "
          f"cluster start + stop {startup[1]:.1f} s (1 worker) / {startup[2]:.1f} s "
          f"(2 workers); {1000 * outside:.0f} ms per video outside the analysis (1 worker); "
          f"mean one-core analysis {sum(serial_each) / n:.2f} s/video")


if __name__ == "__main__":
    main()
