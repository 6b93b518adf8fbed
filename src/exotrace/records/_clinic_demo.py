"""The clinic demo: protocols, subjects, administrations, visits, adverse events and dose
decisions on top of the records and quality demos, written through the services.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, date, datetime, timedelta

from sqlalchemy.orm import Session

from ..errors import Conflict, RuleViolation
from . import _repositories as repo
from . import _repositories_clinic as crepo
from ._base import clock_set_to
from ._clinic_administration import administer
from ._clinic_common import _subject
from ._clinic_dosing import decide_dose
from ._clinic_enrolment import enrol_subject, withdraw_study_consent
from ._clinic_events import add_adverse_event, record_visit
from ._clinic_protocols import get_protocol, import_protocol
from ._enums import LotStatus, VialStatus
from ._models_auth import User
from ._models_clinic import DecisionStatus, DoseDecision, Observation, Subject
from ._models_lot import Lot, Product

__all__ = ["load_clinic_demo"]


def _utc(day: date, hour: int = 10) -> datetime:
    return datetime(day.year, day.month, day.day, hour, 0, tzinfo=UTC)


def _moved(day: date) -> date:
    """A written demo date moved like the records demo's (:func:`exotrace.records.demo.demo_date`)."""
    from .demo import demo_date

    return demo_date(day.year, day.month, day.day)


#: Demo subjects: (code, protocol, arm, sex, age, weight kg, enrolment date, product code)
_DEMO_SUBJECTS = [
    ("SKN-001", "EXO-SKIN-01", "MN", "female", 52, None, date(2025, 5, 5), "SERUM-01"),
    ("SKN-002", "EXO-SKIN-01", "MN", "female", 47, None, date(2025, 5, 8), "SERUM-01"),
    ("SKN-003", "EXO-SKIN-01", "TC", "male", 58, None, date(2025, 5, 12), "EV-2025-001"),
    ("SKN-004", "EXO-SKIN-01", "TC", "female", 44, None, date(2025, 5, 15), "EV-2025-001"),
    ("SKN-005", "EXO-SKIN-01", "MN", "female", 61, None, date(2025, 5, 19), "SERUM-02"),
    ("SKN-006", "EXO-SKIN-01", "MN", "male", 39, None, date(2025, 5, 22), "SERUM-02"),
    ("SKN-007", "EXO-SKIN-01", "TC", "female", 55, None, date(2025, 5, 26), "EV-2025-001"),
    ("SKN-008", "EXO-SKIN-01", "TC", "female", 49, None, date(2025, 5, 29), "SERUM-02"),
    ("CAR-001", "EXO-CARD-01", "IV", "male", 63, 78.0, date(2025, 5, 6), "INJ-01"),
    ("CAR-002", "EXO-CARD-01", "IV", "female", 58, 64.5, date(2025, 5, 13), "INJ-01"),
    ("CAR-003", "EXO-CARD-01", "IV", "male", 71, 85.0, date(2025, 5, 20), "INJ-01"),
    ("CAR-004", "EXO-CARD-01", "IV", "male", 66, 92.0, date(2025, 5, 27), "INJ-01"),
]
#: Baseline and mean change per visit of each outcome (protocol units), for the demo values.
_DEMO_OUTCOMES = {
    "ELAST-R2": (0.62, {"week4": 0.03, "week12": 0.07}, 0.03),
    "HYDR": (42.0, {"week4": 5.0, "week12": 8.0}, 3.0),
    "TEWL": (14.0, {"week4": -1.2, "week12": -2.0}, 1.0),
    "GAIS": (None, {"week4": 3.0, "week12": 2.0}, 0.0),
    "LVEF": (33.0, {"month3": 3.0, "month6": 5.5}, 2.0),
    "NTPROBNP": (1850.0, {"month3": -250.0, "month6": -520.0}, 150.0),
    "6MWD": (340.0, {"month3": 18.0, "month6": 35.0}, 15.0),
}


def _demo_release(session: Session, users: Mapping[str, User], number: str) -> bool:
    """The clinic demo needs lots released through the release workflow (quality demo)."""
    lot = repo.get_by(session, Lot, number=number)
    if lot.status is not LotStatus.RELEASED:
        raise RuleViolation(f"demo lot {number} is {lot.status.value}, not released: load the "
                            "quality demo first (exotrace demo load does both)")
    return False


def _fill_serum_02(session: Session, analyst: User) -> None:
    from ._services_lot import add_product, create_vials

    add_product(session, analyst, "SERUM-02", lot_number="EV-2025-003", form="topical_serum",
                excipients=["hyaluronic acid 1%", "glycerol"], target_particles_per_ml=1e10,
                fill_volume_ml=5.0)
    create_vials(session, analyst, "EV-2025-003", 16, product_code="SERUM-02")


def load_clinic_demo(session: Session, *, seed: int = 2025) -> dict:
    """Clinic demo data, run after :func:`exotrace.records.demo.load_demo` (deterministic).

    Imports both example protocols; enrols twelve subjects (eight in the
    skin protocol's two arms, four in the cardiomyopathy protocol);
    administers vials of three products from lots of two donors (a pooled
    lot among them); records visits with outcomes, adverse events of grades
    1-3 (one serious), one consent withdrawal, and dose decisions of which
    several are triggered by rules (a reduction after a related grade 2 AE,
    a hold after a related grade 3 AE, an escalation when hydration did not
    improve by 10 % at week 4). The lots it uses must already be released
    through the release workflow (:func:`load_quality_demo` does it, signed by
    QA): every administration comes after its lot's release signature and its
    vial's fill, and every date lies in the past of the day the demo is loaded.

    Returns
    -------
    dict
        Counts of what was written and the decisions taken.
    """
    import random

    from ..clinic import example_protocol_path
    from .demo import demo_time

    rng = random.Random(seed)
    users = {u.username: u for u in repo.list_all(session, User)}
    missing = {"analyst1", "qa1", "clinician1"} - set(users)
    if missing:
        raise RuleViolation(f"the clinic demo needs the records demo users; missing "
                            f"{', '.join(sorted(missing))} (run exotrace demo load first)")
    doc, analyst = users["clinician1"], users["analyst1"]
    if repo.find_by(session, Subject, code=_DEMO_SUBJECTS[0][0]) is not None:
        raise Conflict("the clinic demo is already loaded")
    for name in ("skin_rejuvenation", "cardiomyopathy"):
        import_protocol(session, doc, example_protocol_path(name))
    released = [n for n in ("EV-2025-001", "EV-2025-002", "EV-2025-003", "EV-2025-P01-A")
                if _demo_release(session, users, n)]
    # A second serum from donor 2's lot, so the skin study uses two donors' material;
    # filled (on its own day) after the release and before its first use.
    if repo.find_by(session, Product, code="SERUM-02") is None:
        with clock_set_to(demo_time(2025, 5, 4, 12)):
            _fill_serum_02(session, analyst)
    free: dict[str, list[str]] = {}
    for code in ("SERUM-01", "SERUM-02", "INJ-01"):
        product = repo.get_by(session, Product, code=code)
        free[code] = [v.identifier for v in repo.list_vials(session, lot_id=product.lot_id)
                      if v.product_id == product.id and v.status is VialStatus.AVAILABLE]
    # Unlabelled 0.5 mL vials of lot EV-2025-001 (released by the records demo).
    lot1 = repo.get_by(session, Lot, number="EV-2025-001")
    free["EV-2025-001"] = [v.identifier for v in repo.list_vials(session, lot_id=lot1.id)
                           if v.product_id is None and v.status is VialStatus.AVAILABLE]

    counts = {"subjects": 0, "administrations": 0, "observations": 0, "adverse_events": 0,
              "decisions": 0}
    decisions: list[dict] = []

    def observe(code, protocol, visit, on, *, hydr_change=None):
        v = protocol.visit(visit)
        sid = _subject(session, code).id
        baseline_name = protocol.schedule.baseline_visit.name
        values = {}
        for outcome in v.outcomes:
            base, changes, sd = _DEMO_OUTCOMES[outcome]
            if base is None:  # GAIS is rated against baseline photographs
                value = float(min(5, max(1, round(changes[visit] + rng.gauss(0, 0.7)))))
            elif visit == baseline_name:
                value = round(base + rng.gauss(0, sd), 3 if base < 10 else 1)
            else:
                b = repo.find_by(session, Observation, subject_id=sid, outcome_code=outcome,
                                 visit_name=baseline_name).value
                delta = changes[visit] + rng.gauss(0, sd / 2)
                if outcome == "HYDR" and hydr_change is not None:
                    delta = b * hydr_change
                value = round(b + delta, 3 if base < 10 else 1)
            values[outcome] = (value, None)
        _, dd = record_visit(session, doc, code, visit=visit, values=values, observed_on=on)
        counts["observations"] += len(values)
        _note(dd)

    def _note(d: DoseDecision):
        counts["decisions"] += 1
        if d.status is DecisionStatus.PROPOSED:
            decisions.append({"subject": _code_of(d), "decision": d.id,
                              "action": d.proposed_action, "rules": d.rule_ids})

    def _code_of(d):
        return session.get(Subject, d.subject_id).code

    def give(code, product, on, hour=10):
        vial = free[product].pop(0)
        administer(session, doc, subject_code=code, vial_identifier=vial, at=_utc(on, hour),
                   site="left forearm vein" if product == "INJ-01" else "face, whole")
        counts["administrations"] += 1

    def ae(code, **kw):
        _, _, d = add_adverse_event(session, doc, code, **kw)
        counts["adverse_events"] += 1
        _note(d)
        return d

    d = timedelta
    subjects = [(*row[:6], _moved(row[6]), row[7]) for row in _DEMO_SUBJECTS]
    for code, pcode, arm, sex, age, weight, start, _product in subjects:
        protocol = get_protocol(session, pcode)[1]
        baseline = None
        if pcode == "EXO-CARD-01":
            baseline = {"LVEF": (round(rng.uniform(26, 39), 1), "%")}
        enrol_subject(session, doc, code, protocol_code=pcode, arm_code=arm, enrolled_on=start,
                      consent_version="SICF-1.0", consent_signed_on=start - d(days=3),
                      body_weight_kg=weight, sex=sex, age_years=age, site="SITE-01",
                      baseline=baseline)
        counts["subjects"] += 1
        counts["observations"] += len(baseline or {})
        if pcode == "EXO-SKIN-01":
            observe(code, protocol, "baseline", start)
        else:
            values = {}
            for outcome, unit in (("NTPROBNP", "pg/mL"), ("6MWD", "m")):
                base, _, sd = _DEMO_OUTCOMES[outcome]
                value = round(base + rng.gauss(0, sd), 1)
                if code == "CAR-002" and outcome == "NTPROBNP":
                    value, unit = round(value / 1000, 3), "ng/mL"  # entered in ng/mL, converted
                values[outcome] = (value, unit)
            _, dd = record_visit(session, doc, code, visit="baseline", values=values,
                                 observed_on=start)
            counts["observations"] += len(values)
            _note(dd)

    # --- skin study: three applications (day 0, 14, 28), visits week4 and week12
    for code, pcode, _, _, _, _, start, product in subjects[:8]:
        protocol = get_protocol(session, pcode)[1]
        give(code, product, start)
        if code == "SKN-002":  # related grade 2 erythema -> REDUCE-G2 proposes level 1
            ae(code, term="application site erythema", grade=2, serious=False,
               relatedness="probable", onset_on=start + d(days=1), resolved_on=start + d(days=6))
            decide_dose(session, doc, code, accept=True, reason="erythema after microneedling")
        if code == "SKN-004":
            ae(code, term="application site pruritus", grade=1, serious=False,
               relatedness="possible", onset_on=start + d(days=2), resolved_on=start + d(days=4))
        give(code, product, start + d(days=14 + (3 if code == "SKN-006" else 0)))
        if code == "SKN-008":  # withdraws after the second application: STOP-CONSENT
            _, dd = withdraw_study_consent(session, doc, code, withdrawn_on=start + d(days=20),
                                           reason="moved abroad")
            _note(dd)
            decide_dose(session, doc, code, accept=True, reason="consent withdrawn")
            continue
        # week 4 visit (day 28; SKN-003 comes 5 days late: outside the window, flagged)
        visit_day = start + d(days=28 + (5 if code == "SKN-003" else 0))
        # SKN-001 and SKN-005 barely improve -> ESC-HYDR proposes escalation
        observe(code, protocol, "week4", visit_day,
                hydr_change=0.03 if code in ("SKN-001", "SKN-005") else 0.16)
        pending = crepo.pending_decisions(session, _subject(session, code).id)
        if pending:
            decide_dose(session, doc, code, accept=code == "SKN-001",
                        level=None if code == "SKN-001" else 2,
                        reason=("hydration below target at week 4" if code == "SKN-001" else
                                "keep level 2: patient prefers no escalation"))
        give(code, product, visit_day)
        if code not in ("SKN-006", "SKN-007"):  # two week-12 visits missing: overdue
            observe(code, protocol, "week12", start + d(days=84 + rng.randint(-3, 3)))

    # --- cardiac study: infusions day 0, 21, 42; visits month3 and month6
    for code, pcode, _, _, _, _, start, product in subjects[8:]:
        protocol = get_protocol(session, pcode)[1]
        give(code, product, start, hour=9)
        if code == "CAR-002":  # related grade 3 infusion reaction -> HOLD-G3
            ae(code, term="infusion-related reaction", grade=3, serious=False,
               relatedness="probable", onset_on=start, resolved_on=start + d(days=3))
            decide_dose(session, doc, code, accept=True, reason="hold per protocol")
            decide_dose(session, doc, code, accept=False, level=2, on=start + d(days=20),
                        reason="reaction resolved; resume one level lower (investigator)")
        if code == "CAR-003":  # serious, not related: flagged, no dose change
            ae(code, term="heart failure decompensation", grade=3, serious=True,
               criteria=["hospitalisation"], relatedness="unlikely",
               onset_on=start + d(days=30), resolved_on=start + d(days=37))
        if code == "CAR-004":
            ae(code, term="headache", grade=1, serious=False, relatedness="possible",
               onset_on=start + d(days=1), resolved_on=start + d(days=2))
        give(code, product, start + d(days=21), hour=9)
        give(code, product, start + d(days=42 + (1 if code == "CAR-001" else 0)), hour=9)
        observe(code, protocol, "month3", start + d(days=91 + rng.randint(-5, 5)))
        if code != "CAR-004":  # CAR-004's month-6 visit is missing: overdue
            observe(code, protocol, "month6", start + d(days=182 + rng.randint(-7, 7)))
    session.flush()
    return {**counts, "protocols": ["EXO-SKIN-01", "EXO-CARD-01"], "released_by_demo": released,
            "rule_proposals": decisions}
