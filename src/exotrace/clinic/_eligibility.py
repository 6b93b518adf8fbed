"""Administration guard: may this vial go into this subject today, at this dose?

Pure: the records layer gathers the facts (vial, lot, donor and subject
consent, enrolment, computed dose) and calls :func:`check_administration`
before writing anything. The first failed check raises with a one-line
reason; :func:`administration_refusals` lists all of them for a screen.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime

from ..errors import ConsentError, RuleViolation
from ._dose import DoseComputation
from ._protocol import Arm, Protocol

__all__ = ["AdministrationFacts", "AdministrationRefusal", "administration_refusals",
           "check_administration", "check_entry_criteria"]

RELEASED = "released"
_USABLE_VIAL_STATES = ("available", "reserved")


@dataclass(frozen=True)
class AdministrationFacts:
    """What must be true before an administration, as plain values.

    Parameters
    ----------
    vial_id : str
        The vial scanned or entered.
    lot_number : str
        Its lot.
    lot_status : str
        Lot state in the release workflow (only ``"released"`` may be given).
    lot_expiry_date : datetime.date or None
        Last day of use; ``None`` (unknown) is refused.
    product_type : str
        Product type of the lot (e.g. ``"msc-ev"``).
    donor_consent_valid : bool
        The donor's consent covers this use and is not withdrawn.
    subject_consent_valid : bool
        The subject's study consent is signed and not withdrawn.
    arm : Arm
        The arm the subject is enrolled in.
    dose : DoseComputation
        The dose computed for this administration (checked against the
        maximum when it was computed; its arm must be ``arm``).
    administration_date : datetime.date
        Day of administration.
    vial_status : str, optional
        ``"available"`` or ``"reserved"`` may be used; anything else (used,
        discarded, quarantined) is refused.
    administered_at : datetime.datetime, optional
        Time of administration (time zone-aware). When given, it must lie at
        or after ``lot_released_at`` (a released lot without a release time is
        refused) and ``vial_filled_at``: a backdated administration cannot
        reach a time when the lot was not yet released or still in date.
    lot_released_at, vial_filled_at : datetime.datetime, optional
        When the lot was (last) released and the vial filled.
    """

    vial_id: str
    lot_number: str
    lot_status: str
    lot_expiry_date: date | None
    product_type: str
    donor_consent_valid: bool
    subject_consent_valid: bool
    arm: Arm
    dose: DoseComputation
    administration_date: date
    vial_status: str = "available"
    administered_at: datetime | None = None
    lot_released_at: datetime | None = None
    vial_filled_at: datetime | None = None


@dataclass(frozen=True)
class AdministrationRefusal:
    """One reason to refuse, with the exception class that carries it."""

    check: str
    reason: str
    consent: bool = False

    def error(self) -> RuleViolation:
        return (ConsentError if self.consent else RuleViolation)(self.reason)


def administration_refusals(facts: AdministrationFacts) -> tuple[AdministrationRefusal, ...]:
    """Every reason ``facts`` forbid the administration (empty when allowed).

    Consent problems come first, then the lot, the vial, the product and the dose.
    """
    f = facts
    out: list[AdministrationRefusal] = []
    if not f.subject_consent_valid:
        out.append(AdministrationRefusal(
            "subject consent", f"vial {f.vial_id}: the subject's study consent is missing or "
            "withdrawn; record valid consent before any administration", consent=True))
    if not f.donor_consent_valid:
        out.append(AdministrationRefusal(
            "donor consent", f"vial {f.vial_id}: lot {f.lot_number} comes from a donor whose "
            "consent is withdrawn or does not cover this use", consent=True))
    if str(f.lot_status).strip().lower() != RELEASED:
        out.append(AdministrationRefusal(
            "lot status", f"vial {f.vial_id}: lot {f.lot_number} is {f.lot_status!r}, not "
            "released by QA"))
    if f.administered_at is not None and str(f.lot_status).strip().lower() == RELEASED:
        if f.lot_released_at is None:
            out.append(AdministrationRefusal(
                "release time", f"vial {f.vial_id}: lot {f.lot_number} has no recorded release "
                "time; release it through the release workflow"))
        elif f.administered_at < f.lot_released_at:
            out.append(AdministrationRefusal(
                "release time", f"vial {f.vial_id}: administration at "
                f"{f.administered_at.isoformat()} is before lot {f.lot_number} was released "
                f"({f.lot_released_at.isoformat()})"))
    if f.lot_expiry_date is None:
        out.append(AdministrationRefusal(
            "expiry", f"vial {f.vial_id}: lot {f.lot_number} has no expiry date"))
    elif f.administration_date > f.lot_expiry_date:
        days = (f.administration_date - f.lot_expiry_date).days
        out.append(AdministrationRefusal(
            "expiry", f"vial {f.vial_id}: lot {f.lot_number} expired on "
            f"{f.lot_expiry_date.isoformat()} ({days} day{'s' if days != 1 else ''} ago)"))
    if (f.administered_at is not None and f.vial_filled_at is not None
            and f.administered_at < f.vial_filled_at):
        out.append(AdministrationRefusal(
            "fill time", f"vial {f.vial_id}: administration at {f.administered_at.isoformat()} "
            f"is before the vial was filled ({f.vial_filled_at.isoformat()})"))
    if str(f.vial_status).strip().lower() not in _USABLE_VIAL_STATES:
        out.append(AdministrationRefusal(
            "vial status", f"vial {f.vial_id} is {f.vial_status!r}; only an available vial "
            "can be administered"))
    if f.product_type not in f.arm.product_types:
        out.append(AdministrationRefusal(
            "product", f"vial {f.vial_id}: product {f.product_type!r} is not allowed in arm "
            f"{f.arm.code} (allowed: {', '.join(f.arm.product_types)})"))
    if f.dose.arm_code != f.arm.code or f.dose.dose_unit is not f.arm.dose_unit:
        out.append(AdministrationRefusal(
            "dose", f"vial {f.vial_id}: dose was computed for arm {f.dose.arm_code} in "
            f"{f.dose.dose_unit.value}, but the subject is in arm {f.arm.code} "
            f"({f.arm.dose_unit.value})"))
    elif f.dose.dose_amount > f.arm.maximum_dose * (1 + 1e-12):
        out.append(AdministrationRefusal(
            "dose", f"vial {f.vial_id}: dose {f.dose.dose_amount:.4g} {f.arm.dose_unit.value} "
            f"exceeds the arm {f.arm.code} maximum {f.arm.maximum_dose:.4g}"))
    return tuple(out)


def check_administration(facts: AdministrationFacts) -> None:
    """Raise on the first reason the administration is not allowed; return ``None`` if allowed.

    Raises
    ------
    ConsentError
        Subject or donor consent missing or withdrawn.
    RuleViolation
        Lot not released or expired, administration before the release or the
        fill, vial not available, wrong product, dose above the protocol
        maximum or computed for another arm.
    """
    refusals = administration_refusals(facts)
    if refusals:
        raise refusals[0].error()


def check_entry_criteria(protocol: Protocol, baseline_values: Mapping[str, float]) -> None:
    """Check the protocol's measurable entry criteria against baseline values.

    Parameters
    ----------
    protocol : Protocol
    baseline_values : mapping of str to float
        ``{outcome_code: value}`` in the protocol's units (e.g. ``{"LVEF": 35.0}``).

    Raises
    ------
    RuleViolation
        A value is missing or outside an entry criterion (e.g. LVEF 45 % when
        the protocol requires <= 40 %). The free-text eligibility notes are
        for the investigator and are not checked here.
    """
    for c in protocol.eligibility.entry_criteria:
        unit = protocol.outcome(c.outcome).unit
        value = baseline_values.get(c.outcome)
        if value is None or not math.isfinite(value):
            raise RuleViolation(f"protocol {protocol.id}: entry needs a baseline {c.outcome} "
                                f"value ({unit}); none given")
        if c.max is not None and value > c.max:
            raise RuleViolation(f"protocol {protocol.id}: baseline {c.outcome} {value:g} {unit} is "
                                f"above the entry maximum {c.max:g} {unit}")
        if c.min is not None and value < c.min:
            raise RuleViolation(f"protocol {protocol.id}: baseline {c.outcome} {value:g} {unit} is "
                                f"below the entry minimum {c.min:g} {unit}")
