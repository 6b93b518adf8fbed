"""A realistic, deterministic demo dataset, written through the services (so it is audited).

Demo users ``admin1``, ``analyst1``, ``reviewer1``, ``qa1``, ``clinician1``
all have the password ``demo`` (demo only: it is shorter than the password
policy allows, so the accounts are created from one pre-computed argon2id hash
made with a LOW cost (1 pass, 1 MiB) to keep loading and demo signing fast;
argon2 is slow on purpose and real accounts use the library's default cost).
The five accounts share that one hash and salt; never use the demo accounts
for real records. They are marked as demo accounts (no forced password
change) and the database is marked as a demo database when they are created;
a database created as a real one refuses demo accounts (and the demo).

Dates are relative to the day the demo is loaded: the calendar below is
written as it stood on :data:`WRITTEN_FOR` and moved by :func:`demo_date` so
that day falls on today. Each stage is recorded on the clock of its own day
(:func:`~exotrace.records.clock_set_to`): lots are made, filled and released
before the clinic demo's first administration, as they must be.
"""

from __future__ import annotations

import random
from datetime import UTC, date, datetime, timedelta

from argon2 import PasswordHasher
from sqlalchemy.orm import Session

from ..errors import Conflict
from . import _repositories as repo
from ._auth import add_user
from ._base import clock_set_to
from ._enums import Role
from ._services_lot import (
    add_measurement,
    add_product,
    add_storage,
    create_lot,
    create_vials,
    pool_lots,
    set_lot_status,
    split_lot,
)
from ._services_source import (
    add_cell_bank,
    add_collection,
    add_consent,
    add_donor,
    add_isolation_run,
    add_reagent_batch,
    withdraw_consent,
)

__all__ = ["DEMO_PASSWORD", "DEMO_USERS", "WRITTEN_FOR", "demo_date", "demo_time", "load_demo"]

#: The demo's calendar is written as it stood on this day (moved to today when loaded).
WRITTEN_FOR = date(2025, 12, 1)


def demo_date(year: int, month: int, day: int) -> date:
    """The demo's written date ``year-month-day`` moved so that :data:`WRITTEN_FOR` is today.

    Reads the real clock (not a replayed one), so every stage moves by the same days.
    """
    return date(year, month, day) + (datetime.now(UTC).date() - WRITTEN_FOR)


def demo_time(year: int, month: int, day: int, hour: int = 10) -> datetime:
    """:func:`demo_date` at ``hour``:00 UTC."""
    d = demo_date(year, month, day)
    return datetime(d.year, d.month, d.day, hour, tzinfo=UTC)

DEMO_PASSWORD = "demo"
DEMO_USERS = {"admin1": Role.ADMIN, "analyst1": Role.ANALYST, "reviewer1": Role.REVIEWER,
              "qa1": Role.QA, "clinician1": Role.CLINICIAN}
_FULL_NAMES = {"admin1": "Alex Admin", "analyst1": "Ana Lyst", "reviewer1": "Rene Viewer",
               "qa1": "Quinn Assurance", "clinician1": "Cleo Nician"}

# (donor, sex, age band, tissue, scopes)
_DONORS = [
    ("DEMO-D01", "female", "30-39", "umbilical_cord", ["research", "clinical_manufacturing",
                                                      "cosmetic"]),
    ("DEMO-D02", "male", "40-49", "adipose", ["research", "clinical_manufacturing", "cosmetic",
                                              "commercial"]),
    ("DEMO-D03", "female", "20-29", "bone_marrow", ["research", "clinical_manufacturing"]),
]
# (run code, collection code, method, g-force, minutes, input mL, output mL)
_RUNS = [
    ("ISO-01", "COL-01", "differential_ultracentrifugation", 100_000, 70, 500, 1.0),
    ("ISO-02", "COL-01", "size_exclusion_chromatography", None, 30, 250, 2.0),
    ("ISO-03", "COL-02", "tangential_flow_filtration", None, 120, 1000, 20.0),
    ("ISO-04", "COL-03", "ultrafiltration", None, 45, 300, 3.0),
    ("ISO-05", "COL-04", "density_gradient", 200_000, 960, 200, 1.0),
    ("ISO-06", "COL-05", "differential_ultracentrifugation", 120_000, 90, 500, 1.0),
    ("ISO-07", "COL-05", "precipitation", None, 60, 100, 1.0),
    ("ISO-08", "COL-02", "size_exclusion_chromatography", None, 30, 250, 2.5),
]
# Lots with a short shelf life: they expire 19 and 28 days after the day the demo is loaded
# (WRITTEN_FOR moved to today), so the lots-expiring-soon list has entries. Both are
# released by the quality demo; EV-2025-002 still has vials of SERUM-01 left.
_SHORT_SHELF_LIFE = {"EV-2025-002": (2025, 12, 20), "EV-2025-004": (2025, 12, 29)}
# Method effects on yield (particles/mL) and purity (particles per ug protein): SEC and
# density gradients give purer, TFF more concentrated, precipitation impure preparations.
_METHOD_PROFILE = {
    "differential_ultracentrifugation": (2.0e11, 1.5e10),
    "size_exclusion_chromatography": (8.0e10, 3.5e10),
    "tangential_flow_filtration": (5.0e11, 1.2e10),
    "ultrafiltration": (3.0e11, 6.0e9),
    "density_gradient": (6.0e10, 5.0e10),
    "precipitation": (9.0e11, 1.0e9),
}


def _expiry(number: str, default: date) -> date:
    return demo_date(*_SHORT_SHELF_LIFE[number]) if number in _SHORT_SHELF_LIFE else default


def _measure(session, analyst, number: str, method: str, rng: random.Random) -> None:
    conc0, purity0 = _METHOD_PROFILE[method]
    conc = conc0 * rng.lognormvariate(0.0, 0.15)
    purity = purity0 * rng.lognormvariate(0.0, 0.2)
    protein_ug_per_ml = conc / purity
    mode = rng.gauss(105.0, 8.0)
    d50 = mode + abs(rng.gauss(14.0, 4.0))
    for attribute, value, unit, m in (
        ("particle_concentration", conc, "particles/mL", "NTA"),
        ("size_mode", mode, "nm", "NTA"),
        ("size_d50", d50, "nm", "NTA"),
        ("protein_concentration", protein_ug_per_ml, "ug/mL", "BCA"),
        ("particle_protein_ratio", purity, "particles/ug", "calculated"),
    ):
        add_measurement(session, analyst, number, attribute=attribute,
                        value=float(f"{value:.4g}"), unit=unit, method=m,
                        instrument={"NTA": "NanoSight NS300", "BCA": "plate reader"}.get(m))


def load_demo(session: Session, *, seed: int = 2025, vials_per_lot: int = 20) -> dict:
    """Write the demo dataset into an empty database; returns a summary of what was made.

    Raises
    ------
    Conflict
        The database already has users (the demo bootstraps its own admin).
    """
    if repo.count_users(session) > 0:
        raise Conflict("the database already has users; load the demo into an empty database "
                       "(set EXOTRACE_DATABASE_URL to a new file)")
    # Recorded the day after the last lot's manufacture and the donor's withdrawal.
    with clock_set_to(demo_time(2025, 5, 3, 8)):
        return _load(session, seed=seed, vials_per_lot=vials_per_lot)


def _load(session: Session, *, seed: int, vials_per_lot: int) -> dict:
    rng = random.Random(seed)
    # Demo only: a cheap argon2id hash (see the module docstring).
    shared_hash = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1).hash(DEMO_PASSWORD)
    users = {}
    admin = add_user(session, "admin1", Role.ADMIN, password_hash=shared_hash,
                     full_name=_FULL_NAMES["admin1"], demo=True)
    users["admin1"] = admin
    for name, role in DEMO_USERS.items():
        if name != "admin1":
            users[name] = add_user(session, name, role, password_hash=shared_hash,
                                   full_name=_FULL_NAMES[name], acting=admin, demo=True)
    analyst, qa = users["analyst1"], users["qa1"]
    clinician = users["clinician1"]

    for code, sex, age, _, scopes in _DONORS:
        add_donor(session, clinician, code, age_band=age, sex=sex,
                  exposures="non-smoker; no chronic medication")
        add_consent(session, clinician, code, scopes=scopes, version="ICF-2.0",
                    consented_on=demo_date(2025, 1, 6))

    reagents = [add_reagent_batch(session, analyst, f"RB-{i:02d}", name=name, batch_number=batch,
                                  supplier=supplier, expires_on=demo_date(2028, 12, 31))
                for i, (name, batch, supplier) in enumerate([
                    ("alpha-MEM, serum-free", "M24117", "Gibco"),
                    ("DPBS without Ca/Mg", "P23980", "Sigma"),
                    ("qEV original column", "Q0981", "Izon")], start=1)]

    banks = [
        ("MCB-01", "DEMO-D01", "umbilical_cord", 3, None),
        ("WCB-01", "DEMO-D01", "umbilical_cord", 5, "MCB-01"),
        ("MCB-02", "DEMO-D02", "adipose", 4, None),
        ("MCB-03", "DEMO-D03", "bone_marrow", 3, None),
    ]
    for code, donor, tissue, passage, parent in banks:
        add_cell_bank(session, analyst, code, donor_code=donor, tissue=tissue, passage=passage,
                      intended_use="clinical_manufacturing", parent_code=parent,
                      identity={"cd73_pct": round(rng.uniform(96, 99.8), 1),
                                "cd90_pct": round(rng.uniform(96, 99.8), 1),
                                "cd105_pct": round(rng.uniform(95, 99.5), 1),
                                "cd45_pct": round(rng.uniform(0.1, 1.5), 1),
                                "cd34_pct": round(rng.uniform(0.1, 1.5), 1),
                                "cd11b_pct": round(rng.uniform(0.1, 1.0), 1),
                                "hla_dr_pct": round(rng.uniform(0.1, 1.0), 1)},
                      banked_on=demo_date(2025, 1, 20))
    collections = [("COL-01", "WCB-01"), ("COL-02", "MCB-02"), ("COL-03", "MCB-01"),
                   ("COL-04", "MCB-03"), ("COL-05", "MCB-03")]
    for i, (code, bank) in enumerate(collections):
        add_collection(session, analyst, code, cell_bank_code=bank, medium="alpha-MEM",
                       serum_condition="serum_free" if i % 2 == 0 else "ev_depleted_serum",
                       volume_ml=1000.0, culture_days=2 + i % 2,
                       cell_count=float(f"{rng.uniform(1.5e7, 4e7):.3g}"),
                       collected_on=demo_date(2025, 2, 3) + timedelta(days=7 * i))
    for i, (code, coll, method, g, minutes, vin, vout) in enumerate(_RUNS):
        add_isolation_run(session, analyst, code, collection_code=coll, method=method,
                          g_force=g, duration_min=minutes,
                          rotor="SW32 Ti" if g else None, k_factor=204.0 if g else None,
                          input_volume_ml=vin, output_volume_ml=vout,
                          performed_on=demo_date(2025, 2, 5) + timedelta(days=7 * i),
                          reagent_codes=[reagents[0].code, reagents[1].code] +
                          ([reagents[2].code] if "size_exclusion" in method else []))

    lots = []
    for i, (run, _, method, *_rest) in enumerate(_RUNS, start=1):
        number = f"EV-2025-{i:03d}"
        create_lot(session, analyst, number, isolation_code=run,
                   intended_use="clinical_manufacturing",
                   manufactured_on=demo_date(2025, 2, 6) + timedelta(days=7 * i),
                   expires_on=_expiry(number, demo_date(2028, 2, 6) + timedelta(days=7 * i)),
                   volume_ml=_RUNS[i - 1][6] * 4)
        _measure(session, analyst, number, method, rng)
        add_storage(session, analyst, number, buffer="PBS + 0.1% HSA", temperature_c=-80.0,
                    container="2 mL cryovial", location=f"Freezer A / rack {i}",
                    freeze_thaw_count=0)
        lots.append(number)
    # The pool expires with its earliest parent (EV-2025-001), the default.
    pool = pool_lots(session, analyst, "EV-2025-P01",
                     parents={"EV-2025-001": 2.0, "EV-2025-003": 40.0},
                     manufactured_on=demo_date(2025, 4, 15))
    _measure(session, analyst, pool.number, "tangential_flow_filtration", rng)
    children = split_lot(session, analyst, pool.number,
                         children={"EV-2025-P01-A": 20.0, "EV-2025-P01-B": 20.0},
                         manufactured_on=demo_date(2025, 4, 16))
    for child in children:
        _measure(session, analyst, child.number, "tangential_flow_filtration", rng)
    lots += [pool.number] + [c.number for c in children]
    # A second lot from the large TFF run, kept in process.
    create_lot(session, analyst, "EV-2025-009", isolation_code="ISO-03",
               intended_use="clinical_manufacturing", manufactured_on=demo_date(2025, 4, 20),
               expires_on=demo_date(2028, 4, 20), volume_ml=40.0)
    _measure(session, analyst, "EV-2025-009", "tangential_flow_filtration", rng)
    lots.append("EV-2025-009")

    # Released only through the release workflow (load_quality_demo), never by
    # a bare status change: these wait for it.
    released = []
    for number in ["EV-2025-001", "EV-2025-002", "EV-2025-003", "EV-2025-P01-A",
                   "EV-2025-004", "EV-2025-008"]:
        set_lot_status(session, analyst, number, "awaiting_release",
                       reason="all release tests entered")
    set_lot_status(session, analyst, "EV-2025-007", "quarantined",
                   reason="particle:protein ratio below 2e9: purity investigation")
    set_lot_status(session, qa, "EV-2025-006", "rejected", reason="endotoxin 1.2 EU/mL > 0.5")

    add_product(session, analyst, "SERUM-01", lot_number="EV-2025-002", form="topical_serum",
                excipients=["hyaluronic acid 1%", "glycerol", "phenoxyethanol"],
                target_particles_per_ml=1e10, fill_volume_ml=5.0)
    add_product(session, analyst, "INJ-01", lot_number="EV-2025-P01-A", form="intravenous",
                excipients=["0.9% NaCl", "human serum albumin 0.1%"],
                target_particles_per_ml=2e10, fill_volume_ml=10.0)
    vials = 0
    vials += len(create_vials(session, analyst, "EV-2025-002", vials_per_lot,
                              product_code="SERUM-01"))
    vials += len(create_vials(session, analyst, "EV-2025-P01-A", vials_per_lot,
                              product_code="INJ-01"))
    vials += len(create_vials(session, analyst, "EV-2025-001", vials_per_lot, fill_volume_ml=0.5))
    vials += len(create_vials(session, analyst, "EV-2025-005", vials_per_lot, fill_volume_ml=0.5))

    # Donor 3 withdraws after her material was processed: later use is blocked.
    withdraw_consent(session, clinician, "DEMO-D03", withdrawn_on=demo_date(2025, 5, 2),
                     reason="donor withdrew consent by letter")
    session.flush()
    return {"users": sorted(users), "donors": [d[0] for d in _DONORS],
            "cell_banks": [b[0] for b in banks], "isolation_runs": [r[0] for r in _RUNS],
            "lots": lots, "released": released, "awaiting_release": ["EV-2025-001", "EV-2025-002", "EV-2025-003", "EV-2025-P01-A", "EV-2025-004", "EV-2025-008"],
            "vials": vials, "password": DEMO_PASSWORD}
