"""The task a Dask worker runs for one video: the ``nta analyze`` pipeline, errors caught.

It returns plain data only (no exception crosses the wire for a bad video):
the result, or the one-line error of a video that could not be analysed, so
one bad video never stops the batch.
"""

from __future__ import annotations

import math
import os
import socket
import time
from datetime import UTC, datetime
from typing import Any

from ..errors import ExotraceError
from ._jobs import AnalysisSettings

__all__ = ["analyze_video", "cores_per_task", "one_line", "plain"]


def plain(value: Any) -> Any:
    """JSON types only: tuples to lists, numpy values to Python, nan and inf to None.

    Records are compared, written with ``allow_nan=False`` and read back; they
    must be equal to what is read back.
    """
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    if hasattr(value, "tolist"):  # numpy arrays and scalars
        return plain(value.tolist())
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    return value


def one_line(exc: BaseException) -> str:
    """The error as one line (our errors as they are, others prefixed with their type)."""
    text = str(exc) if isinstance(exc, ExotraceError) else f"internal error: {type(exc).__name__}: {exc}"
    return " ".join(text.split())


def cores_per_task(workers_on_machine: int | None, cores: int | None = None) -> int:
    """Cores one video may use: the machine's cores shared among the single-threaded
    workers running on it (None: no Dask worker, every core)."""
    cores = cores or os.cpu_count() or 1
    return max(1, cores // max(1, workers_on_machine or 1))


def _in_dask_worker() -> bool:
    try:
        from distributed import get_worker

        get_worker()
    except (ImportError, ValueError):
        return False
    return True


def analyze_video(video: str, settings: AnalysisSettings, *,
                  threads: int | None = None) -> dict[str, Any]:
    """Analyse one video as ``exotrace nta analyze`` does.

    Parameters
    ----------
    video : str
        Path of the video as the worker sees it.
    settings : AnalysisSettings
    threads : int, optional
        Cores this video may use (1: decoding and detection in the task's own
        thread). A LocalCluster passes its share (:func:`cores_per_task`).
        Default: 1 inside a Dask worker of a cluster started with ``dask
        worker`` (one single-threaded worker per core, as docs/batch.md
        describes), every core when called directly. The result does not
        depend on it.

    Returns
    -------
    dict
        ``state`` ("ok" or "failed"), ``result`` (``NtaResult.to_dict()``, the
        ``nta analyze --json`` shape) or ``error`` (one line), ``seconds``
        (wall time of the analysis), ``cpu_seconds`` (CPU time of the worker process
        meanwhile), ``started_at``, ``worker`` (host:pid).
    """
    from ..nta import analyze_videos

    if threads is None:
        threads = 1 if _in_dask_worker() else cores_per_task(None)
    started = datetime.now(UTC)
    t0 = time.perf_counter()
    c0 = time.process_time()
    out: dict[str, Any] = {"worker": f"{socket.gethostname()}:{os.getpid()}",
                           "started_at": started.isoformat(), "threads": threads}
    try:
        result = analyze_videos([video], settings.acquisition(), calibration=settings.calibration,
                                dilution=settings.dilution, invert=settings.invert,
                                threshold_sigma=settings.threshold_sigma,
                                radius_px=int(settings.radius_px), binning=int(settings.binning),
                                min_diameter_nm=settings.min_diameter_nm,
                                method=settings.method, engine=settings.engine,
                                workers=0 if threads <= 1 else None)
        out.update(state="ok", error=None, result=plain(result.to_dict()))
    except Exception as exc:  # noqa: BLE001 - one bad video must not stop the batch
        out.update(state="failed", error=one_line(exc), result=None)
    out["seconds"] = time.perf_counter() - t0
    # CPU time of the worker process (one task at a time per worker process: this
    # task's); far below ``seconds`` x ``threads`` means the video waited for a core
    out["cpu_seconds"] = time.process_time() - c0
    return out
