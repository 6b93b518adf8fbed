"""Upload and analyse: drop NTA videos or vendor files, follow an analysis, attach
results to lots.

The file itself goes to ``PUT /api/v1/uploads`` from ``static/upload.js`` (streamed to
disk, never held in memory); these pages show what was uploaded, start NTA
analyses (background jobs, progress polled with htmx) and attach results to lots
through the same actions as the API (:mod:`._upload_actions`).
"""

from __future__ import annotations

import math
from typing import Annotated

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import FileResponse, RedirectResponse, Response

from ..api._context import Context, context
from ..errors import ExotraceError, InvalidInput, NotFound, http_status_for
from ..records import Permission
from ._nta_jobs import nta_jobs
from ._render import render
from ._upload_actions import AnalysisRequest, attach_to_lot, delete_upload, start_analysis
from ._uploads import upload_store

__all__ = ["router"]

router = APIRouter(include_in_schema=False)
_Guard = Depends(context(Permission.ENTER_RESULTS))


def _number(text: str, label: str, *, required: bool = True) -> float | None:
    text = (text or "").strip()
    if not text:
        if required:
            raise InvalidInput(f"{label} is required")
        return None
    try:
        value = float(text)
    except ValueError:
        raise InvalidInput(f"{label}: {text!r} is not a number") from None
    if not math.isfinite(value):
        raise InvalidInput(f"{label}: {text!r} is not a finite number")
    return value


@router.get("/upload")
def upload_page(request: Request, ctx: Context = _Guard) -> Response:
    store = upload_store(request.app)
    return render(request, "upload/index.html", uploads=store.list_for(ctx.principal),
                  jobs=nta_jobs(request.app).list_for(ctx.principal),
                  max_bytes=store.max_bytes)


def _upload_context(request: Request, ctx: Context, upload_id: str) -> dict:
    from ..records import measurements_from_result

    store = upload_store(request.app)
    upload = store.get(upload_id, ctx.principal)
    jobs = [j for j in nta_jobs(request.app).list_for(ctx.principal)
            if upload.id in j.upload_ids]
    mine = store.list_for(ctx.principal)
    calibrations = [u for u in mine if u.kind == "calibration"]
    others = [u for u in mine if u.kind == "video" and u.id != upload.id]
    values = measurements_from_result(upload.read) if upload.kind == "vendor" else []
    return {"upload": upload, "jobs": jobs, "calibrations": calibrations, "values": values,
            "other_videos": others}


@router.get("/upload/{upload_id}")
def upload_detail(upload_id: str, request: Request, ctx: Context = _Guard) -> Response:
    return render(request, "upload/detail.html", form={},
                  **_upload_context(request, ctx, upload_id))


@router.post("/upload/{upload_id}/analyse")
def analyse(upload_id: str, request: Request, ctx: Context = _Guard,
            temperature_c: Annotated[str, Form(max_length=40)] = "",
            pixel_size_nm: Annotated[str, Form(max_length=40)] = "",
            fps: Annotated[str, Form(max_length=40)] = "",
            viscosity_cp: Annotated[str, Form(max_length=40)] = "",
            exposure_ms: Annotated[str, Form(max_length=40)] = "",
            dilution: Annotated[str, Form(max_length=40)] = "1",
            calibration_upload: Annotated[str, Form(max_length=40)] = "",
            method: Annotated[str, Form(max_length=20)] = "em",
            invert: Annotated[str, Form(max_length=10)] = "",
            pooled_with: Annotated[list[str] | None, Form(max_length=40)] = None) -> Response:
    values = {"temperature_c": temperature_c, "pixel_size_nm": pixel_size_nm, "fps": fps,
              "viscosity_cp": viscosity_cp, "exposure_ms": exposure_ms, "dilution": dilution,
              "calibration_upload": calibration_upload, "method": method, "invert": invert,
              "pooled_with": pooled_with or []}
    try:
        params = AnalysisRequest(
            temperature_c=_number(temperature_c, "Temperature (°C)"),
            pixel_size_nm=_number(pixel_size_nm, "Pixel size (nm)"),
            fps=_number(fps, "Frame rate (frames/s)", required=False),
            viscosity_cp=_number(viscosity_cp, "Viscosity (cP)", required=False),
            exposure_ms=_number(exposure_ms, "Exposure (ms)", required=False),
            dilution=_number(dilution or "1", "Dilution factor"),
            calibration_upload=calibration_upload.strip() or None,
            method=method if method in ("em", "histogram") else "em",
            invert=bool(invert))
        job = start_analysis(request.app, ctx.principal, upload_id, params,
                             pooled_with=[p for p in pooled_with or [] if p][:20])
    except NotFound:
        raise
    except ExotraceError as exc:
        return render(request, "upload/detail.html", status=422, error=str(exc), form=values,
                      **_upload_context(request, ctx, upload_id))
    return RedirectResponse(f"/upload/jobs/{job.id}", status_code=303)


@router.post("/upload/{upload_id}/attach")
def attach_upload(upload_id: str, request: Request, ctx: Context = _Guard,
                  lot: Annotated[str, Form(max_length=64)] = "") -> Response:
    page = _upload_context(request, ctx, upload_id)  # NotFound for others' uploads
    try:
        out = attach_to_lot(ctx, lot, upload_id=upload_id)
    except ExotraceError as exc:  # no such lot, released lot, ...: nothing was written
        return render(request, "upload/detail.html", status=http_status_for(exc),
                      error=str(exc), form={}, lot=lot, **page)
    return render(request, "upload/detail.html", attached=out, form={}, **page)


@router.post("/upload/{upload_id}/delete")
def delete(upload_id: str, request: Request, ctx: Context = _Guard) -> Response:
    try:
        name = delete_upload(request.app, ctx.principal, upload_id)
    except NotFound:
        raise
    except ExotraceError as exc:  # still being analysed
        return render(request, "upload/detail.html", status=http_status_for(exc),
                      error=str(exc), form={}, **_upload_context(request, ctx, upload_id))
    store = upload_store(request.app)
    return render(request, "upload/index.html", message=f"{name} deleted.",
                  uploads=store.list_for(ctx.principal),
                  jobs=nta_jobs(request.app).list_for(ctx.principal), max_bytes=store.max_bytes)


@router.get("/upload/jobs/{job_id}")
def job_page(job_id: str, request: Request, ctx: Context = _Guard) -> Response:
    job = nta_jobs(request.app).get(job_id, ctx.principal)
    return render(request, "upload/job.html", job=job)


@router.get("/upload/jobs/{job_id}/progress")
def job_progress(job_id: str, request: Request, ctx: Context = _Guard) -> Response:
    """The polled fragment: a progress bar while the job runs, the result once finished
    (which carries no trigger, so polling stops)."""
    job = nta_jobs(request.app).get(job_id, ctx.principal)
    return render(request, "upload/_job_status.html", job=job)


@router.get("/upload/jobs/{job_id}/plot.svg")
def job_plot(job_id: str, request: Request, ctx: Context = _Guard) -> Response:
    job = nta_jobs(request.app).get(job_id, ctx.principal)
    if job.plot is None or not job.plot.is_file():
        raise NotFound(f"analysis of {job.filename} has no plot ({job.state})")
    return FileResponse(job.plot, media_type="image/svg+xml")


@router.post("/upload/jobs/{job_id}/attach")
def attach_job(job_id: str, request: Request, ctx: Context = _Guard,
               lot: Annotated[str, Form(max_length=64)] = "") -> Response:
    job = nta_jobs(request.app).get(job_id, ctx.principal)
    try:
        out = attach_to_lot(ctx, lot, job_id=job_id)
    except ExotraceError as exc:
        return render(request, "upload/job.html", status=http_status_for(exc), job=job,
                      error=str(exc), lot=lot)
    return render(request, "upload/job.html", job=job, attached=out)
