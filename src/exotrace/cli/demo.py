"""``exotrace demo``: the main job on generated data, end to end.

``demo run`` is what ``make demo`` calls: it simulates NTA captures with a known
ground truth, calibrates and analyses them, then builds a demo records database
(SQLite in the output folder) through the services - donors to vials, release,
clinic follow-up where those parts are installed - verifies its audit trail and
writes the reports into the output folder. ``demo load`` (from the records
commands) fills the database at ``EXOTRACE_DATABASE_URL`` with the same records.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from pathlib import Path
from typing import Annotated

import typer

from ._common import JsonOption, console, emit, print_table, progress_bar, to_jsonable

__all__ = ["register"]

demo_app = typer.Typer(help="Demonstrations on generated data.", no_args_is_help=True)

# The EV sample: three sub-populations of small EVs (number fractions), and the
# bead standard used to calibrate the effective volume. Diluted as an NTA user
# would (~20-30 particles per frame in this 480 x 360 field, ~150-200 over a
# full 1280 x 1024 one): at 2e9/mL overlapping spots and wrong links hid the
# 75 nm population and made a spurious 21 nm peak.
_SAMPLE = {"diameters_nm": (75.0, 120.0, 180.0), "fractions": (0.5, 0.35, 0.15),
           "particles_per_ml": 6.0e8, "refractive_index": 1.39, "diameter_cv": 0.08}
_BEADS = {"diameters_nm": (100.0,), "particles_per_ml": 6.0e8, "refractive_index": 1.59}
_DILUTION = 1000.0


def _capture(quick: bool) -> dict:
    return {"n_frames": 150 if quick else 400, "width_px": 320 if quick else 480,
            "height_px": 240 if quick else 360, "pixel_size_nm": 140.0, "fps": 25.0,
            "exposure_ms": 30.0, "temperature_c": 22.0, "drift_px_per_frame": (3.0, 0.5),
            "bit_depth": 12}


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


def _records_part(out: Path, *, as_json: bool) -> dict:
    from ..records import (
        make_engine,
        repositories,
        unit_of_work,
        upgrade_database,
        verify_audit_trail,
    )
    from .demo_records import load_all_demos

    db_path = out / "exotrace-demo.db"
    for suffix in ("", "-wal", "-shm"):
        Path(f"{db_path}{suffix}").unlink(missing_ok=True)
    url = f"sqlite:///{db_path}"
    engine = make_engine(url)
    steps: dict = {"database": url}
    try:
        upgrade_database(engine)
        summary = load_all_demos(engine, out_dir=out)
        steps["quality"] = summary.pop("quality")
        steps["clinic"] = summary.pop("clinic")
        steps["records"] = summary
        with unit_of_work(engine) as session:
            report = verify_audit_trail(session)
            statuses = Counter(lot.status.value for lot in repositories.list_lots(session))
        steps["audit"] = to_jsonable(report)
        steps["lot_status"] = dict(sorted(statuses.items()))
    finally:
        engine.dispose()
    if not as_json:
        rec = steps["records"]
        rows = [{"records": k, "count": len(v) if isinstance(v, (list, dict)) else v,
                 "examples": ", ".join(map(str, list(v)[:4])) if isinstance(v, (list, dict))
                 else ""}
                for k, v in rec.items()
                if isinstance(v, (int, list, dict)) and k not in ("released", "awaiting_release")]
        rows += [{"records": f"lots {status}", "count": n, "examples": ""}
                 for status, n in steps["lot_status"].items()]
        print_table(rows, title="Records demo database (audited, through the services)")
        for label in ("quality", "clinic"):
            if label in steps:
                part = steps[label]
                brief = {k: (len(v) if isinstance(v, (list, dict)) else v)
                         for k, v in part.items() if isinstance(v, (int, float, str, list, dict))}
                console.print(f"{label}: " + ", ".join(f"{k}={v}" for k, v in brief.items()))
        audit = steps["audit"]
        ok = audit.get("ok", not audit.get("findings"))
        console.print(f"Audit trail: {'intact' if ok else 'PROBLEMS FOUND'} "
                      f"({audit.get('entries_checked', audit.get('n_entries', '?'))} entries checked)")
    return steps


def _misev_part(out: Path) -> dict:
    from ..characterization import check_study, example_study_path, report_to_html

    report = check_study(example_study_path())
    (out / "misev-report.html").write_text(report_to_html(report), encoding="utf-8")
    return {"report": str(out / "misev-report.html"),
            "completeness_percent": report.score_percent}


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
    summary["misev"] = _misev_part(out)
    summary["seconds"] = round(time.perf_counter() - started, 1)
    if as_json:
        emit(summary, as_json=True)
        return
    console.print(f"\nDemo written to {out}/ in {summary['seconds']} s: nta-report.html, "
                  "nta-distribution.png, nta-result.json, calibration.json, exotrace-demo.db, "
                  "misev-report.html, stability_study.csv")
    console.print("Explore the database with e.g. "
                  f"EXOTRACE_DATABASE_URL=sqlite:///{out}/exotrace-demo.db exotrace lot list")


def register(app: typer.Typer) -> None:
    from .demo_records import register_demo_load

    register_demo_load(demo_app)
    app.add_typer(demo_app, name="demo")



