"""NTA analyses of uploaded videos as background jobs, with progress.

A job runs ``exotrace nta analyze``'s pipeline (:func:`exotrace.nta.analyze_videos`)
on a worker thread of the server process (the NTA kernels release the GIL, so
the server keeps answering meanwhile). Jobs wait in a queue and run one at a time
by default (``EXOTRACE_NTA_WORKERS``), since one analysis already keeps a core busy.
The pipeline's progress hook (frames done) feeds the job's progress; pages poll it.

Job state lives in the memory of the server process, like the upload list
(:mod:`._uploads`): a restart forgets queued, running and finished jobs (a
result attached to a lot is in the database). One server process per
database is assumed for this page; several processes would each have their own
jobs.
"""

from __future__ import annotations

import logging
import os
import queue
import secrets
import shutil
import tempfile
import threading
import weakref
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ..errors import ExotraceError, NotFound

__all__ = ["STATES", "NtaJob", "NtaJobs", "new_job_id", "nta_jobs"]

_log = logging.getLogger("exotrace.web")
STATES = ("queued", "running", "done", "failed")


@dataclass
class NtaJob:
    """One analysis: its video(s), settings, state and progress, then result or error.

    Several captures of one sample are pooled as ``exotrace nta analyze a.avi b.avi``
    pools them: ``videos`` lists (upload id, file name, path) of each, ``filename``
    joins their names and ``video_sha256`` is the capture's SHA-256 (one video) or
    the SHA-256 of the captures' SHA-256s in order (pooled).
    """

    id: str
    owner_id: int
    owner: str
    upload_id: str
    filename: str
    video: Path
    video_sha256: str
    settings: Any  # exotrace.batch.AnalysisSettings
    settings_sha256: str
    frames_total: int | None
    created_at: datetime = field(default_factory=lambda: datetime.now(UTC))
    state: str = "queued"
    frames_done: int = 0
    started_at: datetime | None = None
    finished_at: datetime | None = None
    error: str | None = None
    #: ``NtaResult.to_dict()`` (the ``nta analyze --json`` shape), JSON types only.
    result: dict[str, Any] | None = None
    plot: Path | None = None
    #: Shown while the job runs (e.g. the one-time compilation of the kernels).
    note: str | None = None
    attached: list[dict[str, Any]] = field(default_factory=list)
    #: Every capture analysed: (upload id, file name, path); empty means ``video`` alone.
    videos: list[tuple[str, str, Path]] = field(default_factory=list)

    @property
    def captures(self) -> list[tuple[str, str, Path]]:
        return self.videos or [(self.upload_id, self.filename, self.video)]

    @property
    def upload_ids(self) -> list[str]:
        return [u for u, _, _ in self.captures]

    def _named(self, text: str) -> str:
        """``text`` with the server's paths of the captures replaced by their names."""
        for _, name, path in self.captures:
            text = text.replace(str(path), name)
        return text

    def visible_to(self, principal) -> bool:
        from ..records import Role

        return principal.user_id == self.owner_id or principal.role is Role.ADMIN

    @property
    def progress(self) -> float | None:
        """Fraction done, 0..1 (``None`` while the frame count is unknown)."""
        if self.state == "done":
            return 1.0
        if not self.frames_total:
            return None
        return min(1.0, self.frames_done / self.frames_total)

    @property
    def finished(self) -> bool:
        return self.state in ("done", "failed")

    def _advance(self, frames: int = 1) -> None:
        self.frames_done += int(frames)

    def view(self, *, with_result: bool = True) -> dict[str, Any]:
        """JSON-ready state (``result`` once done)."""
        out = {"id": self.id, "upload": self.upload_id, "filename": self.filename,
               "uploads": self.upload_ids, "owner": self.owner, "state": self.state, "frames_done": self.frames_done,
               "frames_total": self.frames_total, "progress": self.progress,
               "error": self.error, "note": self.note, "settings": self.settings.to_dict(),
               "created_at": self.created_at.isoformat(),
               "started_at": self.started_at.isoformat() if self.started_at else None,
               "finished_at": self.finished_at.isoformat() if self.finished_at else None,
               "attached": list(self.attached), "page": f"/upload/jobs/{self.id}"}
        if with_result:
            out["result"] = self.result
        return out


class NtaJobs:
    """The job queue and its worker threads (started at the first job).

    Parameters
    ----------
    root : Path or None
        Folder for the jobs' plots (``None``: a temporary folder removed with the queue).
    workers : int
        Analyses run at the same time.
    """

    def __init__(self, root: Path | None = None, workers: int = 1) -> None:
        if root is None:
            root = Path(tempfile.mkdtemp(prefix="exotrace-nta-jobs-"))
            self._cleanup = weakref.finalize(self, shutil.rmtree, root, ignore_errors=True)
        root.mkdir(parents=True, exist_ok=True)
        self.root = root
        self.workers = max(1, int(workers))
        self._jobs: dict[str, NtaJob] = {}
        self._queue: queue.Queue[NtaJob] = queue.Queue()
        self._lock = threading.Lock()
        self._threads: list[threading.Thread] = []

    def submit(self, job: NtaJob) -> NtaJob:
        with self._lock:
            self._jobs[job.id] = job
            if not self._threads:
                for i in range(self.workers):
                    # Daemon threads: stopping the server never waits for a 2 GB analysis.
                    t = threading.Thread(target=self._loop, name=f"exotrace-nta-{i}",
                                         daemon=True)
                    t.start()
                    self._threads.append(t)
        self._queue.put(job)
        return job

    def get(self, job_id: str, principal) -> NtaJob:
        """The job if ``principal`` may see it (owner or admin); else NotFound."""
        with self._lock:
            job = self._jobs.get(job_id)
        if job is None or not job.visible_to(principal):
            raise NotFound(f"analysis job {job_id} not found (jobs are kept until the server "
                           "restarts)")
        return job

    def list_for(self, principal) -> list[NtaJob]:
        with self._lock:
            jobs = list(self._jobs.values())
        return sorted((j for j in jobs if j.visible_to(principal)),
                      key=lambda j: j.created_at, reverse=True)

    def _loop(self) -> None:
        while True:
            job = self._queue.get()
            try:
                self._run(job)
            finally:
                self._queue.task_done()

    def _run(self, job: NtaJob) -> None:
        from ..batch._task import one_line, plain
        from ..nta import analyze_videos
        from ..nta._kernels import kernels_cached
        from ..nta.plots import plot_distribution

        job.state, job.started_at = "running", datetime.now(UTC)
        s = job.settings
        if s.engine != "numpy" and not kernels_cached():
            job.note = ("compiling the NTA kernels once (about a minute; `exotrace nta warmup` "
                        "does it ahead)")
        try:
            result = analyze_videos([p for _, _, p in job.captures], s.acquisition(), calibration=s.calibration,
                                    dilution=s.dilution, invert=s.invert,
                                    threshold_sigma=s.threshold_sigma,
                                    radius_px=int(s.radius_px), binning=int(s.binning),
                                    min_diameter_nm=s.min_diameter_nm, method=s.method,
                                    engine=s.engine, progress=job._advance)
            data = plain(result.to_dict())
            # The server's path of the upload is nobody's business: name the file.
            data["videos"] = [{**v, "source": job._named(str(v.get("source", "")))}
                              for v in data.get("videos") or []]
            data["warnings"] = [job._named(w) for w in data.get("warnings") or []]
            folder = self.root / job.id
            folder.mkdir(parents=True, exist_ok=True)
            # "$" would start matplotlib's math text: a file name is plain text.
            job.plot = plot_distribution(result.distribution, folder / "distribution.svg",
                                         title=job.filename.replace("$", r"\$"))
            job.result = data
            job.state, job.note = "done", None
        except ExotraceError as exc:
            job.error = job._named(one_line(exc))
            job.state = "failed"
        except Exception as exc:  # noqa: BLE001 - a failed job must not stop the worker
            _log.exception("NTA job %s failed", job.id)
            job.error = job._named(one_line(exc))
            job.state = "failed"
        finally:
            job.finished_at = datetime.now(UTC)


def new_job_id() -> str:
    return secrets.token_urlsafe(12)


_JOBS_LOCK = threading.Lock()


def nta_jobs(app) -> NtaJobs:
    """The app's :class:`NtaJobs`, made at first use."""
    jobs = getattr(app.state, "nta_jobs", None)
    if jobs is None:
        with _JOBS_LOCK:
            jobs = getattr(app.state, "nta_jobs", None)
            if jobs is None:
                text = os.environ.get("EXOTRACE_NTA_WORKERS", "1").strip()
                workers = int(text) if text.isdigit() else 1
                jobs = NtaJobs(workers=workers)
                app.state.nta_jobs = jobs
    return jobs

