"""Video decoding on several threads: the serial decoder's frames, in order, errors kept."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from exotrace.errors import FileFormatError
from exotrace.nta._decode import video_frames
from exotrace.nta._readers import open_frames


def _keyframes(path) -> list[int]:
    import av

    with av.open(str(path)) as c:
        return [i for i, p in enumerate(p for p in c.demux(c.streams.video[0]) if p.size)
                if p.is_keyframe]


@pytest.mark.parametrize("threads", [2, 3])
def test_gop_parallel_frames_equal_the_serial_ones(small_avi, threads):
    path, _ = small_avi
    keys = _keyframes(path)
    # several GOPs, so every thread decodes some and they interleave
    assert len(keys) >= threads + 1 and keys[0] == 0
    serial = list(video_frames(str(path), "gray", 60, codec="ffv1", threads=1))
    parallel = list(video_frames(str(path), "gray", 60, codec="ffv1", threads=threads))
    assert [i for i, _ in parallel] == list(range(60))
    for (_, a), (_, b) in zip(serial, parallel, strict=True):
        np.testing.assert_array_equal(a, b)


def test_chunks_with_decode_threads_equal_serial_chunks(small_avi):
    path, _ = small_avi
    src = open_frames(path)
    assert src._video_codec == "ffv1"
    serial = list(src.chunks(7))
    threaded = list(src.chunks(7, decode_threads=2))
    assert [f for f, _ in threaded] == [f for f, _ in serial] == list(range(0, 60, 7))
    np.testing.assert_array_equal(np.concatenate([c for _, c in serial]),
                                  np.concatenate([c for _, c in threaded]))


def test_other_codecs_are_decoded_serially(small_avi):
    path, _ = small_avi
    before = threading.active_count()
    it = video_frames(str(path), "gray", 60, codec="h264", threads=4)
    next(it)
    assert threading.active_count() == before  # no decoding thread started
    assert len(list(it)) == 59


def test_stopping_early_ends_the_decoding_threads(small_avi):
    path, _ = small_avi
    before = threading.active_count()
    it = video_frames(str(path), "gray", 60, codec="ffv1", threads=2)
    first = [next(it) for _ in range(3)]
    assert [i for i, _ in first] == [0, 1, 2]
    it.close()
    assert threading.active_count() == before


@pytest.mark.parametrize("fraction", [0.3, 0.5, 0.8])
def test_truncated_video_same_error_with_threads(small_avi, tmp_path, fraction):
    path, _ = small_avi
    data = path.read_bytes()
    cut = tmp_path / "cut.avi"
    cut.write_bytes(data[: int(len(data) * fraction)])
    src = open_frames(cut)

    def run(threads):
        got = 0
        with pytest.raises(FileFormatError, match="cut.avi") as info:
            for _, chunk in src.chunks(5, decode_threads=threads):
                got += len(chunk)
        return got, str(info.value)

    serial = run(1)
    assert run(2) == serial  # the same frames before it, the same message
    assert "\n" not in serial[1]
