"""Clinic questions the web pages ask that the CLI does not: every administration check at
once (without writing), and the choices a subject's forms offer.

:func:`administration_check` answers "may this vial go into this subject now?"
before anyone confirms. It lists each check of the guard
(:func:`exotrace.clinic.administration_refusals`: consent, lot released and
in date, vial available, product of the arm, dose within the arm maximum and
unit) with its own verdict, then runs :func:`exotrace.records.administer`
itself inside a savepoint that is always rolled back, so its verdict is the
one the confirmed administration will meet (dosing state, schedule, route,
vial volume included) and nothing is ever written.
"""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Session

from ..clinic import (
    AdministrationFacts,
    AEOutcome,
    DoseComputation,
    Relatedness,
    SeriousnessCriterion,
    administration_refusals,
)
from ..errors import ConsentError, ExotraceError, InvalidInput, NotFound
from . import _repositories as repo
from . import _repositories_clinic as crepo
from ._auth import Permission, require_permission
from ._base import utcnow
from ._enums import LotStatus
from ._iso7064 import is_valid_identifier
from ._models_auth import User
from ._models_clinic import ClinicalProtocol, Enrolment, Subject
from ._models_lot import Lot, Vial

__all__ = ["ADMINISTRATION_CHECKS", "administration_check", "enrolled_subject_codes",
           "subject_form_choices", "subjects_page"]

#: Every check shown before an administration is confirmed, in the order shown.
#: Keys of the guard's checks are those of :func:`exotrace.clinic.administration_refusals`.
ADMINISTRATION_CHECKS: dict[str, str] = {
    "identifier": "Vial identifier check character (ISO 7064 MOD 37-2)",
    "vial": "Vial on record",
    "subject": "Subject enrolled in a protocol arm",
    "subject consent": "Subject study consent signed and not withdrawn",
    "donor consent": "Donor consent covers clinical use",
    "lot status": "Lot released by QA (signed release)",
    "release time": "Administration after the lot's release",
    "expiry": "Lot not expired",
    "fill time": "Administration after the vial's fill",
    "vial status": "Vial available (not used, discarded or quarantined)",
    "product": "Product type allowed in the subject's arm",
    "dose": "Dose in the arm's unit and within the arm maximum",
    "rules": "Dosing state, schedule, route and vial volume",
}


#: Phrases of administer's refusals that concern the dosing state, the schedule, the route
#: or the vial's volume rather than the dose itself (level, maximum, unit, concentration).
_RULE_REFUSALS = ("awaits a clinician", "on hold", "was stopped", "were already given",
                  "does not fit route", "the vial holds", "before enrolment", "in the future")


def _clean_identifier(text: str) -> str:
    # As administer reads it: a scanner or a person may add spaces or hyphens.
    return "".join(c for c in str(text).upper() if c not in " -")


def _screening_dose(arm) -> DoseComputation:
    # A dose at the arm's lowest level, only so the guard can be asked about everything
    # else; its own "dose" verdict is replaced by the real dose from the dry run below.
    return DoseComputation(arm.code, 1, arm.dose_levels[0], arm.dose_unit, 1.0, 1.0, None, None,
                           1.0, None, arm.maximum_dose, arm.dose_levels[0] / arm.maximum_dose)


def _row(key: str, ok: bool | None, detail: str = "") -> dict:
    return {"check": key, "label": ADMINISTRATION_CHECKS[key], "ok": ok, "detail": detail}


def _pending(keys) -> list[dict]:
    return [_row(k, None, "not checked (an earlier check failed)") for k in keys]


def _facts(session: Session, subject: Subject, vial: Vial, at: datetime):
    """The guard's facts for this vial and subject, with the lot's release proven signed."""
    # Top-level names only: the clinic services are organised by workflow behind them.
    from . import check_lot_consent, lot_product_type, protocol_model, require_release_signature

    enrolment = repo.find_by(session, Enrolment, subject_id=subject.id)
    protocol = protocol_model(session.get(ClinicalProtocol, enrolment.protocol_id))
    arm = protocol.arm(enrolment.arm_code)
    lot = session.get(Lot, vial.lot_id)
    lot_status = lot.status.value
    signature_problem = None
    if lot.status is LotStatus.RELEASED:
        try:
            require_release_signature(session, lot)
        except ExotraceError as exc:
            signature_problem = str(exc)
    donor_problem = None
    try:
        check_lot_consent(session, lot, purpose=f"administer vial {vial.identifier}")
    except ConsentError as exc:
        donor_problem = str(exc)
    consent = crepo.latest_study_consent(session, subject.id)
    day = at.date()
    consent_ok = (consent is not None and consent.signed_on <= day
                  and (consent.withdrawn_on is None or consent.withdrawn_on > day))
    facts = AdministrationFacts(
        vial_id=vial.identifier, lot_number=lot.number, lot_status=lot_status,
        lot_expiry_date=lot.expires_on, product_type=lot_product_type(session, lot),
        donor_consent_valid=donor_problem is None, subject_consent_valid=consent_ok, arm=arm,
        dose=_screening_dose(arm), administration_date=day, vial_status=vial.status.value,
        administered_at=at, lot_released_at=lot.released_at, vial_filled_at=vial.created_at)
    return facts, lot, signature_problem, donor_problem


def administration_check(session: Session, user: User, *, subject_code: str,
                         vial_identifier: str, at: datetime | None = None,
                         level: int | None = None, dose_amount: float | None = None,
                         site: str | None = None, body_weight_kg: float | None = None) -> dict:
    """Every check of giving ``vial_identifier`` to ``subject_code``, evaluated without writing.

    Parameters are those of :func:`exotrace.records.administer` (``at``
    defaults to now). Needs the permission to record administrations.

    Returns
    -------
    dict
        ``allowed`` (bool), ``refusal`` (the message the administration would
        be refused with, or None), ``checks`` (list of ``{check, label, ok,
        detail}``; ``ok`` is None for a check not reached), ``vial`` (the
        identifier as read), ``subject``, ``lot`` and, when allowed,
        ``administration`` (what would be recorded: slot, level, dose,
        dose_unit, particles, volume_ml, protein_ug, window_flag).
    """
    from . import administer, administration_view

    require_permission(user, Permission.RECORD_CLINICAL, action="check administrations")
    at = at or utcnow()
    if not isinstance(at, datetime) or at.tzinfo is None:
        raise InvalidInput(f"administration time {at!r} needs a time zone (e.g. 2025-06-01T10:30Z)")
    clean = _clean_identifier(vial_identifier)
    out = {"subject": subject_code, "vial": clean, "lot": None, "allowed": False,
           "refusal": None, "checks": [], "administration": None}
    checks = out["checks"]
    later = [k for k in ADMINISTRATION_CHECKS if k not in ("identifier",)]
    if not is_valid_identifier(clean):
        out["refusal"] = (f"vial {vial_identifier!r}: check character does not match "
                          "(ISO 7064 MOD 37-2); the identifier is mistyped or misread")
        checks += [_row("identifier", False, out["refusal"]), *_pending(later)]
        return out
    checks.append(_row("identifier", True, clean))
    vial = repo.find_by(session, Vial, identifier=clean)
    if vial is None:
        out["refusal"] = f"no vial with identifier {clean!r}"
        checks += [_row("vial", False, out["refusal"]), *_pending(later[1:])]
        return out
    checks.append(_row("vial", True, f"vial {clean}"))
    subject = repo.find_by(session, Subject, code=subject_code)
    enrolled = subject is not None and repo.find_by(
        session, Enrolment, subject_id=subject.id) is not None
    if not enrolled:
        out["refusal"] = (f"no subject with code {subject_code!r}" if subject is None
                          else f"subject {subject_code} is not enrolled in any protocol")
        checks += [_row("subject", False, out["refusal"]), *_pending(later[2:])]
        return out
    facts, lot, signature_problem, donor_problem = _facts(session, subject, vial, at)
    out["lot"] = lot.number
    enrolment = repo.find_by(session, Enrolment, subject_id=subject.id)
    checks.append(_row("subject", True, f"arm {enrolment.arm_code}, enrolled "
                                        f"{enrolment.enrolled_on.isoformat()}"))
    refused = {}
    for r in administration_refusals(facts):
        if r.check != "dose":  # judged below with the real dose
            refused.setdefault(r.check, r.reason)
    if signature_problem and "lot status" not in refused:
        refused["lot status"] = signature_problem
    if donor_problem and "donor consent" in refused:
        refused["donor consent"] += f" ({donor_problem})"
    def when(prefix: str, value) -> str:
        return f"{prefix} {value.isoformat(timespec='minutes')}" if value is not None else ""

    fine = {"subject consent": "valid", "donor consent": "valid",
            "lot status": f"lot {lot.number} released",
            "release time": when("released", lot.released_at),
            "expiry": f"expires {lot.expires_on.isoformat()}" if lot.expires_on else "",
            "fill time": when("filled", vial.created_at),
            "vial status": vial.status.value, "product": facts.product_type}
    for key in ("subject consent", "donor consent", "lot status", "release time", "expiry",
                "fill time", "vial status", "product"):
        checks.append(_row(key, key not in refused, refused.get(key, fine[key])))
    # The administration itself, rolled back: its first refusal is the one Confirm would meet.
    savepoint = session.begin_nested()
    try:
        adm = administer(session, user, subject_code=subject_code, vial_identifier=clean, at=at,
                         level=level, dose_amount=dose_amount, site=site,
                         body_weight_kg=body_weight_kg)
        would = administration_view(session, adm)
        would.pop("id", None)
        would.pop("vial_status", None)
    except ExotraceError as exc:
        out["refusal"] = str(exc)
        would = None
    finally:
        savepoint.rollback()
    if would is not None:
        out["allowed"], out["administration"] = True, would
        checks.append(_row("dose", True, f"{would['dose']:.4g} {would['dose_unit']} "
                                         f"(level {would['level']}), {would['volume_ml']:.3g} mL"))
        checks.append(_row("rules", True, f"slot {would['slot']}"
                                          + (f"; {would['window_flag']}"
                                             if would["window_flag"] else "")))
    elif refused:
        checks += _pending(["dose", "rules"])
    else:
        # Everything above passed: the refusal concerns the dosing rules or the dose.
        key = "rules" if any(p in out["refusal"] for p in _RULE_REFUSALS) else "dose"
        checks.append(_row("dose", False, out["refusal"]) if key == "dose"
                      else _row("dose", None, "not checked (a dosing rule refused first)"))
        checks.append(_row("rules", False, out["refusal"]) if key == "rules"
                      else _row("rules", None, "not checked (the dose was refused first)"))
    return out


def subject_form_choices(session: Session, subject_code: str) -> dict:
    """What a subject's forms offer: visits and outcomes (with units) of the protocol, the arm's
    dose levels, and the adverse event vocabularies (relatedness, outcome, seriousness)."""
    from . import protocol_model

    subject = repo.find_by(session, Subject, code=subject_code)
    if subject is None:
        raise NotFound(f"no subject with code {subject_code!r}")
    enrolment = repo.find_by(session, Enrolment, subject_id=subject.id)
    visits, outcomes, levels, dose_unit = [], [], [], None
    if enrolment is not None:
        protocol = protocol_model(session.get(ClinicalProtocol, enrolment.protocol_id))
        arm = protocol.arm(enrolment.arm_code)
        visits = [v.name for v in protocol.schedule.visits]
        outcomes = [{"code": o.code, "name": o.name, "unit": o.unit} for o in protocol.outcomes]
        levels = [{"level": i, "dose": d} for i, d in enumerate(arm.dose_levels, start=1)]
        dose_unit = arm.dose_unit.value
    return {"subject": subject.code, "visits": visits, "outcomes": outcomes, "levels": levels,
            "dose_unit": dose_unit, "relatedness": [r.value for r in Relatedness],
            "ae_outcomes": [o.value for o in AEOutcome],
            "seriousness_criteria": [c.value for c in SeriousnessCriterion]}


def enrolled_subject_codes(session: Session, *, limit: int = 2000) -> list[str]:
    """Codes of enrolled subjects, sorted (one query: the bedside page offers them as it loads)."""
    query = (sa.select(Subject.code).join(Enrolment, Enrolment.subject_id == Subject.id)
             .order_by(Subject.code).limit(limit))
    return list(session.scalars(query))


def subjects_page(session: Session, *, protocol_code: str | None = None, offset: int = 0,
                  limit: int = 25) -> dict:
    """One page of enrolled subjects, sorted by code, as :func:`exotrace.records.list_subjects`
    rows (the CLI's ``subject list --json``), and how many there are in all.

    Paged in SQL: a page costs the same whatever the number of subjects.
    """
    from . import get_protocol, subject_view

    if offset < 0 or not 1 <= limit <= 1000:
        raise InvalidInput(f"page offset {offset}, size {limit}: offset >= 0, size 1-1000")
    query = sa.select(Subject).join(Enrolment, Enrolment.subject_id == Subject.id)
    if protocol_code is not None:
        query = query.where(Enrolment.protocol_id == get_protocol(session, protocol_code)[0].id)
    total = session.scalar(sa.select(sa.func.count()).select_from(query.subquery()))
    subjects = session.scalars(query.order_by(Subject.code).offset(offset).limit(limit))
    return {"total": total, "offset": offset, "limit": limit,
            "subjects": [subject_view(session, s) for s in subjects]}
