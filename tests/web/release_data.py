"""Lots ready for the release workflow, built through the services on a web test database.

Every lot is made by ``analyst1`` (donor chain, lot, NTA/BCA measurements, the
release results of the example specification), so ``analyst1`` is the data
producer and ``reviewer1``, ``qa1``, ``qa2`` are free to verify and release.
"""

from __future__ import annotations

from datetime import date

import sqlalchemy as sa

from quality_records.conftest import NUMERIC, PASSING, build_source

#: The example specification's name (imported once per database by qa1).
SPEC_NAME = "MSC-sEV lot release specification"


def _user(session, username):
    from exotrace.records import User, repositories

    return repositories.get_by(session, User, username=username)


def build_lot(url: str, number: str, *, endotoxin: float = 0.12,
              manufactured_on: date = date(2026, 3, 1), expires_on: date = date(2029, 3, 1),
              results: bool = True, d50_nm: float = 121.0, purity_per_ug: float = 3.0e10,
              leave_out: tuple[str, ...] = ()) -> list[str]:
    """Lot ``number`` with measurements (and, by default, the label claim and every release
    result of the example specification but the tests in ``leave_out``).

    Returns the ids (``OOS-n``) of investigations opened by out-of-specification results.
    """
    from exotrace.quality import example_specification_path
    from exotrace.records import (
        SpecificationRecord,
        add_measurement,
        add_quality_result,
        create_lot,
        import_specification,
        make_engine,
        set_reference_value,
        unit_of_work,
    )

    engine = make_engine(url)
    try:
        with unit_of_work(engine) as session:
            analyst = _user(session, "analyst1")
            if session.scalar(sa.select(sa.func.count()).select_from(SpecificationRecord)) == 0:
                import_specification(session, _user(session, "qa1"),
                                     example_specification_path())
            iso = build_source(session, analyst, donor=f"D-{number}")
            create_lot(session, analyst, number, isolation_code=iso,
                       intended_use="clinical_manufacturing", manufactured_on=manufactured_on,
                       expires_on=expires_on, volume_ml=2.0)
            conc, purity = 1.0e11, purity_per_ug
            for attribute, value, unit, method in (
                    ("size_d50", d50_nm, "nm", "NTA"),
                    ("particle_concentration", conc, "particles/mL", "NTA"),
                    ("particle_protein_ratio", purity, "particles/ug", "calculated"),
                    ("protein_concentration", conc / purity, "ug/mL", "BCA")):
                add_measurement(session, analyst, number, attribute=attribute, value=value,
                                unit=unit, method=method)
            if not results:
                return []
            set_reference_value(session, analyst, number, "label_claim", 1.05e11,
                                "particles/mL")
            entries = [(t, w, None) for t, w in PASSING.items()]
            entries += [(t, v, u) for t, (v, u) in
                        {**NUMERIC, "endotoxin": (endotoxin, "EU/mL")}.items()]
            opened = []
            for test, value, unit in entries:
                if test not in leave_out:
                    _, inv = add_quality_result(session, analyst, number, test=test,
                                                value=value, unit=unit)
                    opened += [f"OOS-{inv.id}"] if inv is not None else []
            return opened
    finally:
        engine.dispose()


def audit_length(url: str) -> int:
    """Number of entries in the audit chain."""
    from exotrace.records import AuditEntry, make_engine

    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            return conn.execute(sa.select(sa.func.count()).select_from(AuditEntry)).scalar_one()
    finally:
        engine.dispose()


def lot_status(url: str, number: str) -> str:
    from exotrace.records import Lot, make_engine

    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            status = conn.execute(sa.select(Lot.status).where(Lot.number == number)).scalar_one()
        return status.value if hasattr(status, "value") else str(status)
    finally:
        engine.dispose()


def audit_actions(url: str, since: int = 0) -> list[tuple[str, str, str]]:
    """(table, action, actor) of the audit entries after the first ``since``."""
    from exotrace.records import AuditEntry, make_engine

    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            rows = conn.execute(sa.select(AuditEntry.table_name, AuditEntry.action,
                                          AuditEntry.actor_name)
                                .order_by(AuditEntry.seq).offset(since)).all()
        return [(t, a.value if hasattr(a, "value") else str(a), n) for t, a, n in rows]
    finally:
        engine.dispose()
