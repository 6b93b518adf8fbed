"""Data the upload tests share: a lot to attach to, a short simulated NTA video and a
calibration, all built through the services and the NTA simulator."""

from __future__ import annotations

import json
import time
from datetime import date
from pathlib import Path

INSTRUMENTS = Path(__file__).resolve().parents[1] / "data" / "instruments"
NANOSIGHT = INSTRUMENTS / "nta34_weightings_ExperimentSummary.csv"

# 192 x 160 px, 40 frames at 25 frames/s (the NTA pipeline tests' small field,
# shortened): simulates in ~2 s and analyses in well under a second.
VIDEO = dict(diameters_nm=(100.0,), particles_per_ml=4e9, n_frames=40, width_px=192,
             height_px=160, exposure_ms=30.0, fps=25.0, pixel_size_nm=140.0,
             temperature_c=22.0, drift_px_per_frame=(3.0, -1.0), seed=11)
ACQUISITION = {"temperature_c": 22.0, "pixel_size_nm": 140.0, "exposure_ms": 30.0}
# A constant-depth calibration: concentration = particles per frame / effective volume.
CALIBRATION = {
    "effective_volume_ml": 1.5e-9, "field_area_um2": 602.0, "effective_depth_um": 2.49,
    "depth_model": "constant", "sheet_waist_um": None, "bead_log_brightness_ratio": None,
    "bead_particles_per_ml": 1.0e9, "bead_diameter_nm": 100.0, "measured_diameter_nm": 101.0,
    "particles_per_frame": 1.5, "n_tracks": 400, "n_frames": 300, "pixel_size_nm": 140.0,
    "fps": 25.0, "temperature_c": 22.0, "exposure_ms": 30.0,
    "created_utc": "2026-01-05T10:00:00+00:00", "source": "beads100.avi",
    "intensity_threshold": "detection", "schema_version": 2,
}


def simulate_video(folder: Path, name: str = "ev-sample.avi", **changes) -> Path:
    from exotrace.nta.simulate import simulate

    path = folder / name
    simulate(path, **{**VIDEO, **changes})
    return path


def write_calibration(folder: Path) -> Path:
    path = folder / "beads-calibration.json"
    path.write_text(json.dumps(CALIBRATION), encoding="utf-8")
    return path


def make_lot(url: str, number: str = "L-UP-1") -> str:
    """donor -> consent -> cell bank -> collection -> isolation run -> lot, by analyst1."""
    from exotrace.records import (
        User,
        add_cell_bank,
        add_collection,
        add_consent,
        add_donor,
        add_isolation_run,
        create_lot,
        make_engine,
        repositories,
        unit_of_work,
    )

    engine = make_engine(url)
    try:
        with unit_of_work(engine) as s:
            analyst = repositories.get_by(s, User, username="analyst1")
            add_donor(s, analyst, "D-UP", age_band="30-39", sex="female", exposures="none")
            add_consent(s, analyst, "D-UP", scopes=("research", "clinical_manufacturing"),
                        version="v2.1", consented_on=date(2025, 1, 10))
            bank = add_cell_bank(s, analyst, "CB-UP", donor_code="D-UP",
                                 tissue="umbilical_cord", passage=4,
                                 intended_use="clinical_manufacturing",
                                 identity={"cd73_pct": 98.7, "cd90_pct": 99.1, "cd105_pct": 97.5,
                                           "cd45_pct": 0.4, "hla_dr_pct": 0.2})
            coll = add_collection(s, analyst, "COL-UP", cell_bank_code=bank.code,
                                  medium="MEM alpha", serum_condition="serum_free",
                                  volume_ml=500.0, culture_days=3, cell_count=2.0e7)
            run = add_isolation_run(s, analyst, "ISO-UP", collection_code=coll.code,
                                    method="differential_ultracentrifugation", g_force=100_000,
                                    duration_min=70, rotor="SW32Ti", k_factor=204,
                                    input_volume_ml=500, output_volume_ml=1.0)
            create_lot(s, analyst, number, isolation_code=run.code,
                       intended_use="clinical_manufacturing", manufactured_on=date(2025, 3, 1),
                       expires_on=date(2036, 3, 1), volume_ml=10.0)
    finally:
        engine.dispose()
    return number


def lot_records(url: str, number: str) -> dict:
    """The lot's measurements, size distributions and the actors of their audit entries."""
    from exotrace.records import (
        Lot,
        LotSizeDistribution,
        make_engine,
        repositories,
        unit_of_work,
    )

    engine = make_engine(url)
    try:
        with unit_of_work(engine) as s:
            lot = repositories.get_by(s, Lot, number=number)
            ms = repositories.lot_measurements(s, lot.id)
            dists = list(s.query(LotSizeDistribution).filter_by(lot_id=lot.id))
            actors: dict[str, set[str]] = {}
            for row in [*ms, *dists]:
                table = type(row).__table__.name
                for e in repositories.audit_entries(s, table_name=table, record_pk=str(row.id)):
                    actors.setdefault(table, set()).add(e.actor_name)
            return {"measurements": {m.attribute: (m.value, m.unit, m.source_file_name)
                                     for m in ms},
                    "count": len(ms),
                    "distributions": [(d.source, len(json.loads(d.diameters_nm_json)))
                                      for d in dists],
                    "actors": actors}
    finally:
        engine.dispose()


def wait_for_job(get, job_id: str, timeout_s: float = 900.0) -> dict:
    """Poll ``get(job_id) -> dict`` until the job is finished.

    The limit only stops a hung job: a loaded CI machine that compiles the NTA kernels
    for the first time can take minutes (not a timing assertion).
    """
    deadline = time.monotonic() + timeout_s
    while True:
        job = get(job_id)
        if job["state"] in ("done", "failed"):
            return job
        if time.monotonic() > deadline:
            raise AssertionError(f"job {job_id} still {job['state']} after {timeout_s} s")
        time.sleep(0.1)


def upload_media(folder) -> dict:
    """A short simulated NTA video and its calibration in ``folder`` (module fixtures share them)."""
    return {"video": simulate_video(folder), "calibration": write_calibration(folder)}


def hold_job(app, upload_id: str, job_id: str, **state):
    """An analysis of upload ``upload_id`` put in the app's queue table in ``state`` (e.g.
    ``state="running", frames_done=10``) without a worker: it stays where the test
    puts it. Returns the job (the test changes it)."""
    from exotrace.batch import AnalysisSettings, settings_sha256
    from exotrace.web._nta_jobs import NtaJob, nta_jobs
    from exotrace.web._uploads import upload_store

    upload = upload_store(app)._load(upload_id)
    settings = AnalysisSettings(pixel_size_nm=140.0, fps=25.0, temperature_c=22.0)
    job = NtaJob(id=job_id, owner_id=upload.owner_id, owner=upload.owner, upload_id=upload.id,
                 filename=upload.filename, video=upload.path, video_sha256=upload.sha256,
                 settings=settings, settings_sha256=settings_sha256(settings), frames_total=40,
                 **state)
    nta_jobs(app)._jobs[job.id] = job
    return job
