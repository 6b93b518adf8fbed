"""Files of an output folder: content hashes, atomic writes, one batch at a time.

A result or summary file is written to a temporary file in the same folder,
flushed to disk (``fsync``) and renamed over its final name (``os.replace``,
atomic on POSIX and Windows): a reader, or a run killed half-way, sees the old
file or the new one, never a half-written one. Temporary files left by a
killed run start with :data:`TEMP_PREFIX` and are removed by the next run,
which holds the folder's lock while it does so.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from ..errors import Conflict, FileFormatError

__all__ = ["LOCK_NAME", "TEMP_PREFIX", "atomic_write_text", "folder_lock", "remove_stale_temp_files",
           "sha256_file"]

TEMP_PREFIX = ".exotrace-tmp-"
LOCK_NAME = ".exotrace-batch.lock"
_BLOCK_BYTES = 1 << 20
# mkstemp creates files readable by their owner only; results are for everyone
# the umask allows, like any file the user writes. Read once: os.umask can only
# be read by setting it.
_UMASK = os.umask(0o022)
os.umask(_UMASK)


def sha256_file(path: str | Path) -> str:
    """SHA-256 of a file's bytes (hex), read in 1 MiB blocks.

    Raises
    ------
    FileFormatError
        The file is missing or cannot be read.
    """
    path = Path(path)
    digest = hashlib.sha256()
    try:
        with path.open("rb") as fh:
            for block in iter(lambda: fh.read(_BLOCK_BYTES), b""):
                digest.update(block)
    except FileNotFoundError:
        raise FileFormatError(path, "file not found") from None
    except IsADirectoryError:
        raise FileFormatError(path, "is a folder, not a video file") from None
    except OSError as exc:
        raise FileFormatError(path, f"cannot be read: {exc.strerror or exc}") from None
    return digest.hexdigest()


def _fsync_folder(folder: Path) -> None:
    # The rename itself must reach the disk too; folders cannot be opened on Windows.
    if os.name != "posix":
        return
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def atomic_write_text(path: str | Path, text: str) -> Path:
    """Write ``text`` (UTF-8) to ``path`` atomically: temp file, fsync, ``os.replace``.

    Returns
    -------
    Path
        ``path``.
    """
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=TEMP_PREFIX + path.name + ".",
                               suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as fh:
            if os.name == "posix":
                os.fchmod(fh.fileno(), 0o666 & ~_UMASK)
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    _fsync_folder(path.parent)
    return path


def remove_stale_temp_files(folder: str | Path) -> int:
    """Delete temporary files a killed run left in ``folder``; returns how many."""
    removed = 0
    for p in Path(folder).glob(TEMP_PREFIX + "*"):
        if p.is_file():
            p.unlink(missing_ok=True)
            removed += 1
    return removed


@contextmanager
def folder_lock(folder: str | Path) -> Iterator[Path]:
    """Hold an exclusive lock on ``folder`` for one batch run.

    Two runs writing the same folder would remove each other's temporary
    files and race on ``summary.csv``; the second one is refused instead.

    Raises
    ------
    Conflict
        Another process holds the lock.
    """
    folder = Path(folder)
    lock_path = folder / LOCK_NAME
    fh = lock_path.open("a+")
    try:
        try:
            _lock(fh)
        except OSError:
            raise Conflict(f"{folder}: another exotrace batch is writing to this folder; "
                           "wait for it to finish or choose another --out") from None
        yield lock_path
    finally:
        fh.close()  # closing releases the lock


def _lock(fh) -> None:
    if os.name == "posix":
        import fcntl

        fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    else:  # pragma: no cover - Windows
        import msvcrt

        msvcrt.locking(fh.fileno(), msvcrt.LK_NBLCK, 1)
