"""``exotrace demo``: the main job on generated data, end to end.

``demo run`` is what ``make demo`` calls: it simulates NTA captures with a known
ground truth, calibrates and analyses them, then builds a demo records database
(SQLite in the output folder) through the services - donors to vials, release,
clinic follow-up where those parts are installed - verifies its audit trail and
writes the reports into the output folder. ``demo load`` (from the records
commands) fills the database at ``EXOTRACE_DATABASE_URL`` with the same records.
"""

from __future__ import annotations

import importlib
import json


import time
from pathlib import Path
from typing import Annotated

import typer

from ._common import JsonOption, console, emit, print_table, progress_bar, to_jsonable

__all__ = ["register"]

demo_app = typer.Typer(help="Demonstrations on generated data.", no_args_is_help=True)

# The EV sample: three sub-populations of small EVs (number fractions), and the
# bead standard used to calibrate the effective volume.
_SAMPLE = {"diameters_nm": (75.0, 120.0, 180.0), "fractions": (0.5, 0.35, 0.15),
           "particles_per_ml": 2.0e9, "refractive_index": 1.39, "diameter_cv": 0.08}
_BEADS = {"diameters_nm": (100.0,), "particles_per_ml": 1.5e9, "refractive_index": 1.59}
_DILUTION = 1000.0


def _capture(quick: bool) -> dict:
    return {"n_frames": 150 if quick else 400, "width_px": 320 if quick else 480,
            "height_px": 240 if quick else 360, "pixel_size_nm": 140.0, "fps": 25.0,
            "exposure_ms": 30.0, "temperature_c": 22.0, "drift_px_per_frame": (3.0, 0.5)}


def _nta_part(out: Path, *, quick: bool, as_json: bool) -> dict:
    from ..nta import Acquisition, analyze_videos, calibrate_videos
    from ..nta.plots import plot_distribution
    from ..nta.report import write_report_html
    from ..nta.simulate import simulate

    cap = _capture(quick)
    acq = Acquisition(pixel_size_nm=cap["pixel_size_nm"], fps=cap["fps"],
                      temperature_c=cap["temperature_c"], exposure_ms=cap["exposure_ms"])
    videos = []
    n_videos = 2 if quick else 3
    total = cap["n_frames"] * (n_videos + 1)
    with progress_bar("Simulating NTA captures", total, enabled=not as_json) as advance:
        beads = out / "beads-100nm.avi"
        simulate(beads, seed=11, progress=advance, **cap, **_BEADS)
        for i in range(n_videos):
            path = out / f"ev-sample-capture{i + 1}.avi"
            simulate(path, seed=100 + i, progress=advance, **cap, **_SAMPLE)
            videos.append(path)
    with progress_bar("Calibrating on beads", cap["n_frames"], enabled=not as_json) as advance:
        calibration = calibrate_videos(beads, acq, particles_per_ml=_BEADS["particles_per_ml"],
                                       bead_diameter_nm=100.0, progress=advance)
    cal_path = out / "calibration.json"
    calibration.to_json(cal_path)
    with progress_bar("Analysing the EV sample", cap["n_frames"] * n_videos,
                      enabled=not as_json) as advance:
        result = analyze_videos(videos, acq, calibration=calibration, dilution=_DILUTION,
                                progress=advance)
    summary = result.to_dict()
    (out / "nta-result.json").write_text(json.dumps(to_jsonable(summary), indent=2))
    plot_distribution(result.distribution, out / "nta-distribution.png",
                      title="EV sample: number-weighted size distribution")
    write_report_html(summary, out / "nta-report.html", title="EV sample (simulated)",
                      plot_src="nta-distribution.png")
    truth = {"diameters_nm": list(_SAMPLE["diameters_nm"]),
             "fractions": list(_SAMPLE["fractions"]),
             "particles_per_ml": _SAMPLE["particles_per_ml"] * _DILUTION}
    if not as_json:
        print_table([
            {"quantity": "peaks (nm)", "measured": ", ".join(f"{p:.0f}" for p in summary["peaks_nm"]),
             "truth": ", ".join(f"{d:.0f}" for d in truth["diameters_nm"])},
            {"quantity": "mean / mode (nm)",
             "measured": f"{summary['mean_nm']:.1f} / {summary['mode_nm']:.1f}", "truth": ""},
            {"quantity": "D10 / D50 / D90 (nm)",
             "measured": f"{summary['d10_nm']:.1f} / {summary['d50_nm']:.1f} / {summary['d90_nm']:.1f}",
             "truth": ""},
            {"quantity": "particles/mL (x1000 dilution)",
             "measured": "-" if summary["particles_per_ml"] is None
             else f"{summary['particles_per_ml']:.3g}",
             "truth": f"{truth['particles_per_ml']:.3g}"},
            {"quantity": "tracks", "measured": str(summary["n_tracks"]), "truth": ""},
            {"quantity": "drift x, y (px/frame)",
             "measured": ", ".join(f"{v:.2f}" for v in summary["drift_px_per_frame"]),
             "truth": ", ".join(f"{v:.2f}" for v in cap["drift_px_per_frame"])},
        ], title="NTA: simulated EV sample (3 captures pooled)")
    return {"result": summary, "truth": truth, "report": str(out / "nta-report.html"),
            "plot": str(out / "nta-distribution.png"), "calibration": str(cal_path)}


def _optional(module: str, name: str):
    """A demo step of a part that may not be installed in this build."""
    try:
        return getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError):
        return None


def _records_part(out: Path, *, as_json: bool) -> dict:
    from ..records import make_engine, unit_of_work, upgrade_database, verify_audit_trail
    from ..records.demo import load_demo

    db_path = out / "exotrace-demo.db"
    for suffix in ("", "-wal", "-shm"):
        Path(f"{db_path}{suffix}").unlink(missing_ok=True)
    url = f"sqlite:///{db_path}"
    engine = make_engine(url)
    steps: dict = {"database": url}
    try:
        upgrade_database(engine)
        with unit_of_work(engine) as session:
            steps["records"] = load_demo(session)
        extra = [("quality", "exotrace.records", "load_quality_demo"),
                 ("clinic", "exotrace.records", "load_clinic_demo")]
        for label, module, name in extra:
            loader = _optional(module, name)
            if loader is None:
                continue
            with unit_of_work(engine) as session:
                steps[label] = loader(session, out_dir=out) if _takes_out_dir(loader) \
                    else loader(session)
        with unit_of_work(engine) as session:
            report = verify_audit_trail(session)
        steps["audit"] = to_jsonable(report)
    finally:
        engine.dispose()
    if not as_json:
        rec = steps["records"]
        rows = [{"records": k, "count": len(v) if isinstance(v, (list, dict)) else v,
                 "examples": ", ".join(map(str, list(v)[:4])) if isinstance(v, (list, dict))
                 else ""}
                for k, v in rec.items() if isinstance(v, (int, list, dict))]
        print_table(rows, title="Records demo database (audited, through the services)")
        audit = steps["audit"]
        ok = audit.get("ok", not audit.get("findings"))
        console.print(f"Audit trail: {'intact' if ok else 'PROBLEMS FOUND'} "
                      f"({audit.get('entries_checked', audit.get('n_entries', '?'))} entries checked)")
    return steps


def _takes_out_dir(func) -> bool:
    import inspect

    return "out_dir" in inspect.signature(func).parameters


def _misev_part(out: Path) -> dict | None:
    check_study = _optional("exotrace.characterization", "check_study")
    example = _optional("exotrace.characterization", "example_study_path")
    to_html = _optional("exotrace.characterization", "report_to_html")
    if not (check_study and example and to_html):
        return None
    report = check_study(example())
    (out / "misev-report.html").write_text(to_html(report), encoding="utf-8")
    return {"report": str(out / "misev-report.html"),
            "completeness_percent": getattr(report, "completeness_percent",
                                            getattr(report, "score_percent", None))}


@demo_app.command("run")
def run(
    out: Annotated[Path, typer.Option("--out", help="Folder for the demo's files.")] = Path(
        "demo-output"),
    quick: Annotated[bool, typer.Option("--quick", help="Smaller videos (for tests).")] = False,
    as_json: JsonOption = False,
) -> None:
    """Simulate, analyse, record and report: the whole job on generated data."""
    started = time.perf_counter()
    out.mkdir(parents=True, exist_ok=True)
    summary = {"out": str(out.resolve()), "nta": _nta_part(out, quick=quick, as_json=as_json)}
    summary["records"] = _records_part(out, as_json=as_json)
    misev = _misev_part(out)
    if misev:
        summary["misev"] = misev
    summary["seconds"] = round(time.perf_counter() - started, 1)
    if as_json:
        emit(summary, as_json=True)
        return
    console.print(f"\nDemo written to {out}/ in {summary['seconds']} s: nta-report.html, "
                  "nta-distribution.png, nta-result.json, calibration.json, exotrace-demo.db"
                  + (", misev-report.html" if misev else ""))
    console.print("Explore the database with e.g. "
                  f"EXOTRACE_DATABASE_URL=sqlite:///{out}/exotrace-demo.db exotrace lot list")


def register(app: typer.Typer) -> None:
    register_demo_load = _optional("exotrace.cli.demo_records", "register_demo_load")
    if register_demo_load is not None:
        register_demo_load(demo_app)
    app.add_typer(demo_app, name="demo")



