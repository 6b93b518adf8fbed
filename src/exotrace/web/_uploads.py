"""Uploads streamed to disk, and the list of them the server keeps.

An upload is read from the request body chunk by chunk and written to
``<upload dir>/<id>/<name>`` while its SHA-256 is computed, so a 2 GB video never
sits in memory and is never read twice to be hashed. The size limit is enforced
while the bytes arrive (and up front from ``Content-Length``); the content is
classified (:mod:`._upload_kinds`) from its first 16 KiB, before the rest is
accepted. A refused or interrupted upload leaves nothing on disk.

Each upload's description is kept beside its file (``upload.json``), and the
list is read from the folder: with ``EXOTRACE_UPLOAD_DIR`` set, the uploads
(and the NTA jobs, :mod:`._nta_jobs`) survive a restart and are shared by
several server processes (``exotrace serve --workers N``). Without it the folder
is a temporary one of this process, removed when it stops. A result attached
to a lot is in the database either way; the upload itself is a working copy.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import secrets
import shutil
import tempfile
import threading
import weakref
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from starlette.concurrency import run_in_threadpool

from ..errors import NotFound, StorageError
from ._upload_kinds import SNIFF_BYTES, Kind, UnknownContent, classify, safe_name

__all__ = ["TooLarge", "UnknownContent", "Upload", "UploadStore", "inspect", "upload_store"]

_log = logging.getLogger("exotrace.web")
# Bytes gathered before one write to disk (in a worker thread, off the event loop).
_WRITE_BYTES = 1 << 20
_PARTIAL = ".partial"
#: Vendor files are parsed whole in memory by their readers, calibrations are small:
#: both are refused above these sizes whatever the upload limit (videos stream).
KIND_MAX_BYTES = {"vendor": 512 * 1024 ** 2, "calibration": 1024 ** 2}


class TooLarge(ValueError):
    """The upload is larger than the configured limit."""


@dataclass
class Upload:
    """One uploaded file (plain values: safe to hand to any thread)."""

    id: str
    owner_id: int
    owner: str
    filename: str
    path: Path
    size_bytes: int
    sha256: str
    kind: str
    format: str
    created_at: datetime
    #: vendor: what the reader read (``exotrace import --json`` shape); video: frames,
    #: frame size and frame rate of the container; calibration: its fields.
    read: dict[str, Any] = field(default_factory=dict)
    #: Lots this upload's result was attached to (number, result file, created).
    attached: list[dict[str, Any]] = field(default_factory=list)

    def visible_to(self, principal) -> bool:
        return owner_or_admin(self.owner_id, principal)

    def to_json(self) -> dict[str, Any]:
        """What ``upload.json`` keeps (the path is the folder's: not stored)."""
        return {"id": self.id, "owner_id": self.owner_id, "owner": self.owner,
                "filename": self.filename, "size_bytes": self.size_bytes, "sha256": self.sha256,
                "kind": self.kind, "format": self.format,
                "created_at": self.created_at.isoformat(), "read": self.read,
                "attached": self.attached}

    @classmethod
    def from_json(cls, folder: Path, data: dict[str, Any]) -> Upload:
        return cls(id=data["id"], owner_id=int(data["owner_id"]), owner=data["owner"],
                   filename=data["filename"], path=folder / data["filename"],
                   size_bytes=int(data["size_bytes"]), sha256=data["sha256"],
                   kind=data["kind"], format=data["format"],
                   created_at=datetime.fromisoformat(data["created_at"]),
                   read=data.get("read") or {}, attached=list(data.get("attached") or []))

    def summary(self) -> dict[str, Any]:
        return {"id": self.id, "filename": self.filename, "size_bytes": self.size_bytes,
                "sha256": self.sha256, "kind": self.kind, "format": self.format,
                "owner": self.owner, "created_at": self.created_at.isoformat(),
                "page": f"/upload/{self.id}"}


_META = "upload.json"
#: Upload and job ids are ``secrets.token_urlsafe(12)``: nothing else names a folder.
_ID = re.compile(r"[A-Za-z0-9_-]{16}")


def write_json_atomically(path: Path, data: dict[str, Any]) -> None:
    """Write ``path`` whole or not at all (readers in other processes never see half)."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    tmp.write_text(json.dumps(data, default=str), encoding="utf-8")
    os.replace(tmp, path)


def _read_json(path: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def load_described(root: Path, item_id: str, meta: str, build):
    """``build(folder, data)`` from ``<root>/<item_id>/<meta>``, or None when the id is not
    one (ids name folders: nothing else is read), the file is missing, or it is damaged
    (logged: that one item is left out, the others stay listed)."""
    if not _ID.fullmatch(item_id or ""):
        return None
    folder = root / item_id
    data = _read_json(folder / meta)
    if data is None:
        return None
    try:
        return build(folder, data)
    except (KeyError, TypeError, ValueError):
        _log.warning("%s: unreadable %s, left out", folder, meta)
        return None


def folder_ids(root: Path) -> list[str]:
    """Names of the folders in ``root`` (none when it does not exist yet)."""
    try:
        return [p.name for p in root.iterdir() if p.is_dir()]
    except OSError:
        return []


def visible_newest_first(items, principal) -> list:
    """The ``items`` (uploads or jobs) ``principal`` may see, newest first."""
    return sorted((i for i in items if i is not None and i.visible_to(principal)),
                  key=lambda i: i.created_at, reverse=True)


def owner_or_admin(owner_id: int, principal) -> bool:
    """Whether ``principal`` may see an upload or job of ``owner_id`` (its owner, an admin)."""
    from ..records import Role

    return principal.user_id == owner_id or principal.role is Role.ADMIN


class UploadStore:
    """The uploads kept in one folder (see the module notes on what that means).

    Parameters
    ----------
    root : Path or None
        Folder for the files; ``None``: a temporary folder removed with the store.
    max_bytes : int
        Largest upload accepted.
    """

    def __init__(self, root: Path | None, max_bytes: int) -> None:
        if root is None:
            root = Path(tempfile.mkdtemp(prefix="exotrace-uploads-"))
            self._cleanup = weakref.finalize(self, shutil.rmtree, root, ignore_errors=True)
        self.root = root
        self.max_bytes = int(max_bytes)
        self._lock = threading.Lock()

    # ------------------------------------------------------------------ reading back
    def _load(self, upload_id: str) -> Upload | None:
        return load_described(self.root, upload_id, _META, Upload.from_json)

    def get(self, upload_id: str, principal) -> Upload:
        """The upload, if ``principal`` may see it (its owner, or an admin); else NotFound
        (a 404, not a 403: others' uploads are not confirmed to exist)."""
        upload = self._load(upload_id)
        if upload is None or not upload.visible_to(principal):
            raise NotFound(f"upload {upload_id} not found (deleted, or kept by a server "
                           "without EXOTRACE_UPLOAD_DIR that has restarted)")
        return upload

    def list_for(self, principal) -> list[Upload]:
        """Uploads ``principal`` may see, newest first."""
        return visible_newest_first(map(self._load, folder_ids(self.root)), principal)

    def save(self, upload: Upload) -> Upload:
        """Write ``upload``'s description (after a change such as a new attachment)."""
        with self._lock:
            write_json_atomically(self.root / upload.id / _META, upload.to_json())
        return upload

    def remove(self, upload: Upload) -> None:
        shutil.rmtree(upload.path.parent, ignore_errors=True)

    # ------------------------------------------------------------------ receiving
    async def receive(self, chunks: AsyncIterator[bytes], filename: str, principal, *,
                      declared_bytes: int | None = None) -> Upload:
        """Stream ``chunks`` to a new upload of ``principal``.

        Raises
        ------
        TooLarge
            More than :attr:`max_bytes` (declared or received); nothing is kept.
        UnknownContent
            Not a video, vendor file or calibration; nothing is kept.
        """
        name = safe_name(filename)
        if declared_bytes is not None and declared_bytes > self.max_bytes:
            raise TooLarge(self._too_large(name))
        upload_id = secrets.token_urlsafe(12)
        folder = self.root / upload_id
        try:
            await run_in_threadpool(folder.mkdir, parents=True)
        except OSError as exc:
            raise StorageError(f"{name}: the upload folder cannot be written "
                               f"({exc.strerror or exc}; EXOTRACE_UPLOAD_DIR)") from None
        partial = folder / _PARTIAL
        try:
            kind, size, sha = await self._write(chunks, name, partial)
            final = folder / name
            await run_in_threadpool(os.replace, partial, final)
        except OSError as exc:  # disk full, folder removed under us
            await run_in_threadpool(shutil.rmtree, folder, True)
            raise StorageError(f"{name}: cannot be stored on the server "
                               f"({exc.strerror or exc}); nothing was kept") from None
        except BaseException:
            # Too large, unknown content, client gone, server stopping: keep nothing.
            await run_in_threadpool(shutil.rmtree, folder, True)
            raise
        return Upload(id=upload_id, owner_id=principal.user_id, owner=principal.username,
                      filename=name, path=final, size_bytes=size, sha256=sha, kind=kind.kind,
                      format=kind.format, created_at=datetime.now(UTC))

    def add(self, upload: Upload) -> Upload:
        """Keep ``upload`` (after its content was read and accepted): it is listed from now."""
        try:
            return self.save(upload)
        except OSError as exc:
            shutil.rmtree(upload.path.parent, ignore_errors=True)
            raise StorageError(f"{upload.filename}: cannot be stored on the server "
                               f"({exc.strerror or exc}); nothing was kept") from None

    def _too_large(self, name: str, kind: Kind | None = None) -> str:
        if kind is not None and self._limit(kind) < self.max_bytes:
            limit = self._limit(kind)
            return (f"{name}: a {kind.kind} file larger than {limit} bytes "
                    f"({limit / 1024 ** 2:.0f} MiB) is not accepted")
        return (f"{name}: larger than the upload limit of {self.max_bytes} bytes "
                f"({self.max_bytes / 1024 ** 2:.0f} MiB; EXOTRACE_UPLOAD_MAX_BYTES)")

    def _limit(self, kind: Kind | None) -> int:
        if kind is None:
            return self.max_bytes
        return min(self.max_bytes, KIND_MAX_BYTES.get(kind.kind, self.max_bytes))

    async def _write(self, chunks: AsyncIterator[bytes], name: str, partial: Path
                     ) -> tuple[Kind, int, str]:
        digest = hashlib.sha256()
        size = 0
        kind: Kind | None = None
        pending = bytearray()
        fh = await run_in_threadpool(open, partial, "wb")
        try:
            async for chunk in chunks:
                if not chunk:
                    continue
                size += len(chunk)
                if size > self._limit(kind):
                    raise TooLarge(self._too_large(name, kind))
                pending += chunk
                if kind is None and len(pending) >= SNIFF_BYTES:
                    kind = classify(bytes(pending[:SNIFF_BYTES]), name)
                    if size > self._limit(kind):
                        raise TooLarge(self._too_large(name, kind))
                if kind is not None and len(pending) >= _WRITE_BYTES:
                    block, pending = bytes(pending), bytearray()
                    await run_in_threadpool(_write_block, fh, digest, block)
            if kind is None:
                kind = classify(bytes(pending), name)
                if size > self._limit(kind):
                    raise TooLarge(self._too_large(name, kind))
            if pending:
                await run_in_threadpool(_write_block, fh, digest, bytes(pending))
        finally:
            await run_in_threadpool(fh.close)
        return kind, size, digest.hexdigest()


def _write_block(fh, digest, block: bytes) -> None:
    digest.update(block)
    fh.write(block)


_STORE_LOCK = threading.Lock()


def upload_store(app) -> UploadStore:
    """The app's :class:`UploadStore`, made at first use from its settings."""
    store = getattr(app.state, "upload_store", None)
    if store is None:
        with _STORE_LOCK:
            store = getattr(app.state, "upload_store", None)
            if store is None:
                settings = app.state.settings
                store = UploadStore(settings.upload_dir, settings.upload_max_bytes)
                app.state.upload_store = store
    return store



def inspect(upload: Upload) -> dict[str, Any]:
    """Read what the upload holds (in a worker thread: a vendor file is parsed in full).

    Returns
    -------
    dict
        vendor: ``InstrumentResult.to_dict()`` (the ``exotrace import --json`` object);
        video: ``frames``, ``width_px``, ``height_px``, ``fps`` (``None`` when the
        container does not say); calibration: the calibration's fields.

    Raises
    ------
    FileFormatError
        The file is malformed (one line naming it and the problem).
    """
    from ..errors import ExotraceError, FileFormatError

    try:
        return _inspect(upload)
    except FileFormatError as exc:  # name the upload, not the server's path of it
        raise FileFormatError(upload.filename, exc.problem, line=exc.line, field=exc.field,
                              offset=exc.offset) from None
    except ExotraceError:
        raise
    except Exception as exc:  # noqa: BLE001 - a reader bug must not become a 500
        _log.exception("reading upload %s (%s) failed", upload.id, upload.format)
        raise FileFormatError(upload.filename, f"could not be read as {upload.format} "
                              f"(internal error: {type(exc).__name__})") from None


def _inspect(upload: Upload) -> dict[str, Any]:
    from dataclasses import asdict

    from ..batch._task import plain

    if upload.kind == "vendor":
        from ..instruments import read_file

        return {**plain(read_file(upload.path).to_dict(full=False)), "file": upload.filename}
    if upload.kind == "calibration":
        from ..nta.concentration import Calibration

        return plain(asdict(Calibration.from_json(upload.path)))
    return _probe_video(upload)


def _probe_video(upload: Upload) -> dict[str, Any]:
    from ..errors import FileFormatError
    from ..nta import open_frames

    source = open_frames(upload.path)
    rows, cols = source.frame_shape
    fps = None
    if source.kind == "video":
        import av

        try:
            with av.open(str(upload.path)) as container:
                rate = container.streams.video[0].average_rate
                fps = float(rate) if rate else None
        except (av.error.FFmpegError, IndexError, ZeroDivisionError) as exc:
            raise FileFormatError(upload.filename, f"cannot read the frame rate ({exc})") from None
    return {"frames": source.n_frames, "width_px": int(cols), "height_px": int(rows),
            "fps": fps, "container": upload.format}
