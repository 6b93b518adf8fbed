"""What the upload page and the upload API both do: start an NTA analysis of an
upload, and attach a finished result to a lot (through the records services)."""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass
from typing import Any

from ..errors import Conflict, InvalidInput
from ._nta_jobs import NtaJob, new_job_id, nta_jobs
from ._uploads import Upload, upload_store

_log = logging.getLogger("exotrace.web")

__all__ = ["AnalysisRequest", "attach_to_lot", "delete_upload", "start_analysis"]


@dataclass(frozen=True)
class AnalysisRequest:
    """Acquisition and analysis options (those ``exotrace nta analyze`` asks for).

    ``fps`` may be left out when the video's container gives its frame rate;
    ``calibration_upload`` names an uploaded calibration JSON (without one there
    is no concentration, as in the CLI).
    """

    temperature_c: float
    pixel_size_nm: float
    fps: float | None = None
    viscosity_cp: float | None = None
    exposure_ms: float | None = None
    invert: bool = False
    dilution: float = 1.0
    calibration_upload: str | None = None
    method: str = "em"
    threshold_sigma: float = 5.0
    radius_px: int = 9
    binning: int = 2
    min_diameter_nm: float = 30.0


#: Captures of one sample pooled in one analysis, at most (NanoSight records 3-5).
MAX_CAPTURES = 10


def start_analysis(app, principal, upload_id: str, request: AnalysisRequest,
                   pooled_with: list[str] | tuple[str, ...] = ()) -> NtaJob:
    """Queue the analysis of ``upload_id`` (a video of ``principal``'s), pooled with the
    captures ``pooled_with`` of the same sample, as ``exotrace nta analyze`` pools the
    videos it is given; returns the job.

    Raises
    ------
    NotFound
        No such upload (or another user's).
    Conflict
        The upload is not a video.
    InvalidInput
        Settings out of range, no frame rate, or the calibration upload is not one.
    """
    from ..batch import AnalysisSettings, settings_sha256

    store = upload_store(app)
    ids = list(dict.fromkeys([upload_id, *pooled_with]))
    if len(ids) > MAX_CAPTURES:
        raise InvalidInput(f"at most {MAX_CAPTURES} captures are pooled in one analysis, "
                           f"got {len(ids)}")
    uploads = [store.get(i, principal) for i in ids]
    for upload in uploads:
        if upload.kind != "video":
            raise Conflict(f"{upload.filename} is a {upload.kind} file, not a video: only "
                           "videos are analysed (vendor files are read on upload)")
    upload = uploads[0]
    rates = {u.read.get("fps") for u in uploads}
    fps = request.fps if request.fps is not None else upload.read.get("fps")
    if request.fps is None and len(rates) > 1:
        raise InvalidInput("the captures have different frame rates "
                           f"({', '.join(str(r) for r in sorted(rates, key=str))}); pool "
                           "captures of one acquisition, or enter the fps")
    if fps is None:
        raise InvalidInput(f"{upload.filename}: the file gives no frame rate; enter the fps")
    calibration, calibration_file = None, None
    if request.calibration_upload:
        cal_upload = store.get(request.calibration_upload, principal)
        if cal_upload.kind != "calibration":
            raise InvalidInput(f"calibration {cal_upload.filename} is a {cal_upload.kind} "
                               "file; upload the JSON written by `exotrace nta calibrate`")
        from ..nta.concentration import Calibration

        calibration = Calibration.from_json(cal_upload.path)
        calibration_file = cal_upload.filename
    settings = AnalysisSettings(
        pixel_size_nm=request.pixel_size_nm, fps=float(fps), temperature_c=request.temperature_c,
        exposure_ms=request.exposure_ms, viscosity_cp=request.viscosity_cp,
        invert=request.invert, calibration=calibration, calibration_file=calibration_file,
        dilution=request.dilution, threshold_sigma=request.threshold_sigma,
        radius_px=request.radius_px, binning=request.binning,
        min_diameter_nm=request.min_diameter_nm, method=request.method)
    frames = [u.read.get("frames") for u in uploads]
    if len(uploads) == 1:
        name, sha, videos = upload.filename, upload.sha256, []
    else:
        name = " + ".join(u.filename for u in uploads)
        sha = hashlib.sha256("\0".join(u.sha256 for u in uploads).encode()).hexdigest()
        videos = [(u.id, u.filename, u.path) for u in uploads]
    job = NtaJob(id=new_job_id(), owner_id=principal.user_id, owner=principal.username,
                 upload_id=upload.id, filename=name, video=upload.path, video_sha256=sha,
                 settings=settings, settings_sha256=settings_sha256(settings),
                 frames_total=None if None in frames else sum(frames), videos=videos)
    return nta_jobs(app).submit(job)


def attach_to_lot(ctx, lot_number: str, *, upload_id: str | None = None,
                  job_id: str | None = None) -> dict[str, Any]:
    """Attach a finished NTA job's result, or a vendor upload, to ``lot_number``.

    Written through :func:`exotrace.records.attach_nta_result` /
    :func:`exotrace.records.attach_instrument_file` in one audited transaction
    as the signed-in user. Returns their dict plus ``source`` (the file name).
    """
    from ..records import attach_instrument_file, attach_nta_result

    lot_number = (lot_number or "").strip()
    if not lot_number:
        raise InvalidInput("give the lot number to attach the result to")
    if (upload_id is None) == (job_id is None):
        raise InvalidInput("give either an upload or an analysis job to attach")
    app, principal = ctx.request.app, ctx.principal
    if job_id is not None:
        job = nta_jobs(app).get(job_id, principal)
        if job.state != "done":
            raise Conflict(f"analysis of {job.filename} is {job.state}; only a finished "
                           "analysis can be attached")
        out = ctx.write(lambda s, user: attach_nta_result(
            s, user, lot_number, video_name=job.filename, video_sha256=job.video_sha256,
            settings=job.settings.to_dict(), settings_sha256=job.settings_sha256,
            result=job.result), reason=f"NTA result of {job.filename} attached from the web")
        target: NtaJob | Upload = job
    else:
        upload = upload_store(app).get(upload_id, principal)
        if upload.kind != "vendor":
            raise Conflict(f"{upload.filename} is a {upload.kind} file: analyse a video first "
                           "and attach its result; a calibration is not a result")
        out = ctx.write(lambda s, user: attach_instrument_file(s, user, lot_number, upload.path),
                        reason=f"{upload.filename} imported from the web")
        target = upload
    out["source"] = target.filename
    if out["created"]:
        target.attached.append({"lot": out["lot"], "result_file": out["result_file"],
                                "measurements": len(out["measurements"])})
        try:  # the records hold the attachment; this note on the upload is for its page
            if isinstance(target, NtaJob):
                nta_jobs(app).save(target)
            else:
                upload_store(app).save(target)
        except OSError as exc:
            _log.warning("%s: attachment not noted in the upload folder: %s", target.id, exc)
    return out


def delete_upload(app, principal, upload_id: str) -> str:
    """Remove an upload and its file (results attached to lots stay in the records).

    Raises Conflict while an analysis of it is queued or running. Returns its name.
    """
    store = upload_store(app)
    upload = store.get(upload_id, principal)
    busy = [j for j in nta_jobs(app).list_for(principal)
            if upload.id in j.upload_ids and not j.finished]
    if busy:
        raise Conflict(f"{upload.filename} is being analysed; delete it when the analysis "
                       "has finished")
    store.remove(upload)
    return upload.filename
