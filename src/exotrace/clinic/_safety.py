"""Adverse events: CTCAE grade, relatedness, ICH E2A seriousness and expedited-report clocks.

Seriousness and grade are different axes: CTCAE grade says how severe an
event is (1 mild ... 5 death); ICH E2A seriousness says what it did to the
person (death, life-threatening, hospitalisation, disability, congenital
anomaly, other important medical event). A grade 3 rash is severe but need
not be serious; grade 5 always is (death).

References
----------
.. [1] ICH E2A, Clinical Safety Data Management: Definitions and Standards for
   Expedited Reporting (1994), sections II.B and III.A.
.. [2] NCI Common Terminology Criteria for Adverse Events (CTCAE) v5.0 (2017).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, timedelta
from enum import StrEnum

from ..errors import InvalidInput

__all__ = [
    "AdverseEvent",
    "AEOutcome",
    "ExpeditedReport",
    "Relatedness",
    "SeriousnessCriterion",
    "expedited_reporting",
]


class Relatedness(StrEnum):
    """Causality assessment of an adverse event against the study product."""

    NOT_RELATED = "not related"
    UNLIKELY = "unlikely"
    POSSIBLE = "possible"
    PROBABLE = "probable"
    DEFINITE = "definite"

    @property
    def rank(self) -> int:
        """0 (not related) ... 4 (definite)."""
        return list(Relatedness).index(self)

    @property
    def is_related(self) -> bool:
        """ICH E2A "reasonable possibility" of a causal relationship (possible or stronger)."""
        return self.rank >= Relatedness.POSSIBLE.rank


class SeriousnessCriterion(StrEnum):
    """ICH E2A criteria that make an adverse event serious."""

    DEATH = "death"
    LIFE_THREATENING = "life-threatening"
    HOSPITALISATION = "hospitalisation"
    DISABILITY = "disability"
    CONGENITAL_ANOMALY = "congenital anomaly"
    IMPORTANT_MEDICAL_EVENT = "important medical event"


class AEOutcome(StrEnum):
    """Outcome of an adverse event (CDISC SDTM AEOUT terms, lower case)."""

    RECOVERED = "recovered/resolved"
    RECOVERING = "recovering/resolving"
    NOT_RECOVERED = "not recovered/not resolved"
    RECOVERED_WITH_SEQUELAE = "recovered/resolved with sequelae"
    FATAL = "fatal"
    UNKNOWN = "unknown"


def _enum(kind, value, name: str):
    if isinstance(value, kind):
        return value
    try:
        return kind(str(value).strip().lower())
    except ValueError:
        allowed = ", ".join(repr(v.value) for v in kind)
        raise InvalidInput(f"{name} {value!r} is not one of {allowed}") from None


@dataclass(frozen=True)
class AdverseEvent:
    """One adverse event of one subject.

    Parameters
    ----------
    term : str
        Verbatim term (e.g. "injection site erythema").
    grade : int
        CTCAE v5 grade, 1 (mild) to 5 (death).
    onset_date : datetime.date
        First day of the event.
    relatedness : Relatedness or str
        Causality against the study product.
    seriousness : frozenset of SeriousnessCriterion, optional
        ICH E2A criteria met; empty means not serious. Grade 5 adds ``death``.
    resolution_date : datetime.date, optional
        Day the event resolved; ``None`` while ongoing.
    outcome : AEOutcome or str, optional
        Outcome; grade 5 requires ``fatal`` (or ``unknown``, then set to fatal).
    expected : bool, optional
        Listed in the reference safety information (investigator's brochure).
        Default ``False`` so an unassessed event is treated as unexpected.
    ae_id : str, optional
        Record identifier (for reports and exports).
    awareness_date : datetime.date, optional
        Day the sponsor first knew of the event; the reporting clocks start
        here. ``None`` means the onset date.
    """

    term: str
    grade: int
    onset_date: date
    relatedness: Relatedness
    seriousness: frozenset[SeriousnessCriterion] = field(default_factory=frozenset)
    resolution_date: date | None = None
    outcome: AEOutcome = AEOutcome.UNKNOWN
    expected: bool = False
    ae_id: str = ""
    awareness_date: date | None = None

    def __post_init__(self) -> None:
        where = f"adverse event {self.ae_id or self.term!r}"
        if not str(self.term).strip():
            raise InvalidInput(f"{where}: term must not be empty")
        if isinstance(self.grade, bool) or not isinstance(self.grade, int) or not 1 <= self.grade <= 5:
            raise InvalidInput(f"{where}: CTCAE grade must be an integer 1-5, got {self.grade!r}")
        if not isinstance(self.onset_date, date):
            raise InvalidInput(f"{where}: onset date must be a date, got {self.onset_date!r}")
        object.__setattr__(self, "relatedness",
                           _enum(Relatedness, self.relatedness, f"{where}: relatedness"))
        object.__setattr__(self, "outcome", _enum(AEOutcome, self.outcome, f"{where}: outcome"))
        criteria = frozenset(_enum(SeriousnessCriterion, c, f"{where}: seriousness criterion")
                             for c in self.seriousness)
        if self.grade == 5:
            # CTCAE grade 5 is death: serious by definition, and the outcome is fatal.
            if self.outcome not in (AEOutcome.FATAL, AEOutcome.UNKNOWN):
                raise InvalidInput(f"{where}: grade 5 (death) needs outcome 'fatal', "
                                   f"got {self.outcome.value!r}")
            object.__setattr__(self, "outcome", AEOutcome.FATAL)
            criteria |= {SeriousnessCriterion.DEATH}
        elif self.outcome is AEOutcome.FATAL:
            raise InvalidInput(f"{where}: outcome 'fatal' needs CTCAE grade 5, got {self.grade}")
        object.__setattr__(self, "seriousness", criteria)
        if self.resolution_date is not None and self.resolution_date < self.onset_date:
            raise InvalidInput(f"{where}: resolution date {self.resolution_date} is before "
                               f"onset {self.onset_date}")
        if self.awareness_date is not None and self.awareness_date < self.onset_date:
            raise InvalidInput(f"{where}: awareness date {self.awareness_date} is before "
                               f"onset {self.onset_date}")

    @property
    def serious(self) -> bool:
        """True when any ICH E2A seriousness criterion is met."""
        return bool(self.seriousness)

    @property
    def is_related(self) -> bool:
        """True for a reasonable possibility of causality (possible, probable, definite)."""
        return self.relatedness.is_related

    def ongoing_on(self, day: date) -> bool:
        """True when the event had started and not yet resolved on ``day``."""
        return self.onset_date <= day and (self.resolution_date is None
                                           or self.resolution_date > day)


@dataclass(frozen=True)
class ExpeditedReport:
    """Whether and by when an adverse event must be reported to regulators.

    Attributes
    ----------
    ae_id : str
        The event's identifier.
    serious : bool
        Any ICH E2A criterion met.
    expedited : bool
        A suspected unexpected serious adverse reaction (SUSAR): serious,
        related (reasonable possibility) and unexpected.
    clock_days : int or None
        7 calendar days for fatal or life-threatening SUSARs, 15 for other
        SUSARs, ``None`` when no expedited report is due.
    due_date : datetime.date or None
        ``awareness_date`` (or onset) + ``clock_days``.
    investigator_due_date : datetime.date or None
        Serious events go from investigator to sponsor immediately (ICH E6
        4.11.1); taken as within 1 day of awareness.
    reason : str
        One line in words.
    """

    ae_id: str
    serious: bool
    expedited: bool
    clock_days: int | None
    due_date: date | None
    investigator_due_date: date | None
    reason: str


def expedited_reporting(event: AdverseEvent) -> ExpeditedReport:
    """Classify an adverse event for expedited reporting (ICH E2A section III).

    Parameters
    ----------
    event : AdverseEvent
        The event, with seriousness, relatedness and expectedness assessed.

    Returns
    -------
    ExpeditedReport
        Serious events are flagged; serious + related + unexpected events
        (SUSARs) get a 7-day (fatal or life-threatening) or 15-day clock from
        first awareness.
    """
    start = event.awareness_date or event.onset_date
    if not event.serious:
        return ExpeditedReport(event.ae_id, False, False, None, None, None,
                               f"not serious (CTCAE grade {event.grade}): routine reporting")
    criteria = ", ".join(sorted(c.value for c in event.seriousness))
    investigator_due = start + timedelta(days=1)
    if not event.is_related:
        return ExpeditedReport(event.ae_id, True, False, None, None, investigator_due,
                               f"serious ({criteria}) but not related "
                               f"({event.relatedness.value}): no expedited report")
    if event.expected:
        return ExpeditedReport(event.ae_id, True, False, None, None, investigator_due,
                               f"serious ({criteria}), related but expected: "
                               "no expedited report")
    fatal = event.seriousness & {SeriousnessCriterion.DEATH, SeriousnessCriterion.LIFE_THREATENING}
    days = 7 if fatal else 15
    return ExpeditedReport(event.ae_id, True, True, days, start + timedelta(days=days),
                           investigator_due,
                           f"SUSAR ({criteria}; {event.relatedness.value}; unexpected): "
                           f"report within {days} calendar days of {start.isoformat()}")
