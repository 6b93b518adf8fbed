"""Clinic API under ``/api/v1``: subjects, administrations (and their read-only check),
adverse events, observations, dose decisions, follow-up due and recall.

Answers are the JSON the CLI prints with ``--json`` for the same command
(``subject list|show``, ``administer``, ``ae add``, ``observe``, ``dose
accept|override``, ``followup due``, ``recall``). Writes need the
``record_clinical`` permission (clinicians) and are audited as the caller;
reads need ``view``. Request bodies are validated with limits: bad input is a
422 problem document and nothing is written.
"""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Path, Query
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from ..cli._common import to_jsonable
from ..errors import InvalidInput
from ..records import Permission
from ._context import Context, context

__all__ = ["router"]

router = APIRouter(prefix="/api/v1", tags=["clinic"])

VIEW = context(Permission.VIEW)
CLINICAL = context(Permission.RECORD_CLINICAL)

#: No control characters in a code: they match nothing, and PostgreSQL refuses NUL in a query.
PRINTABLE = r"^[^\x00-\x1f\x7f]*$"
Code = Annotated[str, Field(min_length=1, max_length=64, pattern=PRINTABLE)]
CodePath = Annotated[str, Path(max_length=64, pattern=PRINTABLE)]
CodeQuery = Annotated[str | None, Query(max_length=64, pattern=PRINTABLE)]
Finite = Annotated[float, Field(allow_inf_nan=False)]
Json = dict[str, Any]


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class AdministrationIn(_Body):
    """One vial given to one subject (``exotrace administer``)."""

    subject: Code = Field(description="Subject code (pseudonym).")
    vial: Code = Field(description="Vial identifier as scanned or typed (with its check character).")
    level: int | None = Field(None, ge=1, le=100, description="Dose level (default: in effect).")
    dose: Finite | None = Field(None, gt=0, description="Dose off the level list, arm's unit.")
    at: AwareDatetime | None = Field(None, description="Time given, with time zone (default now).")
    site: str | None = Field(None, max_length=64, description="Body site.")
    weight_kg: Finite | None = Field(None, gt=0, le=500, description="Body weight today, kg.")

    def arguments(self) -> dict:
        return {"subject_code": self.subject, "vial_identifier": self.vial, "at": self.at,
                "level": self.level, "dose_amount": self.dose, "site": self.site,
                "body_weight_kg": self.weight_kg}


class AdverseEventIn(_Body):
    """An adverse event (``exotrace ae add``): CTCAE v5 grade, ICH E2A seriousness."""

    subject: Code
    term: str = Field(min_length=1, max_length=200, description="Verbatim term.")
    grade: int = Field(ge=1, le=5, description="CTCAE v5 grade 1-5.")
    serious: bool
    relatedness: Literal["not related", "unlikely", "possible", "probable", "definite"]
    onset: date
    criteria: list[Annotated[str, Field(max_length=40)]] = Field(
        default_factory=list, max_length=6, description="Seriousness criteria (ICH E2A).")
    outcome: str | None = Field(None, max_length=40)
    resolved: date | None = None
    expected: bool = False
    awareness: date | None = Field(None, description="Day the sponsor learnt of it.")


class ObservationIn(_Body):
    """An outcome value at a protocol visit (``exotrace observe``)."""

    subject: Code
    visit: Code
    outcome: Code
    value: Finite
    unit: str = Field(min_length=1, max_length=40, description="Unit of the value as measured.")
    observed_on: date | None = Field(None, description="Day measured (default today).")


class DoseDecisionIn(_Body):
    """Accept the pending dose proposal, or override it with a level and a reason."""

    decision: Literal["accept", "override"]
    level: int | None = Field(None, ge=1, le=100, description="Level to give (override).")
    reason: str | None = Field(None, max_length=500, description="Why (required to override).")
    on: date | None = Field(None, description="Day of an override with no pending proposal.")


class CheckLine(BaseModel):
    """One check of an administration and its verdict (``ok`` null: not reached)."""

    check: str
    label: str
    ok: bool | None
    detail: str


class AdministrationCheckOut(BaseModel):
    """Every check of an administration, evaluated without writing anything."""

    subject: str
    vial: str = Field(description="The identifier as read (upper case, no spaces or hyphens).")
    lot: str | None
    allowed: bool
    refusal: str | None = Field(description="What the administration would be refused with.")
    checks: list[CheckLine]
    administration: Json | None = Field(
        description="What would be recorded (slot, level, dose, particles, volume_ml, ...).")


@router.get("/subjects", response_model=list[Json])
def subjects(protocol: CodeQuery = None,
             offset: Annotated[int, Query(ge=0, le=10**9)] = 0,
             limit: Annotated[int, Query(ge=1, le=1000)] = 500,
             ctx: Context = Depends(VIEW)) -> list[Json]:
    """Enrolled subjects with arm, dose level in effect and consent state, sorted by code
    (the rows of ``subject list --json``), ``limit`` from ``offset``."""
    from ..records import subjects_page

    return to_jsonable(ctx.read(lambda s, user: subjects_page(
        s, protocol_code=protocol, offset=offset, limit=limit)["subjects"]))


@router.get("/subjects/{code}", response_model=Json)
def subject(code: CodePath, ctx: Context = Depends(VIEW)) -> Json:
    """A subject with administrations, observations, adverse events and dose decisions."""
    from ..records import subject_view

    return to_jsonable(ctx.read(lambda s, user: subject_view(s, code, detail=True)))


@router.post("/administrations", status_code=201, response_model=Json)
def administer(body: AdministrationIn, ctx: Context = Depends(CLINICAL)) -> Json:
    """Give a vial to a subject after every check (vial, lot, consent, product, dose)."""
    from ..records import administer as give
    from ..records import administration_view

    return to_jsonable(ctx.write(lambda s, user: administration_view(
        s, give(s, user, **body.arguments()))))


@router.post("/administrations/check", response_model=AdministrationCheckOut)
def administration_check(body: AdministrationIn,
                         ctx: Context = Depends(CLINICAL)) -> AdministrationCheckOut:
    """Every check of an administration, evaluated without writing anything."""
    from ..records import administration_check as check

    return AdministrationCheckOut(**to_jsonable(
        ctx.read(lambda s, user: check(s, user, **body.arguments()))))


@router.post("/adverse-events", status_code=201, response_model=Json)
def adverse_event(body: AdverseEventIn, ctx: Context = Depends(CLINICAL)) -> Json:
    """Record an adverse event; serious ones are flagged; the next dose is proposed."""
    from ..records import add_adverse_event, adverse_event_view, decision_view

    def write(s, user):
        row, report, decision = add_adverse_event(
            s, user, body.subject, term=body.term, grade=body.grade, serious=body.serious,
            relatedness=body.relatedness, onset_on=body.onset, criteria=body.criteria,
            outcome=body.outcome, resolved_on=body.resolved, expected=body.expected,
            awareness_on=body.awareness)
        return {"adverse_event": adverse_event_view(row), "reporting": report,
                "dose_decision": decision_view(decision)}

    return to_jsonable(ctx.write(write))


@router.post("/observations", status_code=201, response_model=Json)
def observation(body: ObservationIn, ctx: Context = Depends(CLINICAL)) -> Json:
    """Record an outcome value at a visit (unit and window checked); propose the next dose."""
    from ..records import decision_view, observation_view, record_observation

    def write(s, user):
        obs, decision = record_observation(s, user, body.subject, visit=body.visit,
                                           outcome=body.outcome, value=body.value,
                                           unit=body.unit, observed_on=body.observed_on)
        return {"observation": observation_view(obs), "dose_decision": decision_view(decision)}

    return to_jsonable(ctx.write(write))


@router.post("/subjects/{code}/dose-decision", response_model=Json)
def dose_decision(code: CodePath, body: DoseDecisionIn, ctx: Context = Depends(CLINICAL)) -> Json:
    """Accept the pending proposal, or override it (or the decision in effect)."""
    from ..records import decide_dose, decision_view

    return to_jsonable(ctx.write(lambda s, user: decision_view(decide_dose(
        s, user, code, accept=body.decision == "accept", level=body.level, reason=body.reason,
        on=body.on))))


@router.get("/followup/due", response_model=list[Json])
def followup(as_of: date | None = None,
             horizon_days: Annotated[int, Query(ge=0, le=3650)] = 14,
             ctx: Context = Depends(VIEW)) -> list[Json]:
    """Visits overdue, due now, or coming up within ``horizon_days``, for every subject."""
    from ..records import followup_due

    return to_jsonable(ctx.read(lambda s, user: followup_due(s, as_of=as_of,
                                                             horizon_days=horizon_days)))


@router.get("/recall", response_model=Json)
def recall(donor: CodeQuery = None, cell_bank: CodeQuery = None, lot: CodeQuery = None,
           reagent_batch: CodeQuery = None,
           ctx: Context = Depends(VIEW)) -> Json:
    """Every subject and administration affected by one donor, cell bank, lot or reagent batch."""
    from ..records import recall as find

    given = [v for v in (donor, cell_bank, lot, reagent_batch) if v]
    if len(given) != 1:
        raise InvalidInput("recall needs exactly one of donor, cell_bank, lot, reagent_batch")
    return to_jsonable(ctx.read(lambda s, user: find(
        s, donor_code=donor, cell_bank_code=cell_bank, lot_number=lot,
        reagent_code=reagent_batch)))
