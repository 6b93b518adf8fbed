"""Detection over a stream of frames on every core, results in frame order.

Three things run at once: a thread decodes the next chunks of the video
(PyAV releases the GIL while ffmpeg decodes), the calling thread band-passes
the frames in order (each frame's background and noise are measured against
the previous frame's, so this stage is sequential), and worker threads find
and centre the spots of the band-passed frames, which needs no other frame
(the numba kernels release the GIL). The spots are the serial run's, to the
bit: every frame goes through the same functions with the same inputs.

Memory stays bounded whatever the video's length: at most
:data:`PREFETCH_CHUNKS` decoded chunks wait, and at most ``2 x workers + 2``
band-passed frames are in flight.
"""

from __future__ import annotations

import os
import queue
import threading
from collections import deque
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from ._detect import FrameLocator, FrameSpots

__all__ = ["PREFETCH_CHUNKS", "default_decode_threads", "default_workers", "frame_spots",
           "prefetch"]

# Decoded chunks waiting for detection (16 float32 1280 x 1024 frames: 80 MiB each).
PREFETCH_CHUNKS = 1


def default_workers() -> int:
    """Threads that centre spots: one core is the band-pass's and the decoder's."""
    return max(1, min(os.cpu_count() or 1, 8) - 1)


def default_decode_threads() -> int:
    """Threads that decode a video whose codec allows it (one per core, at most 4).

    Decoding a lossless capture costs about twice the CPU of the rest of the
    tracking, so it gets every core; the operating system shares them with
    the band-pass and the spot centring.
    """
    return max(1, min(os.cpu_count() or 1, 4))


class _Failed:
    """An exception raised by the producer, re-raised in the consumer."""

    def __init__(self, exc: BaseException):
        self.exc = exc


_DONE = object()


def prefetch(items: Iterable, depth: int = PREFETCH_CHUNKS) -> Iterator:
    """Iterate ``items`` in a background thread, at most ``depth`` items ahead.

    Exceptions of the producer are raised in the consumer, where the item
    would have been; when the consumer stops early, the producer stops too.
    """
    q: queue.Queue = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def put(item) -> bool:
        while not stop.is_set():
            try:
                q.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def produce() -> None:
        try:
            for item in items:
                if not put(item):
                    return
        except BaseException as exc:  # noqa: BLE001 - handed to the consumer
            put(_Failed(exc))
            return
        put(_DONE)

    thread = threading.Thread(target=produce, name="exotrace-decode", daemon=True)
    thread.start()
    try:
        while True:
            item = q.get()
            if item is _DONE:
                return
            if isinstance(item, _Failed):
                raise item.exc
            yield item
    finally:
        stop.set()
        thread.join()


def frame_spots(chunks: Iterable[tuple[int, np.ndarray, float | None]], locator: FrameLocator,
                *, weak_fraction: float, workers: int | None = None
                ) -> Iterator[tuple[int, FrameSpots, int]]:
    """Spots of every frame of ``chunks`` (``(first_index, frames, saturation)``), in order.

    Yields ``(frame_index, spots, done)``: ``done`` is the size of the chunk
    whose last frame this is, else 0 (for progress reports). ``workers`` 0
    runs everything in the calling thread (the reference the threaded run
    must equal); ``None``: :func:`default_workers`.
    """
    workers = default_workers() if workers is None else int(workers)
    if workers <= 0:
        for first, chunk, level in chunks:
            for k in range(chunk.shape[0]):
                sp = locator.spots(chunk[k], weak_fraction=weak_fraction, saturation=level)
                yield first + k, sp, chunk.shape[0] if k == chunk.shape[0] - 1 else 0
        return
    depth = 2 * workers + 2
    pending: deque = deque()
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="exotrace-spots") as pool:
        try:
            for first, chunk, level in prefetch(chunks):
                for k in range(chunk.shape[0]):
                    prepared = locator.prepare(chunk[k], weak_fraction=weak_fraction, copy=True)
                    done = chunk.shape[0] if k == chunk.shape[0] - 1 else 0
                    pending.append((first + k, pool.submit(locator.finish, prepared, level),
                                    done))
                    while len(pending) >= depth:
                        f, fut, d = pending.popleft()
                        yield f, fut.result(), d
            while pending:
                f, fut, d = pending.popleft()
                yield f, fut.result(), d
        finally:
            for _, fut, _ in pending:
                fut.cancel()
