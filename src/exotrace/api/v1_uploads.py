"""Uploads, NTA analysis jobs and attaching results to lots (``/api/v1``).

* ``PUT /api/v1/uploads?filename=NAME`` with the raw file as the body (any
  ``Content-Type``): streamed to disk; 413 above the limit, 415 for content
  exotrace does not read; vendor files are read at once (``read``).
* ``POST /api/v1/nta/jobs``: analyse an uploaded video in the background;
  ``GET /api/v1/nta/jobs/{id}``: state, progress and, when done, the result
  (the ``exotrace nta analyze --json`` object).
* ``POST /api/v1/measurements``: attach a finished job's result or a vendor
  upload to a lot (audited, as the caller).

Callers see their own uploads and jobs only (an admin sees all). Uploads and jobs
are kept in the upload folder (see :mod:`exotrace.web._uploads`).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, ConfigDict, Field, model_validator
from starlette.concurrency import run_in_threadpool
from starlette.requests import ClientDisconnect

from ..errors import ExotraceError
from ..records import Permission
from ..web._nta_jobs import nta_jobs
from ..web._upload_actions import AnalysisRequest, attach_to_lot, delete_upload, start_analysis
from ..web._uploads import TooLarge, UnknownContent, inspect, upload_store
from ._context import Context, context
from ._errors import problem

__all__ = ["router", "receive_upload"]

router = APIRouter(prefix="/api/v1", tags=["uploads"])
_ID = r"^[A-Za-z0-9_-]{1,40}$"
_Number = Annotated[float, Field(allow_inf_nan=False)]


class UploadOut(BaseModel):
    id: str
    filename: str
    size_bytes: int
    sha256: str
    kind: Literal["video", "vendor", "calibration"]
    format: str
    owner: str
    created_at: str
    page: str
    read: dict[str, Any] = Field(description="vendor: what the reader read (the `exotrace "
                                             "import --json` object); video: frames, frame size, "
                                             "fps; calibration: its fields")
    attached: list[dict[str, Any]]


class JobIn(BaseModel):
    """Acquisition and analysis settings (the options of `exotrace nta analyze`)."""

    model_config = ConfigDict(extra="forbid")
    upload: str = Field(pattern=_ID, description="id of an uploaded video")
    pooled_with: list[Annotated[str, Field(pattern=_ID)]] = Field(
        [], max_length=9, description="ids of further captures of the same sample, pooled "
                                      "with `upload` as `exotrace nta analyze a.avi b.avi` "
                                      "pools them")
    temperature_c: _Number = Field(description="cell temperature, C")
    pixel_size_nm: _Number = Field(gt=0, description="pixel size in the sample plane, nm")
    fps: _Number | None = Field(None, gt=0, description="frame rate, frames/s (default: "
                                                        "the video's own)")
    viscosity_cp: _Number | None = Field(None, gt=0, description="medium viscosity, cP "
                                                                 "(default: water)")
    exposure_ms: _Number | None = Field(None, ge=0, description="shutter time per frame, ms")
    invert: bool = False
    dilution: _Number = Field(1.0, gt=0)
    calibration_upload: str | None = Field(None, pattern=_ID, description="id of an uploaded "
                                           "calibration JSON (`exotrace nta calibrate`)")
    method: Literal["em", "histogram"] = "em"
    threshold_sigma: _Number = Field(5.0, gt=0, le=100)
    radius_px: int = Field(9, ge=1, le=50)
    binning: Literal[1, 2] = 2
    min_diameter_nm: _Number = Field(30.0, gt=0, le=10000)


class JobOut(BaseModel):
    id: str
    upload: str
    uploads: list[str] = Field(description="every capture analysed (pooled: several)")
    filename: str
    owner: str
    state: Literal["queued", "running", "done", "failed"]
    frames_done: int
    frames_total: int | None
    progress: float | None = Field(description="fraction done, 0..1 (null: frame count unknown)")
    error: str | None
    note: str | None = Field(None, description="shown while the job runs (e.g. the one-time "
                                               "compilation of the NTA kernels)")
    settings: dict[str, Any]
    created_at: str
    started_at: str | None
    finished_at: str | None
    attached: list[dict[str, Any]]
    page: str
    result: dict[str, Any] | None = Field(None, description="the `exotrace nta analyze --json` "
                                                            "object, once done")


class AttachIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    lot: str = Field(min_length=1, max_length=64)
    upload: str | None = Field(None, pattern=_ID, description="a vendor upload")
    job: str | None = Field(None, pattern=_ID, description="a finished NTA job")

    @model_validator(mode="after")
    def _one_source(self) -> AttachIn:
        if (self.upload is None) == (self.job is None):
            raise ValueError("give either upload or job")
        return self


class AttachOut(BaseModel):
    lot: str
    source: str
    result_file: str
    created: bool = Field(description="false: this result was attached to the lot before; "
                                      "nothing was written again")
    measurements: list[dict[str, Any]]
    size_distribution: bool


def _upload_out(upload) -> UploadOut:
    return UploadOut(**upload.summary(), read=upload.read, attached=upload.attached)


async def receive_upload(request: Request, filename: str, principal):
    """Stream the request body into a new upload, read it, keep it. Returns the upload or a
    problem response (413, 415, 400)."""
    store = upload_store(request.app)
    if request.headers.get("content-type", "").startswith(("multipart/form-data",
                                                            "application/x-www-form-urlencoded")):
        # A form body may already have been parsed (CSRF check); the file must be the body.
        return problem(415, f"{filename}: send the file's bytes as the request body "
                            "(Content-Type: application/octet-stream), not a form")
    declared = request.headers.get("content-length")
    try:
        upload = await store.receive(request.stream(), filename, principal,
                                     declared_bytes=int(declared) if declared and
                                     declared.isdigit() else None)
    except TooLarge as exc:
        return problem(413, str(exc))
    except UnknownContent as exc:
        return problem(415, str(exc))
    except ClientDisconnect:
        return problem(400, f"{filename}: the upload was interrupted; nothing was kept")
    try:
        upload.read = await run_in_threadpool(inspect, upload)
    except ExotraceError:
        await run_in_threadpool(store.remove, upload)
        raise
    return store.add(upload)


@router.put("/uploads", status_code=201, response_model=UploadOut,
            responses={413: {"description": "larger than the upload limit"},
                       415: {"description": "content exotrace does not read"}},
            openapi_extra={"requestBody": {"required": True, "content": {
                "application/octet-stream": {"schema": {"type": "string",
                                                        "format": "binary"}}}}})
async def put_upload(request: Request,
                     filename: Annotated[str, Query(min_length=1, max_length=1000)],
                     ctx: Context = Depends(context(Permission.ENTER_RESULTS))):
    """Upload one file (the raw bytes as the body): an NTA video (AVI, MP4/MOV, MKV,
    TIFF stack), a vendor export (NanoSight, ZetaView, FCS, BCA plate) or an NTA
    calibration JSON. Browser sessions send the `X-CSRF-Token` header."""
    upload = await receive_upload(request, filename, ctx.principal)
    if isinstance(upload, JSONResponse):
        return upload
    return _upload_out(upload)


@router.get("/uploads", response_model=list[UploadOut])
def list_uploads(request: Request, ctx: Context = Depends(context(Permission.ENTER_RESULTS))):
    """Your uploads (all uploads for an admin), newest first."""
    return [_upload_out(u) for u in upload_store(request.app).list_for(ctx.principal)]


@router.get("/uploads/{upload_id}", response_model=UploadOut)
def get_upload(upload_id: str, request: Request,
               ctx: Context = Depends(context(Permission.ENTER_RESULTS))):
    """One upload and what was read from it."""
    return _upload_out(upload_store(request.app).get(upload_id, ctx.principal))


@router.delete("/uploads/{upload_id}", status_code=204)
def remove_upload(upload_id: str, request: Request,
                  ctx: Context = Depends(context(Permission.ENTER_RESULTS))) -> Response:
    """Delete an upload's file (results attached to lots stay; 409 while it is analysed)."""
    delete_upload(request.app, ctx.principal, upload_id)
    return Response(status_code=204)


@router.post("/nta/jobs", status_code=202, response_model=JobOut)
def create_job(body: JobIn, request: Request,
               ctx: Context = Depends(context(Permission.ENTER_RESULTS))):
    """Analyse an uploaded video in the background; poll the job for progress."""
    params = body.model_dump(exclude={"upload", "pooled_with"})
    job = start_analysis(request.app, ctx.principal, body.upload, AnalysisRequest(**params),
                         pooled_with=body.pooled_with)
    return JobOut(**job.view())


@router.get("/nta/jobs", response_model=list[JobOut])
def list_jobs(request: Request, ctx: Context = Depends(context(Permission.ENTER_RESULTS))):
    """Your analysis jobs, newest first (without results)."""
    return [JobOut(**j.view(with_result=False)) for j in nta_jobs(request.app).list_for(
        ctx.principal)]


@router.get("/nta/jobs/{job_id}", response_model=JobOut)
def get_job(job_id: str, request: Request,
            ctx: Context = Depends(context(Permission.ENTER_RESULTS))):
    """State, progress and (once done) the result of an analysis job."""
    return JobOut(**nta_jobs(request.app).get(job_id, ctx.principal).view())


@router.post("/measurements", status_code=201, response_model=AttachOut)
def attach(body: AttachIn, ctx: Context = Depends(context(Permission.ENTER_RESULTS))):
    """Attach a finished job's result or a vendor upload to a lot as measurements
    (once per lot and file: a repeat writes nothing and answers `created: false`)."""
    return AttachOut(**attach_to_lot(ctx, body.lot, upload_id=body.upload, job_id=body.job))
