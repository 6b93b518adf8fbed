"""Run a batch on Dask: one task per video, results written as they arrive.

The coordinating process (this one) hashes each video, skips those whose
result for the same video bytes and settings is already in the output folder,
submits the others to a Dask cluster (a ``LocalCluster`` of one
single-threaded worker process per core by default, or the scheduler of an
existing cluster), gathers them with ``as_completed``, writes each result
file atomically and finally ``summary.csv``. Failed videos are recorded with
their one-line error and analysed again on the next run.
"""

from __future__ import annotations

import json
import logging
import os
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any

from ..errors import ConfigurationError, ExotraceError, InvalidInput
from ._files import atomic_write_text, folder_lock, remove_stale_temp_files, sha256_file
from ._jobs import VideoJob, result_file_name, settings_sha256
from ._summary import SUMMARY_NAME, write_summary
from ._task import analyze_video, cores_per_task, one_line, plain

__all__ = ["RESULT_SCHEMA", "BatchReport", "load_result", "run_batch"]

RESULT_SCHEMA = "exotrace-nta-batch-result/1"
#: Seconds to wait for a scheduler to answer and for its first worker.
CONNECT_TIMEOUT_S = 20

#: The scheduler serves health checks over HTTP even without a dashboard, by
#: default on port 8787; a random port lets several batches share a machine.
NO_FIXED_PORTS = {"dashboard_address": ":0"}

OnRecord = Callable[[dict[str, Any], str], None]


@dataclass
class BatchReport:
    """What a run did.

    Attributes
    ----------
    out_dir : Path
    records : list of dict
        One result record per job, in job order (the content of its JSON file).
    outcomes : list of str
        Per job: ``"analysed"``, ``"skipped"`` (result reused) or ``"failed"``.
    summary_csv : Path
    seconds : float
        Wall time of the run, s.
    workers : int
        Dask workers used (0 when nothing had to be analysed).
    scheduler : str or None
        Scheduler address when an existing cluster was used.
    """

    out_dir: Path
    records: list[dict[str, Any]] = field(default_factory=list)
    outcomes: list[str] = field(default_factory=list)
    summary_csv: Path | None = None
    seconds: float = 0.0
    workers: int = 0
    scheduler: str | None = None

    def count(self, outcome: str) -> int:
        return sum(1 for o in self.outcomes if o == outcome)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready report (the ``exotrace nta batch --json`` shape)."""
        return {
            "out": str(self.out_dir), "summary_csv": str(self.summary_csv),
            "videos": len(self.records), "analysed": self.count("analysed"),
            "skipped": self.count("skipped"), "failed": self.count("failed"),
            "seconds": self.seconds, "workers": self.workers, "scheduler": self.scheduler,
            "results": [_brief(r, o) for r, o in zip(self.records, self.outcomes, strict=True)],
        }


def _brief(record: dict[str, Any], outcome: str) -> dict[str, Any]:
    res = record.get("result") or {}
    return {"sample": record["sample"], "group": record["group"], "video": record["video"],
            "outcome": outcome, "state": record["state"], "error": record["error"],
            "d50_nm": res.get("d50_nm"), "particles_per_ml": res.get("particles_per_ml"),
            "result_file": record["result_file"]}


def load_result(path: Path) -> dict[str, Any] | None:
    """A result record from its file, ``None`` when absent or not a readable record."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict) or data.get("schema") != RESULT_SCHEMA:
        return None
    return data


def _record(job: VideoJob, video_sha: str | None, settings_sha: str, name: str,
            outcome: dict[str, Any]) -> dict[str, Any]:
    return plain({
        "schema": RESULT_SCHEMA,
        "state": outcome["state"], "error": outcome.get("error"),
        "video": str(job.video), "sample": job.sample, "group": job.group, "lot": job.lot,
        "video_sha256": video_sha, "settings_sha256": settings_sha,
        "settings": job.settings.to_dict(), "result_file": name,
        "started_at": outcome.get("started_at"),
        "finished_at": datetime.now(UTC).isoformat(),
        "seconds": outcome.get("seconds"), "cpu_seconds": outcome.get("cpu_seconds"),
        "worker": outcome.get("worker"), "threads": outcome.get("threads"),
        "result": outcome.get("result"),
    })


def _write(out_dir: Path, record: dict[str, Any]) -> None:
    atomic_write_text(out_dir / record["result_file"],
                      json.dumps(record, indent=1, allow_nan=False) + "\n")


def _start_client(scheduler: str | None, workers: int | None, processes: bool):
    """A Dask client (and the LocalCluster it owns, or None)."""
    from distributed import Client, LocalCluster

    if scheduler:
        try:
            client = Client(scheduler, timeout=f"{CONNECT_TIMEOUT_S}s")
        except (OSError, TimeoutError, ValueError) as exc:
            raise ConfigurationError(f"cannot reach the Dask scheduler at {scheduler}: "
                                     f"{' '.join(str(exc).split())}") from None
        try:
            client.wait_for_workers(1, timeout=CONNECT_TIMEOUT_S)
        except TimeoutError:
            client.close()
            raise ConfigurationError(f"the Dask scheduler at {scheduler} has no worker; start "
                                     f"some with `dask worker {scheduler}`") from None
        return client, None
    import dask

    n = workers or os.cpu_count() or 1
    # Single-threaded worker processes, one per core by default; each video then
    # gets its share of the cores (:func:`cores_per_task`). A worker holds one
    # video at a time (saturation 1.0; Dask's default 1.1 sends a second one
    # ahead): a video takes seconds to minutes, so sending ahead gains nothing,
    # and a worker that dies would take the video waiting there down with it.
    with dask.config.set({"distributed.scheduler.worker-saturation": 1.0}):
        cluster = LocalCluster(n_workers=n, threads_per_worker=1, processes=processes,
                               dashboard_address=None, silence_logs=logging.ERROR,
                               scheduler_kwargs=NO_FIXED_PORTS)
    return Client(cluster), cluster


def run_batch(jobs: Sequence[VideoJob], out_dir: str | Path, *, scheduler: str | None = None,
              workers: int | None = None, processes: bool = True,
              on_record: OnRecord | None = None) -> BatchReport:
    """Analyse every job on Dask, reusing results already in ``out_dir``.

    Parameters
    ----------
    jobs : sequence of VideoJob
        From :func:`collect_jobs`.
    out_dir : path
        Output folder (created): one ``<sample>.<video hash>.<settings hash>.json``
        per video and ``summary.csv``.
    scheduler : str, optional
        Address of an existing Dask scheduler (``tcp://host:8786``); default a
        ``LocalCluster`` started and stopped here.
    workers : int, optional
        LocalCluster workers (default: one per core). Ignored with ``scheduler``.
    processes : bool
        LocalCluster workers as processes (default) or threads of this process
        (small batches and tests: no start-up cost, but one core at a time).
    on_record : callable, optional
        ``on_record(record, outcome)`` for each job once its record is final
        and written (outcome ``"analysed"``, ``"skipped"`` or ``"failed"``),
        in this process: progress display, storing on lots.

    Returns
    -------
    BatchReport

    Raises
    ------
    Conflict
        Another batch is writing to ``out_dir``.
    ConfigurationError
        The scheduler cannot be reached or has no worker.
    """
    if workers is not None and workers < 1:
        raise InvalidInput(f"--workers must be at least 1, got {workers}")
    t0 = time.perf_counter()
    out = Path(out_dir)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigurationError(f"{out}: cannot create the output folder: "
                                 f"{exc.strerror or exc}") from None
    report = BatchReport(out_dir=out, scheduler=scheduler)
    report.records = [None] * len(jobs)  # type: ignore[list-item]
    report.outcomes = [""] * len(jobs)
    with folder_lock(out):
        remove_stale_temp_files(out)

        def finish(i: int, record: dict[str, Any], outcome: str, *, write: bool) -> None:
            if write:
                _write(out, record)
            report.records[i] = record
            report.outcomes[i] = outcome
            if on_record is not None:
                on_record(record, outcome)

        pending: list[tuple[int, str, str, str]] = []
        for i, job in enumerate(jobs):
            s_sha = settings_sha256(job.settings)
            try:
                v_sha = sha256_file(job.video)
            except ExotraceError as exc:
                name = result_file_name(job.sample, "0" * 12, s_sha)
                finish(i, _record(job, None, s_sha, name, {"state": "failed",
                                                           "error": one_line(exc)}),
                       "failed", write=True)
                continue
            name = result_file_name(job.sample, v_sha, s_sha)
            old = load_result(out / name)
            if (old is not None and old.get("state") == "ok" and old.get("video_sha256") == v_sha
                    and old.get("settings_sha256") == s_sha):
                # labels may have changed in the manifest; the numbers have not
                old.update(sample=job.sample, group=job.group, lot=job.lot, video=str(job.video))
                finish(i, old, "skipped", write=False)
            else:
                pending.append((i, v_sha, s_sha, name))
        try:
            if pending:
                _analyse(jobs, pending, scheduler, workers, processes, report, finish)
        finally:
            done = [(r, o) for r, o in zip(report.records, report.outcomes, strict=True)
                    if r is not None]
            report.summary_csv = write_summary(out / SUMMARY_NAME, [r for r, _ in done])
    report.seconds = time.perf_counter() - t0
    return report


def _analyse(jobs, pending, scheduler, workers, processes, report, finish) -> None:
    from distributed import as_completed

    client, cluster = _start_client(scheduler, workers, processes)
    try:
        report.workers = len(client.scheduler_info().get("workers", {}))
        run_id = uuid.uuid4().hex[:8]
        # one graph update for all videos: Dask then queues them on the
        # scheduler (one per worker thread) instead of sending them ahead
        # A LocalCluster's workers share this machine's cores: each video gets its
        # share (1 core each with one worker per core). Remote workers decide on
        # their own machine (cores / the worker's threads).
        threads = cores_per_task(report.workers) if cluster is not None else None
        submitted = client.map(partial(analyze_video, threads=threads),
                               [str(jobs[p[0]].video) for p in pending],
                               [jobs[p[0]].settings for p in pending], pure=False,
                               key=[f"nta-{run_id}-{i}-{v[:8]}-{s[:8]}"
                                    for i, v, s, _ in pending])
        futures = dict(zip(submitted, pending, strict=True))
        for fut in as_completed(list(futures)):
            i, v_sha, s_sha, name = futures.pop(fut)
            if fut.status == "finished":
                outcome = fut.result()
            else:
                # the worker died (KilledWorker) or the task was cancelled: that
                # video fails, the others go on
                exc = fut.exception() if fut.status == "error" else None
                outcome = {"state": "failed",
                           "error": ("the Dask task was cancelled" if exc is None else
                                     "worker lost while analysing: " + one_line(exc))}
            fut.release()
            record = _record(jobs[i], v_sha, s_sha, name, outcome)
            finish(i, record, "analysed" if record["state"] == "ok" else "failed", write=True)
    finally:
        client.close()
        if cluster is not None:
            cluster.close()
