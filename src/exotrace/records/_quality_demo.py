"""The quality demo: specifications, release results, verification, QA dispositions, an
OOS investigation, a trend and a stability dataset on top of the records demo, written
through the services.
"""

from __future__ import annotations

import random
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path

import numpy as np
from sqlalchemy.orm import Session

from ..quality import example_specification_path
from . import _repositories as repo
from . import _repositories_quality as qrepo
from ._base import clock_set_to
from ._models_auth import User
from ._models_lot import Lot
from ._quality_investigations import close_investigation
from ._quality_release import reject_lot, release_lot, submit_for_release, verify_lot
from ._quality_results import add_quality_result, add_size_distribution, set_reference_value
from ._quality_specs import assign_specification, import_specification
from ._services_lot import add_measurement, create_lot

__all__ = ["load_quality_demo"]


_DEMO_QUALITATIVE = {"CD9": "present", "CD63": "present", "CD81": "present",
                     "TSG101": "present", "calnexin": "absent", "GM130": "absent",
                     "sterility": "negative", "mycoplasma": "negative"}
# Trend lots: size_d50 (nm) of 16 lots made after the records demo's lots; the
# last six rise steadily (Nelson rule 3 at the last lot).
_TREND_D50_NM = [118.0, 123.5, 116.2, 121.8, 119.4, 124.1, 117.3, 120.6, 122.0, 115.9,
                 119.0, 121.2, 124.0, 127.5, 131.8, 136.0]


def _release_results(session: Session, analyst: User, number: str, *, endotoxin: float,
                     rng: random.Random) -> None:
    conc = [m for m in repo.lot_measurements(session, repo.get_by(session, Lot,
                                                                  number=number).id)
            if m.attribute == "particle_concentration"]
    label = conc[0].value * rng.uniform(0.9, 1.1) if conc else 1e11
    set_reference_value(session, analyst, number, "label_claim", float(f"{label:.3g}"),
                        "particles/mL")
    for test, word in _DEMO_QUALITATIVE.items():
        add_quality_result(session, analyst, number, test=test, value=word)
    add_quality_result(session, analyst, number, test="endotoxin", value=endotoxin,
                       unit="EU/mL")
    add_quality_result(session, analyst, number, test="fraction_50_400nm",
                       value=round(rng.uniform(91.0, 97.0), 1), unit="%")
    add_quality_result(session, analyst, number, test="potency",
                       value=round(rng.uniform(80.0, 125.0), 1), unit="%")


def _stability_csv(rng: random.Random) -> str:
    """Three batches at 5 C, particle concentration (1e11 particles/mL) over 0-18 months."""
    lines = ["batch,time_months,particles_e11_per_ml"]
    for batch, start, slope in (("EV-STAB-A", 2.05, -0.031), ("EV-STAB-B", 1.98, -0.028),
                                ("EV-STAB-C", 2.01, -0.033)):
        for t in (0, 3, 6, 9, 12, 18):
            value = start + slope * t + rng.gauss(0.0, 0.02)
            lines.append(f"{batch},{t},{value:.3f}")
    return "\n".join(lines) + "\n"


def load_quality_demo(session: Session, *, out_dir: str | Path | None = None,
                      seed: int = 2025) -> dict:
    """Extend the records demo (:func:`exotrace.records.demo.load_demo`) with quality data.

    Imports the shipped example specification (qa1), enters release results
    (analyst1), verifies (reviewer1) and releases (qa1) EV-2025-004 and
    EV-2025-008, rejects EV-2025-009 after a confirmed endotoxin OOS, leaves
    EV-2025-P01-B awaiting verification, adds 16 trend lots whose ``size_d50``
    trips Nelson rule 3 in ``exotrace spc lots --attribute size_d50``, stores
    their size distributions, and writes ``stability_study.csv`` (three
    batches, 0-18 months) into ``out_dir`` when given.

    The release work is recorded the day after the records demo, before the
    clinic demo's first administration; each trend lot is recorded the day
    after it was made, never before.

    Returns
    -------
    dict
        What was made (lot numbers per outcome, trend, stability file).
    """
    from .demo import demo_time

    rng = random.Random(seed)
    with clock_set_to(demo_time(2025, 5, 4, 8)):
        summary = _release_stage(session, rng)
    trend = _trend_lots(session, repo.get_by(session, User, username="analyst1"), rng)
    stability = None
    if out_dir is not None:
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        stability = out / "stability_study.csv"
        stability.write_text(_stability_csv(rng), encoding="utf-8")
    session.flush()
    oos = summary.pop("oos_investigations")
    return {**summary, "trend_lots": trend,
            "trend": {"attribute": "size_d50", "rule": 3, "lot": trend[-1]},
            "oos_investigations": oos, "stability_csv": str(stability) if stability else None}


def _trend_lots(session: Session, analyst: User, rng: random.Random) -> list[str]:
    """16 lots made weekly after the records demo's lots, each recorded the day after."""
    from .demo import demo_date

    trend = []
    for i, d50 in enumerate(_TREND_D50_NM, start=1):
        number = f"EV-2025-T{i:02d}"
        made = demo_date(2025, 5, 5) + timedelta(days=7 * i)
        expires = demo_date(2028, 5, 5) + timedelta(days=7 * i)
        recorded = datetime.combine(made + timedelta(days=1), time(8), tzinfo=UTC)
        with clock_set_to(recorded):
            _trend_lot(session, analyst, number, made, expires, d50, rng)
        trend.append(number)
    return trend


def _trend_lot(session: Session, analyst: User, number: str, made: date, expires: date,
               d50: float, rng: random.Random) -> None:
    create_lot(session, analyst, number, isolation_code="ISO-08",
               intended_use="clinical_manufacturing", manufactured_on=made, expires_on=expires,
               volume_ml=2.0)
    conc = 8.0e10 * rng.lognormvariate(0.0, 0.1)
    for attribute, value, unit, method in (
            ("particle_concentration", conc, "particles/mL", "NTA"),
            ("size_d50", d50, "nm", "NTA"),
            ("particle_protein_ratio", 3.5e10 * rng.lognormvariate(0.0, 0.15),
             "particles/ug", "calculated")):
        add_measurement(session, analyst, number, attribute=attribute,
                        value=float(f"{value:.4g}"), unit=unit, method=method,
                        instrument="NanoSight NS300" if method == "NTA" else None)
    diameters = np.arange(30.0, 400.0, 5.0)
    sigma_ln = 0.35
    weights = np.exp(-0.5 * ((np.log(diameters) - np.log(d50)) / sigma_ln) ** 2) / diameters
    add_size_distribution(session, analyst, number, diameters, np.round(weights / weights.max(),
                                                                        6),
                          source="NTA number distribution (demo)")


def _release_stage(session: Session, rng: random.Random) -> dict:
    from .demo import DEMO_PASSWORD

    users = {n: repo.get_by(session, User, username=n) for n in ("analyst1", "reviewer1", "qa1")}
    analyst, reviewer, qa = users["analyst1"], users["reviewer1"], users["qa1"]
    spec, _ = import_specification(session, qa, example_specification_path())

    # The records demo leaves these lots awaiting release; they are released
    # here, through the workflow, so every released demo lot has its evidence.
    released = ["EV-2025-001", "EV-2025-002", "EV-2025-003", "EV-2025-P01-A",
                "EV-2025-004", "EV-2025-008"]
    rejected, waiting = ["EV-2025-009"], ["EV-2025-P01-B"]
    for number in released + rejected + waiting:
        assign_specification(session, qa, number, spec.name)
    for number in released:
        _release_results(session, analyst, number, endotoxin=round(rng.uniform(0.05, 0.2), 3),
                         rng=rng)
        verify_lot(session, reviewer, DEMO_PASSWORD, number)
        release_lot(session, qa, DEMO_PASSWORD, number)
    _release_results(session, analyst, "EV-2025-009", endotoxin=0.92, rng=rng)
    inv = qrepo.list_investigations(session, lot_id=repo.get_by(session, Lot,
                                                                number="EV-2025-009").id)[0]
    close_investigation(session, qa, inv.id, conclusion="confirmed_oos", phase="phase_II",
                        summary="no laboratory error; depyrogenation record of the TFF "
                                "cassette incomplete (process cause)")
    submit_for_release(session, analyst, "EV-2025-009")
    verify_lot(session, reviewer, DEMO_PASSWORD, "EV-2025-009")
    reject_lot(session, qa, DEMO_PASSWORD, "EV-2025-009",
               reason="endotoxin 0.92 EU/mL >= 0.5 EU/mL, OOS confirmed (phase II)")
    _release_results(session, analyst, "EV-2025-P01-B", endotoxin=0.11, rng=rng)
    submit_for_release(session, analyst, "EV-2025-P01-B")
    return {"specification": {"name": spec.name, "version": spec.version},
            "released": released, "rejected": rejected, "awaiting_verification": waiting,
            "oos_investigations": [f"OOS-{inv.id}"]}
