"""Video frames decoded by ffmpeg (PyAV), on one thread or several.

Lossless capture codecs such as FFV1 cost about as much CPU to decode as the
whole tracking, and ffmpeg decodes an FFV1 stream of one slice on one core
whatever its thread settings (each frame's entropy-coder state continues the
previous frame's). Their keyframes reset that state, so the groups of frames
that start at each keyframe (GOPs, 12 frames by default) decode independently:
with ``threads`` > 1 each thread opens the file with its own decoder and
decodes every ``threads``-th GOP, and the frames are handed out in order. A
GOP decoded from its keyframe is what a serial decoder produces from the same
packets, to the bit; the codecs for which that holds are listed in
:data:`GOP_PARALLEL_CODECS` (intra-only codecs whose keyframes restart the
decoder); any other codec is decoded on one thread.

Memory stays bounded: each thread holds at most :data:`_QUEUED_FRAMES`
decoded frames ahead of the consumer.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterator

import numpy as np

from ..errors import FileFormatError

__all__ = ["GOP_PARALLEL_CODECS", "video_frames"]

# Codecs whose packets from a keyframe on decode alone (every frame is coded
# without reference to others except through entropy-coder state that the
# keyframe resets). rawvideo is not listed: it costs a copy per frame.
GOP_PARALLEL_CODECS = frozenset({"ffv1", "mjpeg", "png"})
# Frames a decoding thread may hold ahead of the consumer (1.25 MiB each at
# 1280 x 1024 x 8 bit).
_QUEUED_FRAMES = 16


def _decode_error(path: str, index: int, exc: Exception) -> FileFormatError:
    return FileFormatError(path, f"cannot decode frame {index}: {exc}; the file may be "
                           "truncated or corrupt")


def _check_count(path: str, decoded: int, expected: int | None) -> None:
    if decoded == 0:
        raise FileFormatError(path, "the video holds no decodable frame")
    if expected and decoded < expected:
        raise FileFormatError(path, f"truncated: the header announces {expected} frames but "
                              f"only {decoded} could be decoded")


def _serial(path: str, fmt: str, expected: int | None, *, one_thread: bool
            ) -> Iterator[tuple[int, np.ndarray]]:
    import av

    i = 0
    try:
        with av.open(path) as container:
            stream = container.streams.video[0]
            if one_thread:  # ffmpeg's own slice/frame threads would take every core
                stream.codec_context.thread_count = 1
            for frame in container.decode(stream):
                yield i, frame.to_ndarray(format=fmt)
                i += 1
    except av.error.FFmpegError as exc:
        raise _decode_error(path, i, exc) from None
    _check_count(path, i, expected)


class _Stop(Exception):
    """The consumer went away: the decoding thread ends."""


_GOP_END = object()
_STREAM_END = object()


def _decode_share(path: str, fmt: str, rank: int, threads: int, out: queue.Queue,
                  stop: threading.Event) -> None:
    """Decode GOPs ``rank``, ``rank + threads``, ... of ``path`` into ``out``.

    Puts each frame, :data:`_GOP_END` after each of its GOPs, then
    :data:`_STREAM_END`; an exception is put where it happened.
    """
    import av

    def put(item) -> None:
        while True:
            if stop.is_set():
                raise _Stop
            try:
                out.put(item, timeout=0.1)
                return
            except queue.Full:
                continue

    try:
        with av.open(path) as container:
            stream = container.streams.video[0]
            # one decoder thread of ffmpeg's own: no frame delay, and the
            # frames of a GOP come out while its packets go in
            stream.thread_type = "SLICE"
            stream.codec_context.thread_count = 1
            ctx = stream.codec_context
            gop = -1
            mine = False
            for packet in container.demux(stream):
                if packet.size == 0:
                    continue  # the demuxer's end-of-stream marker
                if packet.is_keyframe or gop < 0:
                    if mine:
                        for frame in ctx.decode(None):  # drain (nothing, for these codecs)
                            put(frame.to_ndarray(format=fmt))
                        ctx.flush_buffers()
                        put(_GOP_END)
                    gop += 1
                    mine = gop % threads == rank
                if mine:
                    for frame in ctx.decode(packet):
                        put(frame.to_ndarray(format=fmt))
            if mine:
                for frame in ctx.decode(None):
                    put(frame.to_ndarray(format=fmt))
                put(_GOP_END)
            put(_STREAM_END)
    except _Stop:
        return
    except BaseException as exc:  # noqa: BLE001 - handed to the consumer in order
        try:
            put(exc)
        except _Stop:
            return


def _gop_parallel(path: str, fmt: str, expected: int | None, threads: int
                  ) -> Iterator[tuple[int, np.ndarray]]:
    import av

    queues = [queue.Queue(maxsize=_QUEUED_FRAMES) for _ in range(threads)]
    stop = threading.Event()
    workers = [threading.Thread(target=_decode_share, args=(path, fmt, r, threads, q, stop),
                                name=f"exotrace-decode-{r}", daemon=True)
               for r, q in enumerate(queues)]
    for w in workers:
        w.start()
    i = 0
    try:
        gop = 0
        while True:
            item = queues[gop % threads].get()
            if item is _STREAM_END:
                break  # the GOP's owner found no more GOPs: the video ended
            if item is _GOP_END:
                gop += 1
                continue
            if isinstance(item, BaseException):
                if isinstance(item, av.error.FFmpegError):
                    raise _decode_error(path, i, item) from None
                raise item
            yield i, item
            i += 1
    finally:
        stop.set()
        for w in workers:
            w.join()
    _check_count(path, i, expected)


def video_frames(path: str, fmt: str, expected: int | None, *, codec: str = "",
                 threads: int = 1) -> Iterator[tuple[int, np.ndarray]]:
    """Yield ``(index, frame)`` for every frame of the first video stream, in order.

    Parameters
    ----------
    path : str
        Video file.
    fmt : str
        PyAV pixel format of the returned frames (``"gray"`` or ``"gray16le"``).
    expected : int or None
        Frame count announced by the header: fewer decoded frames is an error.
    codec : str
        The stream's codec name; GOPs are decoded in parallel only for
        :data:`GOP_PARALLEL_CODECS`.
    threads : int
        Decoding threads. 1: the calling thread decodes, and ffmpeg starts no
        threads of its own (a caller that has one core); more: GOPs decoded in
        parallel where the codec allows, otherwise ffmpeg's own threading.

    Raises
    ------
    FileFormatError
        A frame that cannot be decoded (its index named), a truncated stream
        or one without frames.
    """
    if threads > 1 and codec in GOP_PARALLEL_CODECS:
        return _gop_parallel(path, fmt, expected, threads)
    return _serial(path, fmt, expected, one_thread=threads <= 1)
