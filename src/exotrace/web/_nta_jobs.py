"""NTA analyses of uploaded videos as background jobs, with progress.

A job runs ``exotrace nta analyze``'s pipeline (:func:`exotrace.nta.analyze_videos`)
on a worker thread of the server process (the NTA kernels release the GIL, so
the server keeps answering meanwhile). Jobs wait in a queue and run one at a time
by default (``EXOTRACE_NTA_WORKERS``), since one analysis already keeps a core busy.
The pipeline's progress hook (frames done) feeds the job's progress; pages poll it.

A job runs in the server process that accepted it; its state is written to
``<jobs folder>/<id>/job.json`` when it changes (progress at most every
second), and read from there by every server process that shares the upload
folder (``EXOTRACE_UPLOAD_DIR``; the jobs live in its ``jobs`` folder). A
job that was queued or running in a process that has since stopped reads as
failed ("the server stopped"); run it again. A result attached to a lot is in
the database.
"""

from __future__ import annotations

import logging
import os
import queue
import secrets
import shutil
import socket
import tempfile
import threading
import time
import weakref
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ..errors import ExotraceError, NotFound, StorageError
from ._uploads import (
    folder_ids,
    load_described,
    owner_or_admin,
    visible_newest_first,
    write_json_atomically,
)

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
        return owner_or_admin(self.owner_id, principal)

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

    def to_json(self) -> dict[str, Any]:
        """What ``job.json`` keeps: everything but the settings object (its dict and hash)."""
        return {"id": self.id, "owner_id": self.owner_id, "owner": self.owner,
                "upload_id": self.upload_id, "filename": self.filename, "video": str(self.video),
                "video_sha256": self.video_sha256, "settings": self.settings.to_dict(),
                "settings_sha256": self.settings_sha256, "frames_total": self.frames_total,
                "created_at": self.created_at.isoformat(), "state": self.state,
                "frames_done": self.frames_done,
                "started_at": self.started_at.isoformat() if self.started_at else None,
                "finished_at": self.finished_at.isoformat() if self.finished_at else None,
                "error": self.error, "result": self.result,
                "plot": str(self.plot) if self.plot else None, "note": self.note,
                "attached": self.attached,
                "videos": [[u, n, str(p)] for u, n, p in self.videos],
                "host": socket.gethostname(), "pid": os.getpid(),
                "process_started": _process_started(os.getpid())}

    @classmethod
    def from_json(cls, folder: Path, data: dict[str, Any]) -> NtaJob:
        """The job described by ``data`` (its ``job.json`` in ``folder``)."""
        def moment(text):
            return datetime.fromisoformat(text) if text else None

        job = cls(id=data["id"], owner_id=int(data["owner_id"]), owner=data["owner"],
                  upload_id=data["upload_id"], filename=data["filename"],
                  video=Path(data["video"]), video_sha256=data["video_sha256"],
                  settings=_StoredSettings(data.get("settings") or {}),
                  settings_sha256=data["settings_sha256"], frames_total=data.get("frames_total"),
                  created_at=moment(data["created_at"]), state=data["state"],
                  frames_done=int(data.get("frames_done") or 0),
                  started_at=moment(data.get("started_at")),
                  finished_at=moment(data.get("finished_at")), error=data.get("error"),
                  result=data.get("result"), note=data.get("note"),
                  plot=Path(data["plot"]) if data.get("plot") else None,
                  attached=list(data.get("attached") or []),
                  videos=[(u, n, Path(p)) for u, n, p in data.get("videos") or []])
        if not job.finished and not _alive(data.get("host"), data.get("pid"),
                                           data.get("process_started")):
            job.state, job.note = "failed", None
            job.error = ("the server stopped before this analysis finished; "
                         "start it again from the upload")
        return job

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


@dataclass(frozen=True)
class _StoredSettings:
    """The settings of a job read back from ``job.json`` (as their dict: enough to show
    them and to attach the result; the job itself ran with the full settings)."""

    data: dict[str, Any]

    def to_dict(self) -> dict[str, Any]:
        return dict(self.data)

    def __getattr__(self, name: str) -> Any:  # settings.fps, settings.method, ... as stored
        try:
            return self.__dict__["data"][name]
        except KeyError:
            raise AttributeError(name) from None


def _process_started(pid: int) -> str | None:
    """When process ``pid`` started (clock ticks since boot, Linux), or None when unknown:
    with the pid it names one process even after the pid is reused (a restarted
    container's server often gets the same pid)."""
    try:
        stat = Path(f"/proc/{int(pid)}/stat").read_text()
        return stat.rsplit(")", 1)[1].split()[19]
    except (OSError, ValueError, IndexError):
        return None


def _alive(host: str | None, pid: int | None, started: str | None) -> bool:
    """Whether the process that ran a job still runs (another host's: assumed so)."""
    if host != socket.gethostname():
        return True
    try:
        os.kill(int(pid), 0)
    except (TypeError, ValueError, ProcessLookupError):
        return False
    except PermissionError:
        return True
    return started is None or _process_started(int(pid)) in (None, started)


_META = "job.json"
#: Progress is written to ``job.json`` at most this often, seconds.
_PROGRESS_EVERY_S = 1.0


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
        self.root = root  # made with the first job
        self.workers = max(1, int(workers))
        #: Jobs queued or running in this process (the others are read from their files).
        self._jobs: dict[str, NtaJob] = {}
        self._queue: queue.Queue[NtaJob] = queue.Queue()
        self._lock = threading.Lock()
        self._threads: list[threading.Thread] = []

    def save(self, job: NtaJob) -> NtaJob:
        """Write ``job``'s state to its file, for every server process to read."""
        folder = self.root / job.id
        with self._lock:
            folder.mkdir(parents=True, exist_ok=True)
            write_json_atomically(folder / _META, job.to_json())
        return job

    def _load(self, job_id: str) -> NtaJob | None:
        with self._lock:
            mine = self._jobs.get(job_id)
        if mine is not None:  # queued or running here: the object is fresher than its file
            return mine
        return load_described(self.root, job_id, _META, NtaJob.from_json)

    def submit(self, job: NtaJob) -> NtaJob:
        try:
            self.save(job)
        except OSError as exc:
            raise StorageError(f"{job.filename}: the analysis cannot be queued: the jobs folder "
                               f"cannot be written ({exc.strerror or exc})") from None
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
        job = self._load(job_id)
        if job is None or not job.visible_to(principal):
            raise NotFound(f"analysis job {job_id} not found (or kept by a server without "
                           "EXOTRACE_UPLOAD_DIR that has restarted)")
        return job

    def list_for(self, principal) -> list[NtaJob]:
        on_disk = folder_ids(self.root)
        with self._lock:
            ids = list(dict.fromkeys([*self._jobs, *on_disk]))
        return visible_newest_first(map(self._load, ids), principal)

    def _loop(self) -> None:
        while True:
            job = self._queue.get()
            try:
                self._run(job)
            finally:
                try:
                    self.save(job)
                except OSError as exc:
                    _log.warning("NTA job %s: state not written: %s", job.id, exc)
                with self._lock:
                    self._jobs.pop(job.id, None)
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
            self.save(job)
        except OSError as exc:  # the folder is full or gone: the analysis still runs
            _log.warning("NTA job %s: state not written: %s", job.id, exc)
        last_saved = [time.monotonic()]

        def advance(frames: int) -> None:
            job._advance(frames)
            if time.monotonic() - last_saved[0] >= _PROGRESS_EVERY_S:
                last_saved[0] = time.monotonic()
                try:
                    self.save(job)
                except OSError:  # progress only; the final state is written after the run
                    pass
        try:
            result = analyze_videos([p for _, _, p in job.captures], s.acquisition(), calibration=s.calibration,
                                    dilution=s.dilution, invert=s.invert,
                                    threshold_sigma=s.threshold_sigma,
                                    radius_px=int(s.radius_px), binning=int(s.binning),
                                    min_diameter_nm=s.min_diameter_nm, method=s.method,
                                    engine=s.engine, progress=advance)
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
                upload_dir = app.state.settings.upload_dir
                jobs = NtaJobs(upload_dir / "jobs" if upload_dir else None, workers=workers)
                app.state.nta_jobs = jobs
    return jobs

