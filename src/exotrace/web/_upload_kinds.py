"""What an upload is, from its first bytes and its name: an NTA video, a vendor file, a
calibration, or something exotrace does not read (refused).

* **Videos** (what ``exotrace nta analyze`` reads from one file): AVI, MP4/MOV,
  Matroska/WebM and TIFF stacks. Both the container's magic bytes and the file
  extension must say so: the frame reader picks TIFF or ffmpeg by extension, so
  a TIFF named ``.avi`` would fail later in the analysis instead of now.
* **Vendor files** (what ``exotrace import`` reads): detected by content only,
  by the same detector as the import (:func:`exotrace.instruments.detect_format`),
  because instrument exports are routinely renamed.
* **Calibrations** written by ``exotrace nta calibrate``: a ``.json`` file holding
  a JSON object (validated in full once the upload is complete).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import PurePosixPath, PureWindowsPath

__all__ = ["SNIFF_BYTES", "VIDEO_EXTENSIONS", "Kind", "UnknownContent", "classify", "safe_name"]

#: Bytes looked at to decide (the instrument detector reads 16 KiB of a text file).
SNIFF_BYTES = 16384

#: Video container -> the extensions that name it.
VIDEO_EXTENSIONS = {
    "avi": (".avi",),
    "tiff": (".tif", ".tiff"),
    "mp4": (".mp4", ".m4v", ".mov"),
    "matroska": (".mkv", ".webm"),
}
_MAX_NAME = 200


class UnknownContent(ValueError):
    """The content is not a format exotrace reads (the message is one line naming the file)."""


@dataclass(frozen=True)
class Kind:
    """``kind`` is ``"video"``, ``"vendor"`` or ``"calibration"``; ``format`` names the
    container (videos) or the instrument format (vendor files)."""

    kind: str
    format: str


def safe_name(filename: str) -> str:
    """The file's own name (no folders, no control characters), at most 200 characters.

    Raises UnknownContent when nothing usable is left.
    """
    name = PureWindowsPath(PurePosixPath(filename or "").name).name
    name = "".join(c for c in name if c.isprintable() and c not in '<>:"|?*').strip(" .")
    if not name:
        raise UnknownContent(f"{filename!r}: give the file's name (?filename=...)")
    if len(name) > _MAX_NAME:
        stem, dot, ext = name.rpartition(".")
        name = (stem[: _MAX_NAME - len(ext) - 1] + dot + ext) if dot and len(ext) < 12 \
            else name[:_MAX_NAME]
    return name


def _video_container(head: bytes) -> str | None:
    if head[:4] == b"RIFF" and head[8:12] == b"AVI ":
        return "avi"
    if head[:4] in (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+"):
        return "tiff"
    if head[4:8] in (b"ftyp", b"moov", b"mdat", b"wide", b"free"):
        return "mp4"
    if head[:4] == b"\x1aE\xdf\xa3":
        return "matroska"
    return None


def _extension(name: str) -> str:
    dot = name.rfind(".")
    return name[dot:].lower() if dot > 0 else ""


def classify(head: bytes, name: str) -> Kind:
    """Decide what an upload is from its first :data:`SNIFF_BYTES` bytes (or all of it).

    Parameters
    ----------
    head : bytes
        The start of the file.
    name : str
        The file name as given (already passed through :func:`safe_name`).

    Raises
    ------
    UnknownContent
        Empty, or not a video, vendor file or calibration exotrace reads; the
        message is one line naming the file and what was expected.
    """
    from ..errors import FileFormatError
    from ..instruments import detect_format

    if not head:
        raise UnknownContent(f"{name}: the file is empty")
    ext = _extension(name)
    container = _video_container(head)
    if container is not None:
        if ext not in VIDEO_EXTENSIONS[container]:
            raise UnknownContent(
                f"{name}: the content is a {container.upper()} video but the name ends in "
                f"{ext or 'no extension'!r}; name it {' or '.join(VIDEO_EXTENSIONS[container])}")
        return Kind("video", container)
    if ext == ".json":
        if head.lstrip()[:1] == b"{":
            return Kind("calibration", "nta-calibration")
        raise UnknownContent(f"{name}: a .json upload must be a calibration written by "
                             "`exotrace nta calibrate` (a JSON object)")
    try:
        return Kind("vendor", detect_format(head, name))
    except FileFormatError as exc:
        videos = ", ".join(e for exts in VIDEO_EXTENSIONS.values() for e in exts)
        reason = exc.problem if ext not in {e for v in VIDEO_EXTENSIONS.values() for e in v} \
            else f"the name says video ({ext}) but the content is not one"
        raise UnknownContent(f"{name}: unsupported content: {reason}; upload an NTA video "
                             f"({videos}), a vendor export or an NTA calibration (.json)") from None
