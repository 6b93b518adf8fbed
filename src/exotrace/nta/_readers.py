"""Frame readers that stream a capture in chunks of frames (8-bit video as uint8, else float32).

Only one chunk is held in memory at a time, so a 2 GB NanoSight AVI is read in
bounded memory. Sources: any video ffmpeg decodes (through PyAV; 8-bit and
16-bit grey, colour converted to luminance), TIFF stacks (page by page), and a
folder or glob of PNG/TIFF frames sorted naturally (``frame2`` before
``frame10``).
"""

from __future__ import annotations

import glob as _glob
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import FileFormatError, InvalidInput
from ._decode import video_frames

__all__ = ["FrameSource", "open_frames", "read_frames"]

_IMAGE_SUFFIXES = (".png", ".tif", ".tiff")
_TIFF_SUFFIXES = (".tif", ".tiff")
# ITU-R BT.601 luma weights, the ones ffmpeg uses for rgb -> gray
_LUMA = np.array([0.299, 0.587, 0.114], dtype=np.float32)


def _natural_key(path: Path) -> list:
    return [int(t) if t.isdigit() else t.lower() for t in re.split(r"(\d+)", path.name)]


def _to_gray(arr: np.ndarray, where: str, frame: int) -> np.ndarray:
    if arr.ndim == 2:
        return arr
    if arr.ndim == 3 and arr.shape[-1] in (3, 4):
        return arr[..., :3].astype(np.float32) @ _LUMA
    if arr.ndim == 3 and arr.shape[-1] == 1:
        return arr[..., 0]
    raise FileFormatError(where, f"frame {frame} has shape {arr.shape}; expected a grey or RGB image")


@dataclass
class FrameSource:
    """A capture opened for streaming.

    Attributes
    ----------
    path : str
        File, folder or glob pattern.
    kind : {"video", "tiff", "images"}
    frame_shape : tuple of int
        (rows, columns).
    n_frames : int or None
        Frame count from the header (``None`` when the container does not say).
    max_value : float
        Largest possible pixel value (255 for 8-bit, 65535 for 16-bit).
    invert : bool
        Frames are returned as ``max_value - pixel`` (dark particles on a bright field).
    """

    path: str
    kind: str
    frame_shape: tuple[int, int]
    n_frames: int | None
    max_value: float
    invert: bool = False
    _files: tuple[Path, ...] = ()
    _video_format: str = "gray"
    _video_codec: str = ""

    @property
    def pixel_dtype(self) -> np.dtype:
        """Type of the frames :meth:`chunks` yields.

        uint8 for 8-bit video: the detection kernels read it as it is, and a
        float32 copy would be four times the memory to write and read again
        (on a 1280 x 1024 capture ~0.4 s of 3.5 s, mostly the page faults of
        fresh buffers). 12/16-bit video, TIFF and image frames: float32.
        """
        if self.kind == "video" and self._video_format == "gray":
            return np.dtype(np.uint8)
        return np.dtype(np.float32)

    def chunks(self, chunk_frames: int = 64, *,
               decode_threads: int = 1) -> Iterator[tuple[int, np.ndarray]]:
        """Yield ``(first_frame_index, frames)``, frames ``(n, rows, cols)`` of :attr:`pixel_dtype`.

        ``decode_threads`` > 1 decodes a video on that many threads when its
        codec allows it (see :mod:`exotrace.nta._decode`); the frames are the
        same either way.

        Raises
        ------
        FileFormatError
            On a truncated or corrupt file, or a frame of a different size.
        """
        if chunk_frames < 1:
            raise InvalidInput(f"chunk_frames must be >= 1, got {chunk_frames}")
        # a fresh buffer per chunk, handed over without a copy: the consumer
        # may keep it while the next one fills
        dtype = self.pixel_dtype
        buf = np.empty((chunk_frames, *self.frame_shape), dtype=dtype)
        top = dtype.type(self.max_value)
        n = 0
        first = 0
        for index, frame in self._frames(decode_threads):
            if frame.shape != self.frame_shape:
                where = str(self._files[index]) if self._files else self.path
                raise FileFormatError(
                    where, f"frame {index} is {frame.shape[0]}x{frame.shape[1]} px but the "
                    f"first frame is {self.frame_shape[0]}x{self.frame_shape[1]}; "
                    "all frames must have one size")
            buf[n] = frame
            if self.invert:
                np.subtract(top, buf[n], out=buf[n])
            n += 1
            if n == chunk_frames:
                yield first, buf
                buf = np.empty((chunk_frames, *self.frame_shape), dtype=dtype)
                first += n
                n = 0
        if n:
            yield first, buf[:n]

    def _frames(self, decode_threads: int = 1) -> Iterator[tuple[int, np.ndarray]]:
        if self.kind == "video":
            yield from video_frames(self.path, self._video_format, self.n_frames,
                                    codec=self._video_codec, threads=decode_threads)
        elif self.kind == "tiff":
            yield from _tiff_frames(self.path)
        else:
            for i, f in enumerate(self._files):
                yield i, _read_image(f, i)


def _tiff_frames(path: str) -> Iterator[tuple[int, np.ndarray]]:
    import tifffile

    i = 0
    try:
        with tifffile.TiffFile(path) as tf:
            for page in tf.pages:
                yield i, _to_gray(page.asarray(), path, i)
                i += 1
    except FileFormatError:
        raise
    except Exception as exc:  # tifffile raises many types on damaged files
        raise FileFormatError(path, f"cannot read TIFF page {i}: {type(exc).__name__}: {exc}; "
                              "the file may be truncated or corrupt") from None


def _read_image(path: Path, index: int) -> np.ndarray:
    try:
        if path.suffix.lower() in _TIFF_SUFFIXES:
            import tifffile

            arr = tifffile.imread(path)
        else:
            import imageio.v3 as iio

            arr = iio.imread(path)
    except Exception as exc:  # imageio/PIL/tifffile raise many types on bad files
        raise FileFormatError(path, f"cannot read frame {index}: {type(exc).__name__}: "
                              f"{exc}") from None
    return _to_gray(np.asarray(arr), str(path), index)


def _max_value(dtype: np.dtype) -> float:
    if np.issubdtype(dtype, np.integer):
        return float(np.iinfo(dtype).max)
    return 1.0  # float images are taken as 0-1 intensities


def _open_video(path: Path, invert: bool) -> FrameSource:
    import av

    try:
        container = av.open(str(path))
    except av.error.FFmpegError as exc:
        raise FileFormatError(path, f"not a readable video ({exc.strerror or exc}); "
                              "expected AVI or another ffmpeg format, a TIFF stack or a "
                              "folder of PNG/TIFF frames") from None
    with container:
        if not container.streams.video:
            raise FileFormatError(path, "the file holds no video stream")
        stream = container.streams.video[0]
        ctx = stream.codec_context
        width, height = int(ctx.width or 0), int(ctx.height or 0)
        pix_fmt = ctx.pix_fmt or "gray"
        try:
            bits = max(c.bits for c in av.VideoFormat(pix_fmt).components)
        except Exception:  # unknown format name: decode to 8-bit grey
            bits = 8
        n = int(stream.frames) if stream.frames else None
        codec = ctx.name or ""
    if width <= 0 or height <= 0:
        raise FileFormatError(path, "the video stream has no frame size")
    fmt = "gray16le" if bits > 8 else "gray"
    return FrameSource(str(path), "video", (height, width), n,
                       65535.0 if bits > 8 else 255.0, invert, (), fmt, codec)


def _open_tiff(path: Path, invert: bool) -> FrameSource:
    import tifffile

    try:
        with tifffile.TiffFile(path) as tf:
            pages = len(tf.pages)
            if pages == 0:
                raise FileFormatError(path, "the TIFF holds no image")
            first = tf.pages[0]
            shape = tuple(first.shape)
            dtype = first.dtype
    except FileFormatError:
        raise
    except Exception as exc:
        raise FileFormatError(path, f"not a readable TIFF: {type(exc).__name__}: {exc}") from None
    rows_cols = shape[:2] if len(shape) == 3 and shape[-1] in (1, 3, 4) else shape[-2:]
    return FrameSource(str(path), "tiff", (int(rows_cols[0]), int(rows_cols[1])), pages,
                       _max_value(dtype), invert)


def _open_images(label: str, files: list[Path], invert: bool) -> FrameSource:
    if not files:
        raise FileFormatError(label, "no PNG or TIFF frames found")
    files.sort(key=_natural_key)
    first = _read_image(files[0], 0)
    if first.ndim != 2:
        raise FileFormatError(files[0], f"frame 0 has shape {first.shape}; expected 2-D")
    dtype = first.dtype
    return FrameSource(label, "images", (int(first.shape[0]), int(first.shape[1])), len(files),
                       _max_value(dtype) if dtype != np.float32 else 255.0, invert, tuple(files))


def open_frames(source: str | Path, *, invert: bool = False) -> FrameSource:
    """Open a video file, TIFF stack, folder of frames or glob pattern for streaming.

    Parameters
    ----------
    source : str or Path
        ``capture.avi`` (anything ffmpeg reads), ``stack.tif``, a folder holding
        PNG/TIFF frames, or a glob such as ``"frames/img_*.png"``.
    invert : bool
        Return ``max_value - pixel`` so dark particles on a bright field become
        bright spots.

    Returns
    -------
    FrameSource

    Raises
    ------
    FileFormatError
        Missing path, empty folder, unreadable or non-video file.
    """
    text = str(source)
    path = Path(source)
    if any(ch in text for ch in "*?[") and not path.exists():
        files = [Path(p) for p in _glob.glob(text)
                 if Path(p).suffix.lower() in _IMAGE_SUFFIXES and Path(p).is_file()]
        return _open_images(text, files, invert)
    if not path.exists():
        raise FileFormatError(path, "file or folder not found")
    if path.is_dir():
        files = [p for p in path.iterdir()
                 if p.suffix.lower() in _IMAGE_SUFFIXES and p.is_file()]
        return _open_images(str(path), files, invert)
    if path.stat().st_size == 0:
        raise FileFormatError(path, "the file is empty")
    if path.suffix.lower() in _TIFF_SUFFIXES:
        return _open_tiff(path, invert)
    if path.suffix.lower() == ".png":
        return _open_images(str(path), [path], invert)
    return _open_video(path, invert)


def read_frames(source: str | Path, *, invert: bool = False,
                max_frames: int | None = None) -> np.ndarray:
    """Read a whole capture (or its first ``max_frames``) into a float32 array.

    For tests and small captures; analysis streams with :meth:`FrameSource.chunks`.

    Returns
    -------
    ndarray of float32, shape (n, rows, cols)
    """
    src = open_frames(source, invert=invert)
    parts = []
    total = 0
    for _, chunk in src.chunks(64):
        parts.append(chunk.astype(np.float32, copy=False))
        total += len(chunk)
        if max_frames is not None and total >= max_frames:
            break
    out = np.concatenate(parts)
    return out[:max_frames] if max_frames is not None else out
