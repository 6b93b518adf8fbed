"""Clinic services: protocols, subjects, consent, enrolment, administrations, adverse events,
observations, dose decisions, follow-up, recall and exports.

The rules live in the pure core (:mod:`exotrace.clinic`); these services gather
facts from the database, call the core, and write the result. They check the
acting user's authority, attribute every write to that user (so the audit
trail records it) and never commit: the command or request owns the
transaction, so a refusal leaves nothing written.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, timedelta
from functools import lru_cache
from pathlib import Path

from sqlalchemy.orm import Session

from .._text import check_identifier, check_text, csv_row
from ..clinic import (
    AE_COLUMNS,
    ASSOCIATION_STATEMENT,
    DM_COLUMNS,
    EX_COLUMNS,
    AdministrationFacts,
    AdministrationRecord,
    AdverseEvent,
    AdverseEventRecord,
    Arm,
    ConsentRecord,
    DoseAction,
    DoseComputation,
    ExportData,
    LotOutcomeRow,
    LotRecord,
    ObservationInput,
    ObservationRecord,
    OutcomePoint,
    Protocol,
    Route,
    SubjectAdverseEvent,
    SubjectRecord,
    SubjectState,
    VialRecord,
    administration_refusals,
    administration_schedule,
    build_fhir_bundle,
    change_from_baseline,
    check_administration,
    check_entry_criteria,
    check_observation,
    compute_dose,
    due_visits,
    evaluate_rules,
    expedited_reporting,
    lot_outcome_model,
    lot_outcome_rows,
    observations_by_visit,
    plot_trajectories,
    protocol_from_yaml,
    responder_rates,
    safety_table,
    sdtm_tables,
    window_position,
)
from ..errors import (
    Conflict,
    ConsentError,
    FileFormatError,
    InsufficientData,
    InvalidInput,
    NotFound,
    RuleViolation,
)
from . import _repositories as repo
from . import _repositories_clinic as crepo
from ._auth import Permission, require_permission
from ._base import clock_set_to, utcnow
from ._context import acting_as, change_reason
from ._enums import LotStatus, Sex, VialStatus
from ._iso7064 import is_valid_identifier
from ._models_auth import User
from ._models_clinic import (
    Administration,
    ClinicalAdverseEvent,
    ClinicalProtocol,
    DecisionStatus,
    DecisionTrigger,
    DoseDecision,
    Enrolment,
    Observation,
    StudyConsent,
    Subject,
)
from ._models_lot import Lot, Product, Vial
from ._models_source import CellBank, Donor, ReagentBatch
from ._services_lot import check_lot_consent
from ._trace import lot_sources, register_forward_extension

__all__ = [
    "LOT_ATTRIBUTE_NAMES",
    "add_adverse_event",
    "administer",
    "administration_view",
    "adverse_event_view",
    "build_export_data",
    "clinic_report",
    "decide_dose",
    "decision_view",
    "enrol_subject",
    "export_fhir",
    "export_sdtm",
    "followup_due",
    "get_protocol",
    "import_protocol",
    "list_subjects",
    "load_clinic_demo",
    "lot_product_type",
    "observation_view",
    "protocol_model",
    "protocol_record_view",
    "recall",
    "record_observation",
    "record_study_consent",
    "record_visit",
    "subject_view",
    "withdraw_study_consent",
]

_CODE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,63}$")
#: Lot measurements (records attribute names) used for doses and the lot-to-outcome model.
_CONCENTRATION = "particle_concentration"   # particles/mL
_RATIO = "particle_protein_ratio"           # particles per ug protein
_PROTEIN = "protein_concentration"          # ug/mL
#: records attribute -> name with units used in the lot-to-outcome model
LOT_ATTRIBUTE_NAMES = {
    _RATIO: "purity_particles_per_ug",
    "size_mode": "mode_diameter_nm",
    "potency_percent_inhibition": "potency_percent_inhibition",
}
#: MSC sources (bone marrow, adipose, umbilical cord) give MSC-EV products.
_TISSUE_PRODUCT = {"bone_marrow": "msc-ev", "adipose": "msc-ev", "umbilical_cord": "msc-ev",
                   "other": "other-ev"}
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
_SDTM_SEX = {Sex.FEMALE: "F", Sex.MALE: "M", Sex.OTHER: "UNDIFFERENTIATED", Sex.UNKNOWN: "U"}
#: Longest adverse event term stored (the column's width), characters.
AE_TERM_MAX_LENGTH = 200
#: An administration time may lie this far after the server's clock: the clocks of
#: bedside entry devices drift a little. One second later is "in the future".
FUTURE_TOLERANCE = timedelta(minutes=5)


# ----------------------------------------------------------------------------- helpers

def _code(value: str, what: str) -> str:
    return check_identifier(value, what, _CODE, "use 1-64 letters, digits and _ . - "
                                                "(starting with a letter or digit)")


def _reason(reason: str | None, what: str) -> str:
    if not reason or not reason.strip():
        raise InvalidInput(f"{what} needs a reason (--reason)")
    return reason.strip()


def _not_future(day: date, what: str) -> date:
    if not isinstance(day, date):
        raise InvalidInput(f"{what} must be a date, got {day!r}")
    if day > date.today():
        raise InvalidInput(f"{what} {day.isoformat()} is in the future")
    return day


@lru_cache(maxsize=64)
def _parse_stored(yaml_text: str, source: str) -> Protocol:
    return protocol_from_yaml(yaml_text, source=source)


def protocol_model(record: ClinicalProtocol) -> Protocol:
    """The validated :class:`~exotrace.clinic.Protocol` of a stored protocol version."""
    return _parse_stored(record.yaml_text, f"protocol {record.code} v{record.version} (database)")


def _subject(session: Session, code: str) -> Subject:
    found = repo.find_by(session, Subject, code=code)
    if found is None:
        raise NotFound(f"no subject with code {code!r}")
    return found


def _enrolment(session: Session, subject: Subject) -> tuple[Enrolment, ClinicalProtocol,
                                                            Protocol, Arm]:
    enrolment = repo.find_by(session, Enrolment, subject_id=subject.id)
    if enrolment is None:
        raise RuleViolation(f"subject {subject.code} is not enrolled in any protocol")
    record = session.get(ClinicalProtocol, enrolment.protocol_id)
    protocol = protocol_model(record)
    return enrolment, record, protocol, protocol.arm(enrolment.arm_code)


def _consent_valid_on(consent: StudyConsent | None, day: date) -> bool:
    return (consent is not None and consent.signed_on <= day
            and (consent.withdrawn_on is None or consent.withdrawn_on > day))


# ----------------------------------------------------------------------------- protocols

def import_protocol(session: Session, user: User, source: str | Path, *,
                    text: str | None = None) -> tuple[ClinicalProtocol, bool]:
    """Store a protocol version (id, version, YAML text, SHA-256) from a YAML file.

    Importing the same file again stores nothing and returns the stored
    version (``created`` False). A different text under an existing id and
    version is a Conflict: a changed protocol needs a new version.

    Parameters
    ----------
    source : str or Path
        The YAML file (or, with ``text``, only its name for messages).
    text : str, optional
        The YAML text, when it is not read from ``source``.

    Returns
    -------
    (ClinicalProtocol, bool)
    """
    require_permission(user, Permission.RECORD_CLINICAL, action="import protocols")
    path = Path(source)
    if text is None:
        if not path.is_file():
            raise FileFormatError(path, "file not found")
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise FileFormatError(path, f"cannot be read as UTF-8 text: {exc}") from None
    protocol = protocol_from_yaml(text, source=str(path))
    sha = hashlib.sha256(text.encode("utf-8")).hexdigest()
    existing = repo.find_by(session, ClinicalProtocol, code=protocol.id, version=protocol.version)
    if existing is not None:
        if existing.sha256 == sha:
            return existing, False
        raise Conflict(f"protocol {protocol.id} version {protocol.version} is already stored with "
                       f"different content (SHA-256 {existing.sha256[:12]}...); give the changed "
                       "protocol a new version")
    name = check_text(path.name, "protocol file name", max_length=400)
    record = ClinicalProtocol(code=protocol.id, version=protocol.version, title=protocol.title,
                              yaml_text=text, sha256=sha, source_name=name,
                              imported_by_id=user.id)
    with acting_as(session, user):
        session.add(record)
        session.flush()
    return record, True


def get_protocol(session: Session, code: str, version: str | None = None
                 ) -> tuple[ClinicalProtocol, Protocol]:
    """A stored protocol version (the latest imported when ``version`` is None)."""
    if version is None:
        record = crepo.latest_protocol(session, code)
    else:
        record = repo.find_by(session, ClinicalProtocol, code=code, version=version)
    if record is None:
        known = sorted({p.code for p in crepo.protocol_versions(session)})
        raise NotFound(f"no protocol {code!r}{f' version {version}' if version else ''} in the "
                       f"database (imported: {', '.join(known) or 'none'}); "
                       "use exotrace protocol import FILE")
    return record, protocol_model(record)


def protocol_record_view(record: ClinicalProtocol) -> dict:
    return {"id": record.code, "version": record.version, "title": record.title,
            "sha256": record.sha256, "source": record.source_name,
            "imported_at": record.imported_at}


# ----------------------------------------------------------------------------- subjects

def enrol_subject(session: Session, user: User, code: str, *, protocol_code: str, arm_code: str,
                  enrolled_on: date, consent_version: str, consent_signed_on: date,
                  body_weight_kg: float | None = None, sex: Sex | str = Sex.UNKNOWN,
                  age_years: int | None = None, site: str | None = None,
                  baseline: Mapping[str, tuple[float, str | None]] | None = None) -> Enrolment:
    """Record a pseudonymized subject, their study consent and their enrolment in an arm.

    Parameters
    ----------
    code : str
        Pseudonym (never a name).
    enrolled_on : datetime.date
        Day 0 of the subject's schedule.
    consent_version, consent_signed_on
        The study consent form's version and signature day (on or before
        enrolment; separate from any donor consent).
    body_weight_kg : float, optional
        Needed for arms dosed in particles/kg.
    baseline : mapping, optional
        ``{outcome: (value, unit)}`` measured at enrolment; checked against
        the protocol's entry criteria (required when it has any) and stored
        as baseline observations.

    Raises
    ------
    RuleViolation
        Entry criteria not met, consent signed after enrolment.
    Conflict
        The subject code is taken.
    """
    require_permission(user, Permission.RECORD_CLINICAL, action="enrol subjects")
    _code(code, "subject code")
    record, protocol = get_protocol(session, protocol_code)
    arm = protocol.arm(arm_code)
    _not_future(enrolled_on, "enrolment date")
    _not_future(consent_signed_on, "consent date")
    if not consent_version or len(consent_version) > 32:
        raise InvalidInput("study consent version must be 1-32 characters (the form's version)")
    if consent_signed_on > enrolled_on:
        raise RuleViolation(f"subject {code}: study consent signed {consent_signed_on} after "
                            f"enrolment {enrolled_on}; consent comes first")
    try:
        sex = Sex(sex)
    except ValueError:
        raise InvalidInput(f"sex {sex!r} unknown; choose one of "
                           f"{', '.join(s.value for s in Sex)}") from None
    if age_years is not None and (isinstance(age_years, bool) or not 0 <= int(age_years) <= 130):
        raise InvalidInput(f"age {age_years!r} years is implausible")
    weight = None
    if body_weight_kg is not None:
        weight = float(body_weight_kg)
        if not math.isfinite(weight) or not 0 < weight <= 500:
            raise InvalidInput(f"body weight {body_weight_kg!r} kg is implausible (0-500 kg)")
    elif arm.dose_unit.value == "particles/kg":
        raise InvalidInput(f"arm {arm.code} doses in particles/kg; give the body weight (kg)")
    clash = repo.find_by_casefold(session, Subject, "code", code)
    if clash is not None:
        same = "" if clash.code == code else f" as {clash.code} (codes are compared ignoring case)"
        raise Conflict(f"subject {code} already exists{same}")
    checked = []
    for outcome, (value, unit) in (baseline or {}).items():
        unit = unit or protocol.outcome(outcome).unit  # default: the protocol's unit
        checked.append(check_observation(protocol, ObservationInput(
            outcome, protocol.schedule.baseline_visit.name, value, unit, enrolled_on),
            enrolment_date=enrolled_on))
    if protocol.eligibility.entry_criteria:
        check_entry_criteria(protocol, {c.outcome_code: c.value for c in checked})
    subject = Subject(code=code, sex=sex, age_years=age_years)
    with acting_as(session, user):
        session.add(subject)
        session.flush()
        session.add(StudyConsent(subject_id=subject.id, protocol_id=record.id,
                                 version=consent_version, signed_on=consent_signed_on))
        enrolment = Enrolment(subject_id=subject.id, protocol_id=record.id, arm_code=arm.code,
                              enrolled_on=enrolled_on, body_weight_kg=weight,
                              site=site, enrolled_by_id=user.id)
        session.add(enrolment)
        session.flush()
        for c in checked:
            session.add(_observation_row(subject, enrolment, c, None, user))
        session.flush()
    return enrolment


def record_study_consent(session: Session, user: User, subject_code: str, *, version: str,
                         signed_on: date) -> StudyConsent:
    """Record a new study consent (e.g. a re-consent on a new form); it becomes current."""
    require_permission(user, Permission.RECORD_CLINICAL, action="record study consent")
    subject = _subject(session, subject_code)
    enrolment, record, _, _ = _enrolment(session, subject)
    _not_future(signed_on, "consent date")
    if not version or len(version) > 32:
        raise InvalidInput("study consent version must be 1-32 characters")
    consent = StudyConsent(subject_id=subject.id, protocol_id=record.id, version=version,
                           signed_on=signed_on)
    with acting_as(session, user):
        session.add(consent)
        session.flush()
    return consent


def withdraw_study_consent(session: Session, user: User, subject_code: str, *,
                           withdrawn_on: date, reason: str) -> tuple[StudyConsent, DoseDecision]:
    """Withdraw the subject's study consent: every later administration is refused.

    The dose rules are evaluated at once (``stop_on_consent_withdrawal``).
    """
    require_permission(user, Permission.RECORD_CLINICAL, action="record consent withdrawal")
    subject = _subject(session, subject_code)
    enrolment, _, protocol, arm = _enrolment(session, subject)
    consent = crepo.latest_study_consent(session, subject.id)
    if consent is None:
        raise RuleViolation(f"subject {subject_code} has no study consent to withdraw")
    if consent.withdrawn_on is not None:
        raise Conflict(f"study consent {consent.id} of subject {subject_code} was already "
                       f"withdrawn on {consent.withdrawn_on}")
    why = _reason(reason, "a consent withdrawal")
    _not_future(withdrawn_on, "withdrawal date")
    if withdrawn_on < consent.signed_on:
        raise InvalidInput(f"withdrawal date {withdrawn_on} is before the consent date "
                           f"{consent.signed_on}")
    with acting_as(session, user), change_reason(session, f"study consent withdrawn: {why}"):
        consent.withdrawn_on = withdrawn_on
        consent.withdrawal_reason = why
    decision = _propose(session, user, subject, enrolment, protocol, arm,
                        DecisionTrigger.CONSENT_WITHDRAWAL, consent.id, withdrawn_on)
    return consent, decision


# ----------------------------------------------------------------------------- lots for dosing

def lot_product_type(session: Session, lot: Lot) -> str:
    """Product type of a lot from its cell sources: MSC tissues give ``msc-ev``.

    A lot pooled from sources of different types is ``mixed:<types>``, which
    no arm lists, so it is refused unless a protocol names it.
    """
    types = sorted({_TISSUE_PRODUCT.get(t, f"{t}-ev") for t in crepo.lot_tissues(session, lot.id)})
    if not types:
        return "unknown"
    return types[0] if len(types) == 1 else "mixed:" + "+".join(types)


def _lot_dosing_measurements(session: Session, lot: Lot) -> tuple[float | None, float | None]:
    """(particles/mL, particles per ug protein) of the lot, from its latest measurements."""
    m = crepo.latest_measurements(session, [lot.id], [_CONCENTRATION, _RATIO, _PROTEIN])
    conc = m.get((lot.id, _CONCENTRATION))
    ratio = m.get((lot.id, _RATIO))
    if ratio is None and conc is not None and m.get((lot.id, _PROTEIN)):
        ratio = conc / m[(lot.id, _PROTEIN)]  # particles/mL over ug/mL
    return conc, ratio


@dataclass(frozen=True)
class _DosingState:
    level: int                 # level in effect (decided), 1-based
    blocked: str | None        # why no administration may happen now
    applied_rule_ids: frozenset[str]
    in_effect: tuple[str, int | None]  # (action, level) of the last decision taken


def _dosing_state(session: Session, subject: Subject, arm: Arm) -> _DosingState:
    level, blocked, applied = arm.starting_level, None, set()
    in_effect: tuple[str, int | None] = ("continue", level)
    pending = []
    for d in crepo.decisions_of(session, subject.id):
        if d.status is DecisionStatus.PROPOSED:
            pending.append(d)
        elif d.status is DecisionStatus.ACCEPTED:
            in_effect = (d.proposed_action, d.proposed_level)
            if d.proposed_action == DoseAction.STOP.value:
                blocked = (f"dosing was stopped by dose decision {d.id} ({d.reason}); "
                           "a clinician's override is needed to resume")
            elif d.proposed_action == DoseAction.HOLD.value:
                blocked = (f"dosing is on hold by dose decision {d.id} ({d.reason}); record a "
                           "dose override with the level to resume")
                level = d.proposed_level or level
            else:
                blocked = None
                level = d.proposed_level or level
            if d.proposed_action == DoseAction.ESCALATE.value:
                applied.update(r for r in d.rule_ids.split(",") if r)
        elif d.status is DecisionStatus.OVERRIDDEN:
            in_effect = ("override", d.decided_level)
            blocked = None
            level = d.decided_level or level
            if d.proposed_action == DoseAction.ESCALATE.value:
                applied.update(r for r in d.rule_ids.split(",") if r)
    if pending:
        d = pending[-1]
        blocked = (f"dose proposal {d.id} ({d.proposed_action}: {d.reason}) awaits a clinician; "
                   "run exotrace dose accept or dose override first")
    return _DosingState(level, blocked, frozenset(applied), in_effect)


def _screening_dose(arm: Arm) -> DoseComputation:
    # Placeholder used only to ask the core for the non-dose refusals (consent, lot,
    # vial, product) before the real dose is computed, so those come first; every
    # "dose" refusal from this screening is discarded.
    return DoseComputation(arm.code, 1, arm.dose_levels[0], arm.dose_unit, 1.0, 1.0, None, None,
                           1.0, None, arm.maximum_dose, arm.dose_levels[0] / arm.maximum_dose)


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


# ----------------------------------------------------------------------------- rules

def _ae_model(row: ClinicalAdverseEvent) -> AdverseEvent:
    return AdverseEvent(term=row.term, grade=row.grade, onset_date=row.onset_on,
                        relatedness=row.relatedness,
                        seriousness=frozenset(c for c in row.seriousness.split(",") if c),
                        resolution_date=row.resolved_on, outcome=row.outcome,
                        expected=row.expected, ae_id=str(row.id),
                        awareness_date=row.awareness_on)


def _propose(session: Session, user: User, subject: Subject, enrolment: Enrolment,
             protocol: Protocol, arm: Arm, trigger: DecisionTrigger, trigger_id: int | None,
             as_of: date, *, status: DecisionStatus | None = None) -> DoseDecision:
    """Evaluate the protocol's dose rules for the subject on ``as_of`` and record the proposal.

    The engine judges the cycle since the last administration, so its
    ``current_level`` is the level of that administration (or the level in
    effect before any). A proposal equal to what is already in effect, or a
    plain ``continue``, needs no decision (``no_change``); anything else
    waits for a clinician and supersedes older pending proposals.
    """
    state = _dosing_state(session, subject, arm)
    given = [a for a in crepo.subject_administrations(session, subject.id)
             if a.administered_at.date() <= as_of]
    current = state.level
    if given and given[-1].dose_level is not None:
        current = given[-1].dose_level
    consent = crepo.latest_study_consent(session, subject.id)
    withdrawn = consent is not None and consent.withdrawn_on is not None \
        and consent.withdrawn_on <= as_of
    events = tuple(_ae_model(r) for r in crepo.adverse_events_of(session, subject.id)
                   if r.onset_on <= as_of)
    obs = [o for o in crepo.observations_of(session, subject.id) if o.observed_on <= as_of]
    proposal = evaluate_rules(protocol, arm, SubjectState(
        current_level=current, as_of=as_of, adverse_events=events,
        observations=observations_by_visit(obs),
        consent="withdrawn" if withdrawn else "valid",
        last_administration_date=given[-1].administered_at.date() if given else None,
        applied_rule_ids=state.applied_rule_ids))
    key = (proposal.action.value, proposal.next_level)
    pending = crepo.pending_decisions(session, subject.id)
    same_as_pending = bool(pending) and key == (pending[-1].proposed_action,
                                                pending[-1].proposed_level)
    if status is None:
        # continue, what is already in effect, or what already waits: nothing new to decide
        status = (DecisionStatus.NO_CHANGE
                  if proposal.action is DoseAction.CONTINUE or key == state.in_effect
                  or same_as_pending else DecisionStatus.PROPOSED)
    fired = [{"rule": f.rule_id, "kind": f.kind.value, "action": f.action.value,
              "priority": f.priority, "reason": f.reason} for f in proposal.fired]
    decision = DoseDecision(
        subject_id=subject.id, enrolment_id=enrolment.id, trigger=trigger, trigger_id=trigger_id,
        evaluated_on=as_of, current_level=current, proposed_action=proposal.action.value,
        proposed_level=proposal.next_level, proposed_dose=proposal.next_dose,
        dose_unit=proposal.dose_unit, rule_ids=",".join(proposal.rule_ids),
        fired_json=json.dumps(fired, sort_keys=True), reason=proposal.reason,
        status=status)
    with acting_as(session, user):
        if status is not DecisionStatus.NO_CHANGE:
            for old in pending:
                with change_reason(session, "superseded by a newer dose proposal"):
                    old.status = DecisionStatus.SUPERSEDED
        session.add(decision)
        session.flush()
    return decision


def decision_view(d: DoseDecision, users: Mapping[int, str] | None = None) -> dict:
    return {"id": d.id, "trigger": d.trigger.value, "trigger_id": d.trigger_id,
            "evaluated_on": d.evaluated_on, "current_level": d.current_level,
            "action": d.proposed_action, "proposed_level": d.proposed_level,
            "proposed_dose": d.proposed_dose, "dose_unit": d.dose_unit,
            "rules": [r for r in d.rule_ids.split(",") if r], "fired": json.loads(d.fired_json),
            "reason": d.reason, "status": d.status.value, "decided_level": d.decided_level,
            "decided_by": (users or {}).get(d.decided_by_id, d.decided_by_id),
            "decided_at": d.decided_at, "decision_reason": d.decision_reason}


def decide_dose(session: Session, user: User, subject_code: str, *, accept: bool,
                level: int | None = None, reason: str | None = None,
                on: date | None = None) -> DoseDecision:
    """Accept the pending dose proposal, or override it with a level and a reason.

    ``accept`` needs a pending proposal. An override needs ``level`` and a
    reason; without a pending proposal the rules are evaluated first (on
    ``on``, default today) so the record shows what the engine said.
    """
    require_permission(user, Permission.RECORD_CLINICAL, action="decide doses")
    subject = _subject(session, subject_code)
    enrolment, _, protocol, arm = _enrolment(session, subject)
    pending = crepo.pending_decisions(session, subject.id)
    if accept:
        if level is not None:
            raise InvalidInput("accept takes the proposed level; use dose override --level N")
        if not pending:
            raise Conflict(f"subject {subject.code} has no dose proposal waiting for a decision")
        d = pending[-1]
        why = reason.strip() if reason and reason.strip() else "proposal accepted"
        with acting_as(session, user), change_reason(session, f"dose proposal accepted: {why}"):
            d.status = DecisionStatus.ACCEPTED
            d.decided_level = d.proposed_level
            d.decided_by_id = user.id
            d.decided_at = utcnow()
            d.decision_reason = why
        return d
    why = _reason(reason, "a dose override")
    if level is None:
        raise InvalidInput("an override needs the level to give (--level N)")
    arm.level(level)  # InvalidInput for a level the arm does not have
    if pending:
        d = pending[-1]
    else:
        d = _propose(session, user, subject, enrolment, protocol, arm, DecisionTrigger.CLINICIAN,
                     None, on or date.today(), status=DecisionStatus.PROPOSED)
    with acting_as(session, user), change_reason(session, f"dose proposal overridden: {why}"):
        d.status = DecisionStatus.OVERRIDDEN
        d.decided_level = level
        d.decided_by_id = user.id
        d.decided_at = utcnow()
        d.decision_reason = why
    return d


# ----------------------------------------------------------------------------- adverse events

def add_adverse_event(session: Session, user: User, subject_code: str, *, term: str, grade: int,
                      serious: bool, relatedness: str, onset_on: date,
                      criteria: Iterable[str] = (), outcome: str | None = None,
                      resolved_on: date | None = None, expected: bool = False,
                      awareness_on: date | None = None
                      ) -> tuple[ClinicalAdverseEvent, object, DoseDecision]:
    """Record an adverse event, classify it for expedited reporting, and propose the next dose.

    Parameters
    ----------
    grade : int
        CTCAE v5 grade 1-5.
    serious : bool
        ICH E2A seriousness; ``criteria`` names which (default "important
        medical event" when serious without criteria). Grade 5 is serious.
    relatedness : str
        not related, unlikely, possible, probable, definite.
    onset_on, resolved_on, awareness_on : datetime.date

    Returns
    -------
    (ClinicalAdverseEvent, ExpeditedReport, DoseDecision)
        The suspect administration is the last one on or before onset.
    """
    require_permission(user, Permission.RECORD_CLINICAL, action="record adverse events")
    subject = _subject(session, subject_code)
    enrolment, _, protocol, arm = _enrolment(session, subject)
    _not_future(onset_on, "onset date")
    if onset_on < enrolment.enrolled_on - timedelta(days=protocol.schedule.baseline_visit
                                                    .window_before_days):
        raise InvalidInput(f"onset {onset_on} is before the subject's study period")
    crit = {str(c).strip().lower() for c in criteria if str(c).strip()}
    if serious and not crit:
        crit = {"important medical event"}
    if not serious and crit and grade != 5:
        raise InvalidInput("seriousness criteria given for an event marked not serious")
    # the stored term is the reported term: refused when too long, never cut
    term = check_text(term, "adverse event term", max_length=AE_TERM_MAX_LENGTH, required=True)
    event = AdverseEvent(term=term.strip(), grade=grade,
                         onset_date=onset_on, relatedness=relatedness,
                         seriousness=frozenset(crit), resolution_date=resolved_on,
                         outcome=outcome or ("recovered/resolved" if resolved_on else "unknown"),
                         expected=expected, awareness_date=awareness_on)
    report = expedited_reporting(event)
    suspects = [a for a in crepo.subject_administrations(session, subject.id)
                if a.administered_at.date() <= onset_on]
    row = ClinicalAdverseEvent(
        subject_id=subject.id, administration_id=suspects[-1].id if suspects else None,
        term=event.term, grade=event.grade,
        seriousness=",".join(sorted(c.value for c in event.seriousness)),
        relatedness=event.relatedness.value, onset_on=onset_on, resolved_on=resolved_on,
        outcome=event.outcome.value, expected=expected, awareness_on=awareness_on,
        expedited=report.expedited, report_due_on=report.due_date,
        reporting_note=report.reason, recorded_by_id=user.id)
    with acting_as(session, user):
        session.add(row)
        session.flush()
    decision = _propose(session, user, subject, enrolment, protocol, arm,
                        DecisionTrigger.ADVERSE_EVENT, row.id, max(onset_on, enrolment.enrolled_on))
    return row, replace(report, ae_id=str(row.id)), decision


def adverse_event_view(row: ClinicalAdverseEvent) -> dict:
    return {"id": row.id, "term": row.term, "grade": row.grade,
            "serious": bool(row.seriousness), "seriousness": [c for c in row.seriousness.split(",")
                                                              if c],
            "relatedness": row.relatedness, "onset": row.onset_on, "resolved": row.resolved_on,
            "outcome": row.outcome, "expected": row.expected, "expedited": row.expedited,
            "report_due": row.report_due_on, "reporting": row.reporting_note,
            "administration_id": row.administration_id}


# ----------------------------------------------------------------------------- observations

def _observation_row(subject: Subject, enrolment: Enrolment, c, baseline: float | None,
                     user: User, direction=None) -> Observation:
    ch = None
    if baseline is not None and direction is not None:
        ch = change_from_baseline(baseline, c.value, direction)
    return Observation(subject_id=subject.id, enrolment_id=enrolment.id,
                       outcome_code=c.outcome_code, visit_name=c.visit_name, value=c.value,
                       unit=c.unit, entered_value=c.entered_value, entered_unit=c.entered_unit,
                       observed_on=c.observed_on, days_outside_window=c.days_outside_window,
                       window_flag=c.flag, baseline_value=baseline,
                       change_absolute=ch.absolute if ch else None,
                       change_percent=ch.percent if ch else None, entered_by_id=user.id)


def record_observation(session: Session, user: User, subject_code: str, *, visit: str,
                       outcome: str, value: float, unit: str, observed_on: date | None = None
                       ) -> tuple[Observation, DoseDecision]:
    """Record an outcome value at a visit, then propose the next dose.

    The value is converted to the protocol's unit where that is meaningful
    and refused (UnitError) otherwise; a date outside the visit window is
    kept and flagged. Change from baseline is stored when a baseline exists.
    """
    rows, decision = record_visit(session, user, subject_code, visit=visit,
                                  values={outcome: (value, unit)}, observed_on=observed_on)
    return rows[0], decision


def record_visit(session: Session, user: User, subject_code: str, *, visit: str,
                 values: Mapping[str, tuple[float, str | None]],
                 observed_on: date | None = None) -> tuple[list[Observation], DoseDecision]:
    """Record several outcomes of one visit, then propose the next dose once.

    Every value is checked (unit, window) before anything is written, so one
    bad value leaves the whole visit unwritten. ``values`` maps outcome codes
    to ``(value, unit)``; a ``None`` unit means the protocol's unit.
    """
    require_permission(user, Permission.RECORD_CLINICAL, action="record observations")
    if not values:
        raise InvalidInput(f"visit {visit}: no outcome values given")
    subject = _subject(session, subject_code)
    enrolment, _, protocol, arm = _enrolment(session, subject)
    day = _not_future(observed_on or date.today(), "observation date")
    existing = {(o.outcome_code, o.visit_name): o for o in crepo.observations_of(session,
                                                                               subject.id)}
    baseline_name = protocol.schedule.baseline_visit.name
    rows = []
    for outcome, (value, unit) in values.items():
        unit = unit or protocol.outcome(outcome).unit
        checked = check_observation(protocol, ObservationInput(outcome, visit, value, unit, day),
                                    enrolment_date=enrolment.enrolled_on)
        if (checked.outcome_code, checked.visit_name) in existing:
            raise Conflict(f"subject {subject.code}: {checked.outcome_code} at "
                           f"{checked.visit_name} is already recorded")
        baseline = None
        if checked.visit_name != baseline_name:
            b = existing.get((checked.outcome_code, baseline_name))
            baseline = b.value if b is not None else None
        rows.append(_observation_row(subject, enrolment, checked, baseline, user,
                                     protocol.outcome(checked.outcome_code).direction))
        existing[(checked.outcome_code, checked.visit_name)] = rows[-1]
    with acting_as(session, user):
        session.add_all(rows)
        session.flush()
    decision = _propose(session, user, subject, enrolment, protocol, arm,
                        DecisionTrigger.OBSERVATION, rows[-1].id, day)
    return rows, decision


def observation_view(o: Observation) -> dict:
    return {"id": o.id, "visit": o.visit_name, "outcome": o.outcome_code, "value": o.value,
            "unit": o.unit, "entered": f"{o.entered_value:g} {o.entered_unit}",
            "observed_on": o.observed_on, "window_flag": o.window_flag,
            "baseline": o.baseline_value, "change": o.change_absolute,
            "change_percent": o.change_percent}


# ----------------------------------------------------------------------------- views, follow-up

def subject_view(session: Session, subject: Subject, *, detail: bool = False) -> dict:
    """JSON-ready view of a subject (with enrolment, consent and dosing state)."""
    view: dict = {"code": subject.code, "sex": subject.sex.value, "age_years": subject.age_years}
    enrolment = repo.find_by(session, Enrolment, subject_id=subject.id)
    consent = crepo.latest_study_consent(session, subject.id)
    view["consent"] = None if consent is None else {
        "id": consent.id, "version": consent.version, "signed_on": consent.signed_on,
        "withdrawn_on": consent.withdrawn_on, "withdrawal_reason": consent.withdrawal_reason,
        "withdrawn": consent.withdrawn_on is not None}
    if enrolment is None:
        view["protocol"] = view["arm"] = None
        return view
    record = session.get(ClinicalProtocol, enrolment.protocol_id)
    protocol = protocol_model(record)
    arm = protocol.arm(enrolment.arm_code)
    state = _dosing_state(session, subject, arm)
    admins = crepo.subject_administrations(session, subject.id)
    view.update(protocol=record.code, protocol_version=record.version, arm=arm.code,
                enrolled_on=enrolment.enrolled_on, body_weight_kg=enrolment.body_weight_kg,
                site=enrolment.site, administrations=len(admins),
                current_level=state.level,
                current_dose=arm.dose_levels[state.level - 1], dose_unit=arm.dose_unit.value,
                dosing_blocked=state.blocked)
    if detail:
        users = {u.id: u.username for u in repo.list_all(session, User)}
        view["administrations"] = [administration_view(session, a) for a in admins]
        view["observations"] = [observation_view(o) for o in crepo.observations_of(session, subject.id)]
        view["adverse_events"] = [adverse_event_view(a) for a in crepo.adverse_events_of(session, subject.id)]
        view["dose_decisions"] = [decision_view(d, users) for d in crepo.decisions_of(session, subject.id)]
    return view


def list_subjects(session: Session, *, protocol_code: str | None = None) -> list[dict]:
    """Every subject (optionally of one protocol) with enrolment and dosing state."""
    protocol_id = None
    if protocol_code is not None:
        protocol_id = get_protocol(session, protocol_code)[0].id
    return [subject_view(session, s) for _, s, _ in crepo.all_enrolments(session, protocol_id)]


def followup_due(session: Session, *, as_of: date | None = None, horizon_days: int = 14
                 ) -> list[dict]:
    """Visits overdue, due (window open) or upcoming within ``horizon_days``, for every subject.

    Subjects whose study consent is withdrawn are left out (no further data
    may be collected from them).
    """
    day = as_of or date.today()
    rows = []
    for enrolment, subject, record in crepo.all_enrolments(session):
        consent = crepo.latest_study_consent(session, subject.id)
        if not _consent_valid_on(consent, day) and consent is not None \
                and consent.withdrawn_on is not None:
            continue
        protocol = protocol_model(record)
        outcomes_needed = {v.name: set(v.outcomes) for v in protocol.schedule.visits}
        done_outcomes: dict[str, set] = {}
        for o in crepo.observations_of(session, subject.id):
            done_outcomes.setdefault(o.visit_name, set()).add(o.outcome_code)
        # a visit counts as done when any of its outcomes was recorded
        done = [v for v in outcomes_needed if done_outcomes.get(v)]
        for v in due_visits(protocol, enrolment.enrolled_on, done, as_of=day,
                            horizon_days=horizon_days):
            rows.append({"subject": subject.code, "protocol": record.code,
                         "arm": enrolment.arm_code, "visit": v.name, "status": v.status,
                         "target": v.target_date, "window_from": v.earliest_date,
                         "window_to": v.latest_date, "days_overdue": v.days_overdue})
    order = {"overdue": 0, "due": 1, "upcoming": 2}
    rows.sort(key=lambda r: (order[r["status"]], r["target"], r["subject"]))
    return rows


# ----------------------------------------------------------------------------- traceability

def recall(session: Session, *, donor_code: str | None = None, cell_bank_code: str | None = None,
           lot_number: str | None = None, reagent_code: str | None = None) -> dict:
    """Every subject and administration affected by one donor, cell bank, lot or reagent batch.

    One SQL statement walks the cell-bank lineage and the lot genealogy
    (pools and splits) and joins the administrations.

    Returns
    -------
    dict
        ``source``, ``subjects`` (codes, sorted) and ``administrations``
        (subject, vial, lot, administered_at, dose, dose_unit, particles).
    """
    given = {k: v for k, v in (("donor", donor_code), ("cell_bank", cell_bank_code),
                               ("lot", lot_number), ("reagent_batch", reagent_code)) if v}
    if len(given) != 1:
        raise InvalidInput("recall needs exactly one of --donor, --cell-bank, --lot, "
                           "--reagent-batch")
    kind, key = next(iter(given.items()))
    ids = {"donor_id": None, "cell_bank_id": None, "lot_id": None, "reagent_id": None}
    if kind == "donor":
        ids["donor_id"] = repo.get_by(session, Donor, code=key).id
    elif kind == "cell_bank":
        ids["cell_bank_id"] = repo.get_by(session, CellBank, code=key).id
    elif kind == "lot":
        ids["lot_id"] = repo.get_by(session, Lot, number=key).id
    else:
        ids["reagent_id"] = repo.get_by(session, ReagentBatch, code=key).id
    rows = crepo.recall_rows(session, **ids)
    administrations = [{"subject": r.subject, "protocol": r.protocol, "arm": r.arm,
                        "vial": r.vial, "lot": r.lot, "administered_at": r.administered_at,
                        "dose": r.dose_amount, "dose_unit": r.dose_unit,
                        "particles": r.particles, "volume_ml": r.volume_ml,
                        "administration_id": r.administration_id} for r in rows]
    return {"source": {"kind": kind, "key": key},
            "subjects": sorted({a["subject"] for a in administrations}),
            "administrations": administrations}


def _forward_subjects(session: Session, lot_ids: list[int], vial_ids: list[int]) -> list[dict]:
    """Trace-forward extension: subjects who received vials of the lots reached.

    One entry per subject: code, protocol, arm, number of administrations and
    the lots they came from (``exotrace recall`` lists each administration).
    """
    by_subject: dict[str, dict] = {}
    for code, protocol, arm, lot, n, _last in crepo.administrations_for_lots(session, lot_ids):
        s = by_subject.setdefault(code, {"code": code, "protocol": protocol, "arm": arm,
                                         "administrations": 0, "lots": []})
        s["administrations"] += n
        s["lots"].append(lot)
    return [{**by_subject[c], "lots": sorted(by_subject[c]["lots"])} for c in sorted(by_subject)]


register_forward_extension("subjects", _forward_subjects)


# ----------------------------------------------------------------------------- exports

def build_export_data(session: Session, protocol_code: str) -> ExportData:
    """Gather one study's records into the clinic core's :class:`~exotrace.clinic.ExportData`.

    Lots and vials are those administered in the study; each lot carries its
    donor code(s) as the biological source (a pool lists every donor, joined
    with ``+``).
    """
    record, protocol = get_protocol(session, protocol_code)
    users = {u.id: u.username for u in repo.list_all(session, User)}
    subjects, consents, admins, observations, events = [], [], [], [], []
    lots: dict[int, Lot] = {}
    vials: dict[int, Vial] = {}
    for enrolment, subject, _ in crepo.all_enrolments(session, record.id):
        arm = protocol.arm(enrolment.arm_code)
        subjects.append(SubjectRecord(subject.code, arm.code, enrolment.enrolled_on,
                                      _SDTM_SEX[subject.sex], subject.age_years,
                                      enrolment.site or ""))
        for c in crepo.study_consents_of(session, subject.id):
            consents.append(ConsentRecord(str(c.id), subject.code, c.signed_on,
                                          withdrawn_on=c.withdrawn_on))
        for a in crepo.subject_administrations(session, subject.id):
            vial = session.get(Vial, a.vial_id)
            vials[vial.id] = vial
            lots[a.lot_id] = session.get(Lot, a.lot_id)
            admins.append(AdministrationRecord(
                str(a.id), subject.code, vial.identifier, a.administered_at, a.dose_amount,
                a.dose_unit, a.particles, a.volume_ml, arm.route, users.get(a.operator_id, "")))
        for o in crepo.observations_of(session, subject.id):
            observations.append(ObservationRecord(str(o.id), subject.code, o.outcome_code,
                                                  o.visit_name, o.value, o.unit, o.observed_on))
        for e in crepo.adverse_events_of(session, subject.id):
            events.append(AdverseEventRecord(
                subject.code, _ae_model(e),
                str(e.administration_id) if e.administration_id is not None else None))
    conc = crepo.latest_measurements(session, list(lots), [_CONCENTRATION])
    lot_records = []
    for lot_id, lot in sorted(lots.items(), key=lambda kv: kv[1].number):
        donors = "+".join(code for _, code, _ in lot_sources(session, lot_id)) or "unknown"
        lot_records.append(LotRecord(lot.number, lot.number, lot_product_type(session, lot),
                                     donors, lot.status.value, lot.expires_on,
                                     conc.get((lot_id, _CONCENTRATION))))
    vial_records = [VialRecord(v.identifier, lots[v.lot_id].number)
                    for v in sorted(vials.values(), key=lambda v: v.identifier)]
    return ExportData(protocol, tuple(subjects), tuple(consents), tuple(lot_records),
                      tuple(vial_records), tuple(admins), tuple(observations), tuple(events))


def _protocol_codes(session: Session, protocol_code: str | None) -> list[str]:
    if protocol_code is not None:
        return [get_protocol(session, protocol_code)[0].code]
    codes = sorted({r.code for _, _, r in crepo.all_enrolments(session)})
    if not codes:
        raise InsufficientData("no enrolled subjects to export")
    return codes


def export_fhir(session: Session, path: str | Path, *, protocol_code: str | None = None) -> dict:
    """Write one FHIR R5 Bundle (validated) of one study, or of every study with subjects.

    Several studies go into one collection Bundle, each study's resources
    built and validated by the clinic core, the merged Bundle validated
    again. Nothing is written if any resource fails validation.

    Returns
    -------
    dict
        ``path``, ``studies`` and ``resources`` (count per resource type).
    """
    from fhir.resources.bundle import Bundle
    from pydantic import ValidationError

    codes = _protocol_codes(session, protocol_code)
    bundles = [build_fhir_bundle(build_export_data(session, c)) for c in codes]
    if len(bundles) == 1:
        bundle = bundles[0]
    else:
        bundle = {"resourceType": "Bundle", "id": bundles[0]["id"], "type": "collection",
                  "identifier": bundles[0]["identifier"],
                  "entry": [e for b in bundles for e in b.get("entry", [])]}
        try:
            bundle = json.loads(Bundle.model_validate(bundle).model_dump_json(exclude_none=True))
        except ValidationError as exc:
            raise InvalidInput(f"merged FHIR bundle is invalid: {exc.errors()[0]['msg']}") from None
    counts: dict[str, int] = {}
    for e in bundle.get("entry", []):
        t = e["resource"]["resourceType"]
        counts[t] = counts.get(t, 0) + 1
    out = Path(path)
    text = json.dumps(bundle, indent=2)
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp = out.with_name(out.name + ".part")
        tmp.write_text(text, encoding="utf-8")
        tmp.replace(out)
    except OSError as exc:
        raise FileFormatError(out, f"cannot write: {exc.strerror or exc}") from None
    return {"path": str(out), "studies": codes, "resources": dict(sorted(counts.items())),
            "entries": len(bundle.get("entry", []))}


def export_sdtm(session: Session, out_dir: str | Path, *, protocol_code: str | None = None
                ) -> dict:
    """Write ``dm.csv``, ``ex.csv``, ``ae.csv`` (SDTM-shaped) for one or every study.

    Every table is built before anything is written; rows of several studies
    are concatenated (each row carries STUDYID).
    """
    import csv
    import io

    codes = _protocol_codes(session, protocol_code)
    tables: dict[str, list] = {"DM": [], "EX": [], "AE": []}
    for c in codes:
        for k, rows in sdtm_tables(build_export_data(session, c)).items():
            tables[k].extend(rows)
    columns = {"DM": DM_COLUMNS, "EX": EX_COLUMNS, "AE": AE_COLUMNS}
    texts = {}
    for k, rows in tables.items():
        buf = io.StringIO()
        w = csv.DictWriter(buf, fieldnames=columns[k], lineterminator="\n")
        w.writeheader()
        w.writerows(csv_row(r) for r in rows)  # no cell a spreadsheet would run as a formula
        texts[k] = buf.getvalue()
    out = Path(out_dir)
    paths = {}
    try:
        out.mkdir(parents=True, exist_ok=True)
        for k, text in texts.items():
            p = out / f"{k.lower()}.csv"
            tmp = p.with_name(p.name + ".part")
            tmp.write_text(text, encoding="utf-8")
            tmp.replace(p)
            paths[k] = str(p)
    except OSError as exc:
        raise FileFormatError(out, f"cannot write SDTM files: {exc.strerror or exc}") from None
    return {"studies": codes, "files": paths, "rows": {k: len(v) for k, v in tables.items()}}


# ----------------------------------------------------------------------------- analytics

def _protocol_with_outcome(session: Session, outcome_code: str,
                           protocol_code: str | None) -> tuple[ClinicalProtocol, Protocol]:
    if protocol_code is not None:
        record, protocol = get_protocol(session, protocol_code)
        protocol.outcome(outcome_code)
        return record, protocol
    found = []
    for code in sorted({r.code for r in crepo.protocol_versions(session)}):
        record, protocol = get_protocol(session, code)
        if any(o.code == outcome_code for o in protocol.outcomes):
            found.append((record, protocol))
    if not found:
        raise NotFound(f"no stored protocol measures outcome {outcome_code!r}")
    if len(found) > 1:
        raise InvalidInput(f"outcome {outcome_code} is in protocols "
                           f"{', '.join(r.code for r, _ in found)}; give --protocol")
    return found[0]


def _fit(rows, attributes, outcome_code):
    import numpy as np

    try:
        return lot_outcome_model(rows, attributes=attributes, outcome_code=outcome_code)
    except np.linalg.LinAlgError as exc:
        # statsmodels fails this way when the few lots leave the model unidentifiable
        raise InsufficientData(f"the mixed model of {outcome_code} on {', '.join(attributes)} "
                               f"cannot be fitted ({exc}); too few lots or subjects") from None


def clinic_report(session: Session, outcome_code: str, *, protocol_code: str | None = None,
                  plot_dir: str | Path | None = None) -> dict:
    """Responder rates by arm, the safety table and the lot-to-outcome mixed model.

    The model regresses change from baseline of ``outcome_code`` on the
    attributes of the lot each subject last received before the visit
    (purity in particles/ug, mode diameter in nm, potency where measured),
    with a random intercept per subject. It describes association only.

    Returns
    -------
    dict
        ``protocol``, ``outcome``, ``responders`` (or a note), ``safety``,
        ``lot_outcome_model`` (or why it could not be fitted), ``statement``,
        ``plot`` (path) when ``plot_dir`` is given.
    """
    record, protocol = _protocol_with_outcome(session, outcome_code, protocol_code)
    outcome = protocol.outcome(outcome_code)
    enrolments = crepo.all_enrolments(session, record.id)
    points, subject_events = [], []
    subjects_by_arm: dict[str, list[str]] = {a.code: [] for a in protocol.arms}
    lot_by_visit: dict[tuple[str, str], str] = {}
    lot_ids: set[int] = set()
    lot_numbers: dict[int, str] = {}
    for enrolment, subject, _ in enrolments:
        subjects_by_arm.setdefault(enrolment.arm_code, []).append(subject.code)
        admins = crepo.subject_administrations(session, subject.id)
        for o in crepo.observations_of(session, subject.id):
            points.append(OutcomePoint(subject.code, enrolment.arm_code, o.outcome_code,
                                       o.visit_name, (o.observed_on - enrolment.enrolled_on).days,
                                       o.value))
            before = [a for a in admins if a.administered_at.date() <= o.observed_on]
            if before:
                lot_by_visit[(subject.code, o.visit_name)] = str(before[-1].lot_id)
                lot_ids.add(before[-1].lot_id)
        for e in crepo.adverse_events_of(session, subject.id):
            subject_events.append(SubjectAdverseEvent(subject.code, enrolment.arm_code,
                                                      _ae_model(e)))
    result: dict = {"protocol": record.code, "outcome": {"code": outcome.code,
                                                         "name": outcome.name,
                                                         "unit": outcome.unit},
                    "subjects": sum(len(v) for v in subjects_by_arm.values())}
    if outcome.responder is not None:
        result["responders"] = [{f: getattr(r, f) for f in r.__dataclass_fields__}
                                for r in responder_rates(protocol, points, outcome.code,
                                                         subjects_by_arm=subjects_by_arm)]
    else:
        result["responders"] = f"outcome {outcome.code} has no responder definition"
    result["safety"] = [{f: getattr(r, f) for f in r.__dataclass_fields__}
                        for r in safety_table(subject_events)]
    names = list(LOT_ATTRIBUTE_NAMES)
    values = crepo.latest_measurements(session, sorted(lot_ids), names)
    for lot_id in lot_ids:
        lot_numbers[lot_id] = session.get(Lot, lot_id).number
    lot_attributes = {str(i): {LOT_ATTRIBUTE_NAMES[a]: values[(i, a)] for a in names
                               if (i, a) in values} for i in lot_ids}
    usable = [LOT_ATTRIBUTE_NAMES[a] for a in names
              if lot_attributes and all(LOT_ATTRIBUTE_NAMES[a] in v for v in lot_attributes.values())
              and len({v[LOT_ATTRIBUTE_NAMES[a]] for v in lot_attributes.values()}) > 1]
    model_part: dict = {"attributes": usable, "lots": sorted(lot_numbers.values())}
    try:
        if not usable:
            raise InsufficientData("no lot attribute is measured on every lot and varies "
                                   "between lots")
        rows = lot_outcome_rows(protocol, points, outcome.code, lot_by_subject_visit=lot_by_visit,
                                lot_attributes=lot_attributes)
        rows = [LotOutcomeRow(r.subject_id, r.change, r.attributes,
                              lot_numbers[int(r.lot_id)]) for r in rows]
        try:
            model = _fit(rows, usable, outcome.code)
        except InsufficientData as exc:
            # Few lots make attributes collinear: fall back to the first that fits alone.
            model = None
            for name in usable if len(usable) > 1 else ():
                try:
                    model = _fit(rows, [name], outcome.code)
                except InsufficientData:
                    continue
                model_part["attributes"] = [name]
                model_part["note"] = f"{exc}; fitted {name} alone"
                break
            if model is None:
                raise
        model_part.update({f: getattr(model, f) for f in model.__dataclass_fields__})
    except InsufficientData as exc:
        model_part["not_fitted"] = str(exc)
    result["lot_outcome_model"] = model_part
    result["statement"] = ASSOCIATION_STATEMENT
    if plot_dir is not None and points:
        out = Path(plot_dir)
        try:
            out.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise FileFormatError(out, f"cannot create folder: {exc.strerror or exc}") from None
        result["plot"] = str(plot_trajectories(points, outcome.code,
                                               out / f"{record.code}-{outcome.code}.png",
                                               protocol=protocol))
    return result


# ----------------------------------------------------------------------------- demo


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
    improve by 10 % at week 4). Lots the demo needs are released through the
    records state machine with a QA signature if not already released.

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
