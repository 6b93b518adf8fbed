"""Detection on several threads: the serial run's tracks, bounded look-ahead, errors kept."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from exotrace.errors import FileFormatError
from exotrace.nta import track_frames, track_video
from exotrace.nta._detect import DetectionSettings, FrameLocator
from exotrace.nta._stream import frame_spots, prefetch

_FIELDS = ("track_id", "frame", "x_px", "y_px", "intensity", "peak", "saturated")


def _assert_same_tracks(a, b):
    for name in _FIELDS:
        # bit for bit: the same functions on the same inputs, only elsewhere
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name), err_msg=name)
    np.testing.assert_array_equal(a.drift_px_per_frame, b.drift_px_per_frame)
    assert a.threshold == b.threshold


@pytest.mark.parametrize("workers", [1, 3])
def test_threaded_video_tracks_equal_the_serial_ones(small_avi, small_acquisition, workers):
    path, _ = small_avi
    # chunks of 7 frames: frames in flight cross chunk boundaries
    serial = track_video(path, small_acquisition, chunk_frames=7, workers=0)
    seen = []
    threaded = track_video(path, small_acquisition, chunk_frames=7, workers=workers,
                           progress=seen.append)
    assert len(serial) > 1000
    _assert_same_tracks(serial, threaded)
    assert seen == [7] * 8 + [4]  # 60 frames, one report per chunk, in order


def test_threaded_frames_equal_serial_with_weak_spots(small_video, small_acquisition):
    frames = small_video.frames
    serial = track_frames(frames, small_acquisition, workers=0, weak_fraction=0.7)
    threaded = track_frames(frames, small_acquisition, workers=2, weak_fraction=0.7)
    _assert_same_tracks(serial, threaded)


def test_frame_spots_in_order_with_their_own_buffers(small_video):
    frames = small_video.frames[:20].astype(np.float32)
    chunks = [(0, frames[:9], 255.0), (9, frames[9:], 255.0)]
    serial = list(frame_spots(iter(chunks), FrameLocator(DetectionSettings()),
                              weak_fraction=1.0, workers=0))
    threaded = list(frame_spots(iter(chunks), FrameLocator(DetectionSettings()),
                                weak_fraction=1.0, workers=2))
    assert [f for f, _, _ in threaded] == list(range(20))
    assert [d for _, _, d in threaded] == [0] * 8 + [9] + [0] * 10 + [11]
    for (_, a, _), (_, b, _) in zip(serial, threaded, strict=True):
        for x, y in zip(a, b, strict=True):
            np.testing.assert_array_equal(x, y)


def test_prefetch_runs_at_most_depth_items_ahead():
    produced = []
    consumed_first = threading.Event()

    def items():
        for i in range(10):
            produced.append(i)
            yield i

    it = prefetch(items(), depth=2)
    assert next(it) == 0
    consumed_first.set()
    # the producer may hold one item in hand besides the two queued
    for _ in range(50):
        if len(produced) >= 4:
            break
        threading.Event().wait(0.01)
    assert len(produced) <= 4
    assert list(it) == list(range(1, 10))


def test_prefetch_raises_the_producers_error_where_it_happened():
    def items():
        yield 1
        yield 2
        raise FileFormatError("v.avi", "cannot decode frame 2")

    got = []
    with pytest.raises(FileFormatError, match="cannot decode frame 2"):
        for x in prefetch(items()):
            got.append(x)
    assert got == [1, 2]


def test_truncated_video_is_one_error_with_threads(small_avi, small_acquisition, tmp_path):
    path, _ = small_avi
    data = path.read_bytes()
    cut = tmp_path / "cut.avi"
    cut.write_bytes(data[: len(data) // 2])
    with pytest.raises(FileFormatError, match="cut.avi"):
        track_video(cut, small_acquisition, workers=2)
