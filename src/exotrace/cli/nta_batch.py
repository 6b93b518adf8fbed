"""``exotrace nta batch``: many videos on a Dask cluster, resumable, optionally stored on lots."""

from __future__ import annotations

import os
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import typer

from ..errors import AuthError, ConfigurationError, ExotraceError, InvalidInput
from ._common import JsonOption, console, emit, err_console, print_table
from ._records import UserOption, password_from_env_or_prompt
from .nta import (
    Binning,
    Engine,
    EngineOpt,
    Exposure,
    Invert,
    MinDiameter,
    Radius,
    SizeMethod,
    Threshold,
    Viscosity,
)

__all__ = ["batch"]


@contextmanager
def _progress(total: int, *, enabled: bool):
    """Yield ``update(outcome)``: a bar of videos done with ok/failed/reused counts and rate."""
    counts = {"analysed": 0, "failed": 0, "skipped": 0}
    if not enabled or not err_console.is_terminal:
        yield lambda outcome: counts.__setitem__(outcome, counts[outcome] + 1)
        return
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    t0 = time.perf_counter()
    with Progress(TextColumn("videos"), BarColumn(), MofNCompleteColumn(),
                  TextColumn("[green]{task.fields[ok]} analysed[/] [red]{task.fields[failed]} "
                             "failed[/] {task.fields[skipped]} reused  {task.fields[rate]}"),
                  TimeElapsedColumn(), TimeRemainingColumn(), console=err_console,
                  transient=True) as bar:
        task = bar.add_task("videos", total=total, ok=0, failed=0, skipped=0, rate="")

        def update(outcome: str) -> None:
            counts[outcome] += 1
            minutes = (time.perf_counter() - t0) / 60
            done = counts["analysed"] + counts["failed"]
            rate = f"{done / minutes:.1f} videos/min" if done and minutes > 0 else ""
            bar.update(task, advance=1, ok=counts["analysed"], failed=counts["failed"],
                       skipped=counts["skipped"], rate=rate)

        yield update


def _human(data: dict[str, Any]) -> None:
    console.print(f"{data['videos']} videos: {data['analysed']} analysed, {data['skipped']} "
                  f"reused, {data['failed']} failed in {data['seconds']:.1f} s "
                  f"({data['workers']} Dask workers)", highlight=False)
    if data.get("groups"):
        print_table(data["groups"], title="sample groups")
    for r in data["results"]:
        if r["state"] == "failed":
            console.print(f"[red]{r['sample']}[/red]: {r['error']}", highlight=False,
                          soft_wrap=True)
    db = data.get("database")
    if db:
        console.print(f"lots: {db['stored']} results stored, {db['already_stored']} already "
                      f"stored, {db['failed']} failed", highlight=False)
        for e in db["errors"]:
            console.print(f"[red]{e['sample']} -> lot {e['lot']}[/red]: {e['error']}",
                          highlight=False, soft_wrap=True)
    console.print(f"results in {data['out']}, summary in {data['summary_csv']}", highlight=False)


def _lot_store(jobs, database: str | None, user: str | None):
    """The LotStore when results go to lots (checked before any analysis), else None."""
    from ..batch import LotStore

    lots = {j.lot for j in jobs if j.lot}
    url = database or os.environ.get("EXOTRACE_DATABASE_URL")
    if not lots:
        if database:
            raise InvalidInput("--database needs lots to store on: give --lot LOT or a 'lot' "
                               "column in the manifest")
        return None
    if not url:
        raise ConfigurationError("videos have lots but no database is given: give --database "
                                 "URL or set EXOTRACE_DATABASE_URL")
    if not user:
        raise AuthError("storing results on lots needs an acting user: give --user NAME (or "
                        "set EXOTRACE_USER)")
    store = LotStore(url, user, password_from_env_or_prompt(user))
    try:
        store.check_lots(lots)
    except BaseException:
        store.close()
        raise
    return store


def batch(
    inputs: Annotated[list[Path], typer.Argument(
        help="Videos, folders (searched for .avi/.mp4/... files) or CSV manifests.")],
    out: Annotated[Path, typer.Option("--out", help="Output folder: one JSON per video, "
                                      "summary.csv.")],
    workers: Annotated[int | None, typer.Option(
        "--workers", min=1, help="Local Dask workers (default: one per core).")] = None,
    scheduler: Annotated[str | None, typer.Option(
        "--scheduler", help="Use a running Dask cluster, e.g. tcp://HOST:8786.")] = None,
    pixel_size_nm: Annotated[float | None, typer.Option(
        "--pixel-size-nm", help="Pixel size in the sample plane, nm (or a manifest column).")
    ] = None,
    fps: Annotated[float | None, typer.Option(
        "--fps", help="Frame rate, frames/s (or a manifest column).")] = None,
    temperature_c: Annotated[float | None, typer.Option(
        "--temperature-c", help="Cell temperature, C (or a manifest column).")] = None,
    viscosity_cp: Viscosity = None,
    exposure_ms: Exposure = None,
    invert: Invert = False,
    calibration: Annotated[Path | None, typer.Option(
        "--calibration", help="Calibration JSON from `exotrace nta calibrate`.")] = None,
    dilution: Annotated[float, typer.Option(
        "--dilution", help="Dilution factor of the measured suspension.")] = 1.0,
    threshold_sigma: Threshold = 5.0,
    radius_px: Radius = 9,
    binning: Binning = 2,
    min_diameter_nm: MinDiameter = 30.0,
    method: Annotated[SizeMethod, typer.Option("--method", help="Size method.")] = SizeMethod.em,
    engine: EngineOpt = Engine.auto,
    lot: Annotated[str | None, typer.Option(
        "--lot", help="Store every result on this lot (a manifest 'lot' column overrides).")
    ] = None,
    database: Annotated[str | None, typer.Option(
        "--database", help="Database URL to store results on lots (default "
        "EXOTRACE_DATABASE_URL when lots are given).")] = None,
    user: UserOption = None,
    as_json: JsonOption = False,
) -> None:
    """Analyse many videos on Dask: one JSON per video and summary.csv, resumable."""
    from ..batch import collect_jobs, run_batch, summary_rows

    if workers is not None and scheduler:
        raise InvalidInput("--workers sizes the local cluster; with --scheduler the cluster's "
                           "own workers are used (start them with `dask worker`)")
    defaults = {"pixel_size_nm": pixel_size_nm, "fps": fps, "temperature_c": temperature_c,
                "viscosity_cp": viscosity_cp, "exposure_ms": exposure_ms, "invert": invert,
                "calibration": str(calibration) if calibration is not None else None,
                "dilution": dilution, "threshold_sigma": threshold_sigma, "radius_px": radius_px,
                "binning": binning, "min_diameter_nm": min_diameter_nm, "method": method.value,
                "engine": engine.value}
    jobs = collect_jobs(inputs, defaults, lot=lot)
    store = _lot_store(jobs, database, user)
    stored: list[dict[str, Any]] = []
    try:
        with _progress(len(jobs), enabled=not as_json) as update:
            def on_record(record: dict[str, Any], outcome: str) -> None:
                if store is not None and record["state"] == "ok" and record.get("lot"):
                    stored.append(store.store(record))
                update(outcome)

            report = run_batch(jobs, out, scheduler=scheduler, workers=workers,
                               on_record=on_record)
    finally:
        if store is not None:
            store.close()
    data = report.to_dict()
    data["groups"] = [{k: row[k] for k in ("group", "n_videos", "n_failed", "d50_nm",
                                           "d50_nm_sd", "particles_per_ml",
                                           "particles_per_ml_sd")}
                      for row in summary_rows(report.records) if row["row_type"] == "group"]
    if store is not None:
        errors = [s for s in stored if s["error"]]
        data["database"] = {"stored": sum(1 for s in stored if s["created"]),
                            "already_stored": sum(1 for s in stored if s["created"] is False),
                            "failed": len(errors), "errors": errors,
                            "checkpoints": [s["checkpoint"] for s in stored
                                            if s.get("checkpoint")]}
    emit(data, as_json=as_json, human=_human)
    failed = data["failed"] + (data["database"]["failed"] if store is not None else 0)
    if failed:
        # exit code 1: partly done, unlike the usage errors that stop the command
        raise ExotraceError(f"{data['failed']} of {data['videos']} video(s) failed"
                          + (f", {data['database']['failed']} result(s) not stored on lots"
                             if store is not None and data["database"]["failed"] else "")
                          + f"; see {data['summary_csv']}")
