"""A small committed clinical world for the clinic web tests, built through the services.

On the ``web_db`` database (users analyst1, qa1, clinician1, ...): the
cardiomyopathy protocol, three lots of donor D-A, each measured (2e11
particles/mL, 1e10 particles/ug), each with intravenous vials (10 mL):

* ``L-GOOD``: released (signed), expires in a year: may be given;
* ``L-HOLD``: awaiting nothing, never released: refused;
* ``L-OLD``: released long ago, expired ten days ago: refused.

Subject ``C1`` (arm IV, 70 kg, baseline LVEF 35 %) is enrolled today with
consent signed today: 2e10 particles/kg x 70 kg = 1.4e12 particles = 7.0 mL.
Dates are relative to today, so the world stays valid whenever the tests run.
"""

from __future__ import annotations

from datetime import date, timedelta

from clinic_records.conftest import make_lot


def wrong_check_character(identifier: str) -> str:
    """``identifier`` with another last character (its check character no longer matches)."""
    return identifier[:-1] + ("A" if identifier[-1] != "A" else "B")


def build_clinic_world(url: str) -> dict:
    """Commit the world above on ``url``; return vial identifiers and the subject code."""
    from exotrace.clinic import example_protocol_path
    from exotrace.records import (
        User,
        enrol_subject,
        import_protocol,
        make_engine,
        repositories,
        unit_of_work,
    )

    today = date.today()
    engine = make_engine(url)
    try:
        with unit_of_work(engine) as session:
            users = {k: repositories.get_by(session, User, username=v) for k, v in
                     (("analyst", "analyst1"), ("qa", "qa1"), ("clinician", "clinician1"))}
            import_protocol(session, users["clinician"], example_protocol_path("cardiomyopathy"))
            good = make_lot(session, users, "D-A", "L-GOOD", manufactured=today - timedelta(30),
                            expires=today + timedelta(365), products=("INJ",), vials=3)
            hold = make_lot(session, users, "D-A", "L-HOLD", release=False, new_donor=False,
                            manufactured=today - timedelta(20),
                            expires=today + timedelta(365), products=("INJ",), vials=1)
            old = make_lot(session, users, "D-A", "L-OLD", new_donor=False,
                           manufactured=today - timedelta(400),
                           expires=today - timedelta(10), products=("INJ",), vials=1)
            enrol_subject(session, users["clinician"], "C1", protocol_code="EXO-CARD-01",
                          arm_code="IV", enrolled_on=today, consent_version="S1",
                          consent_signed_on=today, body_weight_kg=70.0, sex="male",
                          age_years=61, baseline={"LVEF": (35.0, None)})
    finally:
        engine.dispose()
    return {"subject": "C1", "good": list(good["INJ"]), "unreleased": hold["INJ"][0],
            "expired": old["INJ"][0]}


def counts(url: str) -> dict:
    """How many administrations, adverse events, observations, decisions and audit entries."""
    from exotrace.records import (
        Administration,
        AuditEntry,
        ClinicalAdverseEvent,
        DoseDecision,
        Observation,
        make_engine,
        repositories,
        unit_of_work,
    )

    engine = make_engine(url)
    try:
        with unit_of_work(engine) as session:
            return {name: len(repositories.list_all(session, model)) for name, model in
                    (("administrations", Administration), ("adverse_events",
                                                           ClinicalAdverseEvent),
                     ("observations", Observation), ("decisions", DoseDecision),
                     ("audit", AuditEntry))}
    finally:
        engine.dispose()


def audit_actors(url: str, table: str) -> list[str]:
    """The actor names of the audit entries of ``table``, oldest first."""
    from exotrace.records import AuditEntry, make_engine, repositories, unit_of_work

    engine = make_engine(url)
    try:
        with unit_of_work(engine) as session:
            return [e.actor_name for e in repositories.list_all(session, AuditEntry)
                    if e.table_name == table]
    finally:
        engine.dispose()
