"""Plain records handed to the FHIR and SDTM exporters.

The records layer fills these from the database; the exporters know nothing
else. Identifiers are the records' own (stable) ids, from which exports derive
deterministic UUIDs, so the same data always gives the same file.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

from ..errors import InvalidInput
from ._protocol import Protocol, Route
from ._safety import AdverseEvent

__all__ = [
    "AdministrationRecord",
    "AdverseEventRecord",
    "ConsentRecord",
    "ExportData",
    "LotRecord",
    "ObservationRecord",
    "SubjectRecord",
    "VialRecord",
]

_SEXES = ("F", "M", "U", "UNDIFFERENTIATED")


@dataclass(frozen=True)
class SubjectRecord:
    """A pseudonymized study subject.

    Parameters
    ----------
    subject_id : str
        Pseudonym (never a name); SDTM SUBJID.
    arm_code : str
        Arm enrolled in.
    enrolment_date : datetime.date
    sex : str, optional
        ``F``, ``M``, ``U`` (unknown) or ``UNDIFFERENTIATED``.
    age_years : int, optional
        Age at enrolment, years.
    site_id : str, optional
        Study site.
    """

    subject_id: str
    arm_code: str
    enrolment_date: date
    sex: str = "U"
    age_years: int | None = None
    site_id: str = ""

    def __post_init__(self) -> None:
        if self.sex not in _SEXES:
            raise InvalidInput(f"subject {self.subject_id}: sex {self.sex!r} is not one of {_SEXES}")
        if self.age_years is not None and not 0 <= self.age_years <= 130:
            raise InvalidInput(f"subject {self.subject_id}: age {self.age_years} years is implausible")


@dataclass(frozen=True)
class ConsentRecord:
    """A subject's study consent (separate from donor consent).

    ``withdrawn_on`` set means the consent is withdrawn from that day.
    """

    consent_id: str
    subject_id: str
    signed_on: date
    scope: str = "participation in the study and use of coded data"
    withdrawn_on: date | None = None


@dataclass(frozen=True)
class LotRecord:
    """A lot of EV product with its donor (the biological source event).

    Parameters
    ----------
    lot_id, lot_number : str
    product_type : str
    donor_code : str
        Pseudonymous donor code.
    status : str
        Release state (``"released"`` ...).
    expiry_date : datetime.date, optional
    particles_per_ml : float, optional
    """

    lot_id: str
    lot_number: str
    product_type: str
    donor_code: str
    status: str = "released"
    expiry_date: date | None = None
    particles_per_ml: float | None = None


@dataclass(frozen=True)
class VialRecord:
    """A vial filled from a lot."""

    vial_id: str
    lot_id: str


@dataclass(frozen=True)
class AdministrationRecord:
    """One administration of one vial to one subject.

    Parameters
    ----------
    administration_id, subject_id, vial_id : str
    administered_at : datetime.datetime
        Time zone-aware.
    dose_amount : float
        As prescribed, in ``dose_unit`` (protocol unit).
    dose_unit : str
        ``particles``, ``particles/kg`` or ``ug protein``.
    particles : float
        Total particles given.
    volume_ml : float
        Volume administered, mL.
    route : Route
    performer : str, optional
        Operator (user name or pseudonym).
    """

    administration_id: str
    subject_id: str
    vial_id: str
    administered_at: datetime
    dose_amount: float
    dose_unit: str
    particles: float
    volume_ml: float
    route: Route
    performer: str = ""

    def __post_init__(self) -> None:
        if self.administered_at.tzinfo is None:
            raise InvalidInput(f"administration {self.administration_id}: time must be time "
                               "zone-aware")


@dataclass(frozen=True)
class ObservationRecord:
    """An outcome value at a visit, in the protocol's unit."""

    observation_id: str
    subject_id: str
    outcome_code: str
    visit_name: str
    value: float
    unit: str
    observed_on: date


@dataclass(frozen=True)
class AdverseEventRecord:
    """An adverse event of a subject, optionally linked to the suspect administration."""

    subject_id: str
    event: AdverseEvent
    administration_id: str | None = None

    @property
    def ae_id(self) -> str:
        return self.event.ae_id


@dataclass(frozen=True)
class ExportData:
    """Everything one study export contains.

    ``protocol`` supplies the study identity, arms and outcome definitions
    (LOINC codes, units). Every record's foreign keys must resolve; the
    exporters check that and name the dangling reference.
    """

    protocol: Protocol
    subjects: tuple[SubjectRecord, ...] = ()
    consents: tuple[ConsentRecord, ...] = ()
    lots: tuple[LotRecord, ...] = ()
    vials: tuple[VialRecord, ...] = ()
    administrations: tuple[AdministrationRecord, ...] = ()
    observations: tuple[ObservationRecord, ...] = ()
    adverse_events: tuple[AdverseEventRecord, ...] = ()
    study_status: str = "active"

    def check_references(self) -> None:
        """Raise InvalidInput naming the first record whose reference does not resolve."""
        arms = {a.code for a in self.protocol.arms}
        outcomes = {o.code for o in self.protocol.outcomes}
        subjects = {s.subject_id for s in self.subjects}
        lots = {lot.lot_id for lot in self.lots}
        vials = {v.vial_id for v in self.vials}
        admins = {a.administration_id for a in self.administrations}
        for kind, ids in (("subject", [s.subject_id for s in self.subjects]),
                          ("consent", [c.consent_id for c in self.consents]),
                          ("lot", [lot.lot_id for lot in self.lots]),
                          ("vial", [v.vial_id for v in self.vials]),
                          ("administration", [a.administration_id for a in self.administrations]),
                          ("observation", [o.observation_id for o in self.observations]),
                          ("adverse event", [e.ae_id for e in self.adverse_events])):
            if any(not i for i in ids):
                raise InvalidInput(f"a {kind} record has an empty id")
            dupes = sorted({i for i in ids if ids.count(i) > 1})
            if dupes:
                raise InvalidInput(f"{kind} ids repeat: {dupes[:5]}")
        for s in self.subjects:
            if s.arm_code not in arms:
                raise InvalidInput(f"subject {s.subject_id}: arm {s.arm_code!r} is not in "
                                   f"protocol {self.protocol.id}")
        checks = [(f"consent {c.consent_id}", "subject", c.subject_id, subjects) for c in self.consents]
        checks += [(f"vial {v.vial_id}", "lot", v.lot_id, lots) for v in self.vials]
        for a in self.administrations:
            checks += [(f"administration {a.administration_id}", "subject", a.subject_id, subjects),
                       (f"administration {a.administration_id}", "vial", a.vial_id, vials)]
        for o in self.observations:
            checks += [(f"observation {o.observation_id}", "subject", o.subject_id, subjects),
                       (f"observation {o.observation_id}", "outcome", o.outcome_code, outcomes)]
        for e in self.adverse_events:
            checks.append((f"adverse event {e.ae_id}", "subject", e.subject_id, subjects))
            if e.administration_id is not None:
                checks.append((f"adverse event {e.ae_id}", "administration", e.administration_id,
                               admins))
        for where, kind, ref, known in checks:
            if ref not in known:
                raise InvalidInput(f"{where}: {kind} {ref!r} is not in the export")
