"""Readers: AVI (8/12-bit), TIFF stacks, frame folders and globs; bad files fail cleanly."""

from __future__ import annotations

import numpy as np
import pytest
import tifffile

from exotrace.errors import FileFormatError
from exotrace.nta import open_frames, read_frames
from exotrace.nta.simulate import simulate, simulate_video

TINY = dict(diameters_nm=(100.0,), particles_per_ml=5e9, n_frames=12, width_px=48, height_px=40,
            seed=7)


@pytest.mark.parametrize("bit_depth", [8, 12])
def test_simulated_avi_reads_back_bit_exact(tmp_path, bit_depth):
    path = tmp_path / f"v{bit_depth}.avi"
    simulate(path, bit_depth=bit_depth, **TINY)
    expected = simulate_video(bit_depth=bit_depth, **TINY).frames
    src = open_frames(path)
    assert src.kind == "video"
    assert src.n_frames == 12
    assert src.frame_shape == (40, 48)
    assert src.max_value == (255.0 if bit_depth == 8 else 65535.0)
    frames = read_frames(path)
    assert frames.dtype == np.float32
    np.testing.assert_array_equal(frames, expected.astype(np.float32))


@pytest.mark.parametrize("invert", [False, True])
def test_8bit_video_streams_as_uint8_and_deeper_video_as_float32(tmp_path, invert):
    # 8-bit frames reach the detection as they are (no 4x larger float copy);
    # 12-bit ones as float32. Inverted 8-bit frames are 255 - v, exactly.
    for bit_depth, dtype, top in ((8, np.uint8, 255), (12, np.float32, 65535)):
        path = tmp_path / f"v{bit_depth}.avi"
        simulate(path, bit_depth=bit_depth, **TINY)
        expected = simulate_video(bit_depth=bit_depth, **TINY).frames.astype(np.float64)
        if invert:
            expected = top - expected
        src = open_frames(path, invert=invert)
        assert src.pixel_dtype == dtype
        chunks = [c for _, c in src.chunks(5)]
        assert all(c.dtype == dtype for c in chunks)
        np.testing.assert_array_equal(np.concatenate(chunks).astype(np.float64), expected)
        # read_frames keeps its float32 contract
        assert read_frames(path, invert=invert).dtype == np.float32


def test_chunks_are_bounded_and_cover_the_video(tmp_path):
    path = tmp_path / "v.avi"
    simulate(path, **TINY)
    sizes = [(first, len(c)) for first, c in open_frames(path).chunks(5)]
    assert sizes == [(0, 5), (5, 5), (10, 2)]


def test_invert_turns_dark_spots_bright(tmp_path):
    path = tmp_path / "v.avi"
    simulate(path, **TINY)
    normal = read_frames(path)
    inverted = read_frames(path, invert=True)
    np.testing.assert_array_equal(inverted, 255.0 - normal)


def test_tiff_stack_page_by_page_and_rgb_luminance(tmp_path):
    rng = np.random.default_rng(0)
    gray = rng.integers(0, 4000, (7, 20, 30), dtype=np.uint16)
    tifffile.imwrite(tmp_path / "stack.tif", gray)
    src = open_frames(tmp_path / "stack.tif")
    assert (src.kind, src.n_frames, src.frame_shape, src.max_value) == ("tiff", 7, (20, 30), 65535.0)
    np.testing.assert_array_equal(read_frames(tmp_path / "stack.tif"), gray.astype(np.float32))

    rgb = rng.integers(0, 255, (2, 10, 12, 3), dtype=np.uint8)
    tifffile.imwrite(tmp_path / "rgb.tif", rgb, photometric="rgb")
    out = read_frames(tmp_path / "rgb.tif")
    expected = rgb.astype(np.float32) @ np.array([0.299, 0.587, 0.114], dtype=np.float32)
    np.testing.assert_allclose(out, expected, rtol=1e-6)


def test_png_folder_is_sorted_naturally_and_glob_works(tmp_path):
    import imageio.v3 as iio

    folder = tmp_path / "frames"
    folder.mkdir()
    for i in (1, 2, 10):
        iio.imwrite(folder / f"img{i}.png", np.full((8, 9), i, dtype=np.uint8))
    (folder / "notes.txt").write_text("not a frame")
    frames = read_frames(folder)
    # natural order: 1, 2, 10 (a plain sort would give 1, 10, 2)
    assert frames[:, 0, 0].tolist() == [1.0, 2.0, 10.0]
    globbed = read_frames(str(folder / "img*.png"))
    np.testing.assert_array_equal(globbed, frames)


def test_16bit_png_frames(tmp_path):
    import imageio.v3 as iio

    iio.imwrite(tmp_path / "a.png", np.full((6, 6), 40000, dtype=np.uint16))
    src = open_frames(tmp_path)
    assert src.max_value == 65535.0
    assert read_frames(tmp_path)[0, 0, 0] == 40000.0


def test_missing_empty_and_junk_files(tmp_path):
    with pytest.raises(FileFormatError, match="not found"):
        open_frames(tmp_path / "nope.avi")
    (tmp_path / "empty.avi").write_bytes(b"")
    with pytest.raises(FileFormatError, match="empty"):
        open_frames(tmp_path / "empty.avi")
    (tmp_path / "junk.avi").write_bytes(b"this is not a video at all " * 50)
    with pytest.raises(FileFormatError, match="junk.avi: not a readable video"):
        open_frames(tmp_path / "junk.avi")
    (tmp_path / "junk.tif").write_bytes(b"II*\x00garbage" * 10)
    with pytest.raises(FileFormatError, match="junk.tif"):
        read_frames(tmp_path / "junk.tif")


def test_truncated_avi_names_the_frame(tmp_path):
    path = tmp_path / "v.avi"
    simulate(path, **TINY)
    data = path.read_bytes()
    cut = tmp_path / "cut.avi"
    cut.write_bytes(data[: len(data) // 2])
    with pytest.raises(FileFormatError, match=r"cut.avi: .*(frame \d+|truncated)") as info:
        read_frames(cut)
    assert "\n" not in str(info.value)


def test_empty_folder_and_mixed_sizes(tmp_path):
    import imageio.v3 as iio

    with pytest.raises(FileFormatError, match="no PNG or TIFF frames"):
        open_frames(tmp_path)
    with pytest.raises(FileFormatError, match="no PNG or TIFF frames"):
        open_frames(str(tmp_path / "*.png"))
    iio.imwrite(tmp_path / "f1.png", np.zeros((8, 8), np.uint8))
    iio.imwrite(tmp_path / "f2.png", np.zeros((8, 9), np.uint8))
    with pytest.raises(FileFormatError, match=r"f2.png: frame 1 is 8x9 px"):
        read_frames(tmp_path)
