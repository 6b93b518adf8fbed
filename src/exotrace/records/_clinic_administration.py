"""Clinic services: giving one vial to one subject, after every check passes."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta

from sqlalchemy.orm import Session

from ..clinic import (
    AdministrationFacts,
    Route,
    administration_refusals,
    administration_schedule,
    check_administration,
    compute_dose,
    window_position,
)
from ..errors import ConsentError, InvalidInput, NotFound, RuleViolation
from . import _repositories as repo
from . import _repositories_clinic as crepo
from ._auth import Permission, require_permission
from ._base import utcnow
from ._clinic_common import _CONCENTRATION, _consent_valid_on, _enrolment, _subject
from ._clinic_dosing import (
    _dosing_state,
    _lot_dosing_measurements,
    _screening_dose,
    lot_product_type,
)
from ._context import acting_as, change_reason
from ._enums import LotStatus, VialStatus
from ._iso7064 import is_valid_identifier
from ._models_auth import User
from ._models_clinic import Administration, Subject
from ._models_lot import Lot, Product, Vial
from ._services_lot import check_lot_consent

__all__ = ["FUTURE_TOLERANCE", "administer", "administration_view"]


#: Product forms that fit each route (a topical serum is never infused).
_ROUTE_FORMS = {
    Route.TOPICAL_AFTER_CLEANSING: {"topical_serum", "topical_cream", "topical_mask", "topical_gel"},
    Route.TOPICAL_MICRONEEDLING: {"topical_serum", "topical_cream", "topical_mask", "topical_gel"},
    Route.TOPICAL_LASER: {"topical_serum", "topical_cream", "topical_mask", "topical_gel"},
    Route.INTRADERMAL: {"injectable"},
    Route.INTRAMYOCARDIAL: {"injectable"},
    Route.INTRAVENOUS: {"intravenous", "injectable"},
    Route.INTRANASAL: {"inhaled", "injectable"},
    Route.INHALED: {"inhaled"},
}
#: An administration time may lie this far after the server's clock: the clocks of
#: bedside entry devices drift a little. One second later is "in the future".
FUTURE_TOLERANCE = timedelta(minutes=5)


def _parse_vial(session: Session, vial_identifier: str) -> Vial:
    clean = "".join(c for c in str(vial_identifier).upper() if c not in " -")
    if not is_valid_identifier(clean):
        raise InvalidInput(f"vial {vial_identifier!r}: check character does not match "
                           "(ISO 7064 MOD 37-2); the identifier is mistyped or misread")
    vial = repo.find_by(session, Vial, identifier=clean)
    if vial is None:
        raise NotFound(f"no vial with identifier {clean!r}")
    return vial


def administer(session: Session, user: User, *, subject_code: str, vial_identifier: str,
               at: datetime | None = None, level: int | None = None,
               dose_amount: float | None = None, site: str | None = None,
               body_weight_kg: float | None = None) -> Administration:
    """Give one vial to one subject, after every check passes; nothing is written otherwise.

    Checks, in order: the vial identifier's check character; the clinic
    core's :func:`~exotrace.clinic.check_administration` (subject and donor
    consent, lot released and unexpired, the time after the lot's release and
    the vial's fill, vial available, product type of the arm); the time not in
    the future (up to :data:`FUTURE_TOLERANCE` of clock drift); the dosing state (no pending proposal, not on hold or stopped, a
    scheduled administration left); the product form fits the arm's route; the dose, computed by
    :func:`~exotrace.clinic.compute_dose` from the protocol level and the
    lot's own particle concentration and particle:protein ratio, is within
    the protocol maximum and not above the level in effect, and fits in the vial.

    Parameters
    ----------
    at : datetime, optional
        Time of administration, time zone-aware (default now).
    level : int, optional
        Dose level; default the level in effect (starting level, or as decided).
    dose_amount : float, optional
        A dose off the level list, in the arm's unit (particles, particles/kg,
        ug protein); still checked against the maximum.
    body_weight_kg : float, optional
        Weight today (default the weight at enrolment), kg.

    Raises
    ------
    InvalidInput, NotFound, ConsentError, RuleViolation, UnitError
    """
    require_permission(user, Permission.RECORD_CLINICAL, action="record administrations")
    at = at or utcnow()
    if not isinstance(at, datetime) or at.tzinfo is None:
        raise InvalidInput(f"administration time {at!r} needs a time zone (e.g. 2025-06-01T10:30Z)")
    if at > utcnow() + FUTURE_TOLERANCE:
        raise InvalidInput(f"administration time {at.isoformat()} is in the future")
    day = at.date()  # the local day where it happened
    vial = _parse_vial(session, vial_identifier)
    subject = _subject(session, subject_code)
    enrolment, _, protocol, arm = _enrolment(session, subject)
    if day < enrolment.enrolled_on:
        raise RuleViolation(f"subject {subject.code}: administration on {day} is before "
                            f"enrolment on {enrolment.enrolled_on}")
    lot = session.get(Lot, vial.lot_id)
    if lot.status is LotStatus.RELEASED:
        # Released only counts with a validly signed release record.
        from ._integrity import require_release_signature

        require_release_signature(session, lot)
    consent = crepo.latest_study_consent(session, subject.id)
    donor_problem = None
    try:
        check_lot_consent(session, lot, purpose=f"administer vial {vial.identifier}")
    except ConsentError as exc:
        donor_problem = str(exc)
    facts = AdministrationFacts(
        vial_id=vial.identifier, lot_number=lot.number, lot_status=lot.status.value,
        lot_expiry_date=lot.expires_on, product_type=lot_product_type(session, lot),
        donor_consent_valid=donor_problem is None,
        subject_consent_valid=_consent_valid_on(consent, day), arm=arm,
        dose=_screening_dose(arm), administration_date=day, vial_status=vial.status.value,
        administered_at=at, lot_released_at=lot.released_at, vial_filled_at=vial.created_at)
    _raise_first([r for r in administration_refusals(facts) if r.check != "dose"], donor_problem)
    state = _dosing_state(session, subject, arm)
    if state.blocked:
        raise RuleViolation(f"subject {subject.code}: {state.blocked}")
    given = crepo.subject_administrations(session, subject.id)
    slots = administration_schedule(protocol, enrolment.enrolled_on)
    if len(given) >= len(slots):
        raise RuleViolation(f"subject {subject.code}: all {len(slots)} administrations of "
                            f"protocol {protocol.id} were already given")
    slot = slots[len(given)]
    product = session.get(Product, vial.product_id) if vial.product_id else None
    if product is not None and product.form.value not in _ROUTE_FORMS[arm.route]:
        raise RuleViolation(f"vial {vial.identifier}: product {product.code} is a "
                            f"{product.form.value}, which does not fit route {arm.route.value} "
                            f"of arm {arm.code}")
    conc, ratio = _lot_dosing_measurements(session, lot)
    if conc is None:
        raise RuleViolation(f"vial {vial.identifier}: lot {lot.number} has no "
                            f"{_CONCENTRATION} measurement; the dose cannot be computed")
    if dose_amount is not None and level is not None:
        raise InvalidInput("give --level or --dose, not both")
    if dose_amount is not None:
        dose_level = arm.custom_dose(float(dose_amount))
    else:
        dose_level = arm.level(state.level if level is None else level)
    weight = body_weight_kg if body_weight_kg is not None else enrolment.body_weight_kg
    dose = compute_dose(dose_level, body_weight_kg=weight, lot_particles_per_ml=conc,
                        lot_particles_per_ug_protein=ratio)
    allowed = arm.dose_levels[state.level - 1]
    if dose.dose_amount > allowed * (1 + 1e-12):
        raise RuleViolation(
            f"subject {subject.code}: dose {dose.dose_amount:.4g} {arm.dose_unit.value} is above "
            f"level {state.level} in effect ({allowed:.4g}); record a dose override first")
    check_administration(replace(facts, dose=dose))
    if vial.fill_volume_ml is not None and dose.volume_ml > vial.fill_volume_ml * (1 + 1e-9):
        raise RuleViolation(f"vial {vial.identifier}: the dose needs {dose.volume_ml:.3g} mL at "
                            f"{conc:.3g} particles/mL; the vial holds {vial.fill_volume_ml:g} mL")
    _, outside = window_position(slot, day)
    flag = None
    if outside:
        flag = (f"{slot.name} outside window: {abs(outside)} day(s) "
                f"{'early' if outside < 0 else 'late'} (window {slot.earliest_date} to "
                f"{slot.latest_date})")
    adm = Administration(
        subject_id=subject.id, enrolment_id=enrolment.id, vial_id=vial.id, lot_id=lot.id,
        slot=slot.name, administered_at=at, site=site, dose_level=dose.level,
        dose_amount=dose.dose_amount, dose_unit=dose.dose_unit.value, particles=dose.particles,
        volume_ml=dose.volume_ml, protein_ug=dose.protein_ug, body_weight_kg=dose.body_weight_kg,
        lot_particles_per_ml=conc, lot_particles_per_ug=ratio, window_flag=flag,
        operator_id=user.id)
    with acting_as(session, user):
        session.add(adm)
        session.flush()
        with change_reason(session, f"administered to subject {subject.code} "
                                    f"(administration {adm.id})"):
            vial.status = VialStatus.ADMINISTERED
    return adm


def _raise_first(refusals, donor_problem: str | None) -> None:
    if not refusals:
        return
    first = refusals[0]
    if first.check == "donor consent" and donor_problem:
        raise ConsentError(f"{first.reason} ({donor_problem})")
    raise first.error()


def administration_view(session: Session, adm: Administration) -> dict:
    vial = session.get(Vial, adm.vial_id)
    lot = session.get(Lot, adm.lot_id)
    subject = session.get(Subject, adm.subject_id)
    operator = session.get(User, adm.operator_id)
    return {"id": adm.id, "subject": subject.code, "vial": vial.identifier, "lot": lot.number,
            "slot": adm.slot, "administered_at": adm.administered_at, "site": adm.site,
            "level": adm.dose_level, "dose": adm.dose_amount, "dose_unit": adm.dose_unit,
            "particles": adm.particles, "volume_ml": adm.volume_ml, "protein_ug": adm.protein_ug,
            "body_weight_kg": adm.body_weight_kg, "window_flag": adm.window_flag,
            "operator": operator.username if operator else None,
            "vial_status": vial.status.value}
