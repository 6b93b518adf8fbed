"""The release workflow as JSON under ``/api/v1``: evaluation, results, submission,
verification, QA release, rejection, quarantine and OOS investigations.

The shapes are those of the CLI's ``--json`` (``exotrace lot evaluate|verify|release|
reject|quarantine|result add``, ``exotrace oos list|close``). Signing endpoints
(verify, release, reject, quarantine) take the signer's password in the body and
need a browser session: an API token never signs (401).
"""

from __future__ import annotations

import math
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query
from pydantic import BaseModel, ConfigDict, Field, field_validator

from ..records import Permission
from ._context import Context, context

__all__ = ["LotNumber", "RecordText", "router"]

router = APIRouter(prefix="/api/v1", tags=["release"])

#: No control characters (PostgreSQL refuses NUL in text; none belongs in an identifier).
_PRINTABLE = r"^[^\x00-\x1f\x7f]+$"
#: A lot number in a path: 422 for what no lot number can be, before any query.
LotNumber = Annotated[str, Path(min_length=1, max_length=64, pattern=_PRINTABLE)]
#: An investigation id in a path (``OOS-12`` or ``12``): at most 9 digits, so it fits the
#: key column on every backend (a larger number is a 422 here, not an overflow in the driver).
InvestigationId = Annotated[str, Path(min_length=1, max_length=13,
                                      pattern=r"^(?:[Oo][Oo][Ss]-)?[0-9]{1,9}$")]
#: Free text of a query string.
RecordText = Annotated[str | None, Query(max_length=64, pattern=_PRINTABLE)]

_Text = Annotated[str, Field(max_length=2000)]


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class SubmitBody(_Body):
    reason: _Text | None = None


class SignBody(_Body):
    password: Annotated[str, Field(min_length=1, max_length=1024)]


class ReleaseBody(SignBody):
    reason: _Text | None = None


class DispositionBody(SignBody):
    reason: Annotated[str, Field(min_length=1, max_length=2000)]


class CloseBody(_Body):
    conclusion: Annotated[str, Field(max_length=32,
                                     description="lab_error, confirmed_oos or inconclusive")]
    summary: Annotated[str, Field(min_length=1, max_length=4000)]
    phase: Annotated[str, Field(max_length=16, description="phase_I or phase_II")] = "phase_I"


class ResultBody(_Body):
    test: Annotated[str, Field(min_length=1, max_length=64)]
    value: float | Annotated[str, Field(min_length=1, max_length=64)] = Field(
        description="A number (with unit) or a word: negative, present, absent, ...")
    unit: Annotated[str, Field(max_length=32)] | None = None
    method: Annotated[str, Field(max_length=200)] | None = None
    retest_of: Annotated[str, Field(max_length=16,
                                    description="Original result id (R3, M12)")] | None = None

    @field_validator("value")
    @classmethod
    def _finite(cls, v):
        if isinstance(v, float) and not math.isfinite(v):
            raise ValueError("must be a finite number")
        return v


class SignatureOut(BaseModel):
    id: int
    printed_name: str
    meaning: str
    signed_at: datetime


class SpecRef(BaseModel):
    name: str
    version: str


class VerificationOut(BaseModel):
    lot: str
    release_state: str
    verification: int
    conclusion: str
    specification: SpecRef
    signature: SignatureOut


class DispositionOut(BaseModel):
    lot: str
    status: str
    disposition: int
    action: str
    reason: str
    conclusion: str | None
    specification: SpecRef | None
    signature: SignatureOut


class LotSummaryOut(BaseModel):
    model_config = ConfigDict(extra="allow")
    number: str
    status: str


class InvestigationOut(BaseModel):
    id: str
    lot: str | None
    test: str
    original_result: str
    retest_result: str | None
    phase: str
    conclusion: str
    summary: str | None
    opened_by: str | None
    opened_at: datetime | None
    closed_by: str | None
    closed_at: datetime | None


class ResultOut(BaseModel):
    id: str
    lot: str
    test: str
    value: float | None
    unit: str | None
    qualitative: str | None
    retest_of: str | None
    opened_investigation: str | None


@router.get("/lots/{number}/evaluation")
def evaluation(number: LotNumber, ctx: Context = Depends(context(Permission.VIEW))) -> dict:
    """The lot evaluated against its specification in force (read only; as
    ``exotrace lot evaluate --json``): ``conclusion``, per-test outcomes, OOS flags,
    open investigations."""
    from ..records import evaluate_lot

    return ctx.read(lambda s, user: evaluate_lot(s, number))


@router.post("/lots/{number}/results", response_model=ResultOut, status_code=201)
def add_result(number: LotNumber, body: ResultBody,
               ctx: Context = Depends(context(Permission.ENTER_RESULTS))) -> ResultOut:
    """Enter a release-test result (as ``exotrace lot result add``); an out-of-specification
    result opens an OOS investigation (``opened_investigation``)."""
    from ..records import add_quality_result

    def add(s, user):
        r, opened = add_quality_result(s, user, number, test=body.test, value=body.value,
                                       unit=body.unit, method=body.method,
                                       retest_of=body.retest_of)
        return ResultOut(id=f"R{r.id}", lot=number, test=r.test, value=r.value, unit=r.unit,
                         qualitative=r.qualitative, retest_of=r.retest_of,
                         opened_investigation=f"OOS-{opened.id}" if opened else None)

    return ctx.write(add)


@router.post("/lots/{number}/submit", response_model=LotSummaryOut)
def submit(number: LotNumber, body: SubmitBody | None = None,
           ctx: Context = Depends(context(Permission.CHANGE_LOT_STATUS))) -> dict:
    """Send a lot with results to ``awaiting_release`` (as ``exotrace lot submit``)."""
    from ..records import lot_summary, submit_for_release

    reason = body.reason if body else None
    return ctx.write(lambda s, user: lot_summary(s, submit_for_release(s, user, number,
                                                                       reason=reason)))


@router.post("/lots/{number}/verify", response_model=VerificationOut)
def verify(number: LotNumber, body: SignBody,
           ctx: Context = Depends(context(Permission.REVIEW))) -> dict:
    """Second-person verification, signed with meaning *review* ("I have verified these
    results").

    Signing needs a browser session and the signer's password in the body: an API
    token is refused (401), as are a user who entered results of the lot (403), a
    wrong role (403) and a wrong password (401, counted towards the lock-out).
    """
    from ..records import verify_lot

    ctx.require_can_sign()
    return ctx.write(lambda s, user: verify_lot(s, user, body.password, number))


@router.post("/lots/{number}/release", response_model=DispositionOut)
def release(number: LotNumber, body: ReleaseBody,
            ctx: Context = Depends(context(Permission.APPROVE))) -> dict:
    """QA release, signed with meaning *approval*.

    Signing needs a browser session and the password in the body: an API token is
    refused (401). Refused (422) before verification, with an open OOS investigation,
    for an expired or non-complying lot; refused (403) to the verifier and to whoever
    produced the lot's data.
    """
    from ..records import release_lot

    ctx.require_can_sign()
    return ctx.write(lambda s, user: release_lot(s, user, body.password, number,
                                                 reason=body.reason))


@router.post("/lots/{number}/reject", response_model=DispositionOut)
def reject(number: LotNumber, body: DispositionBody,
           ctx: Context = Depends(context(Permission.APPROVE))) -> dict:
    """QA rejection of a verified or quarantined lot (reason required), signed with
    meaning *approval*. Needs a browser session and the password: an API token is
    refused (401)."""
    from ..records import reject_lot

    ctx.require_can_sign()
    return ctx.write(lambda s, user: reject_lot(s, user, body.password, number,
                                                reason=body.reason))


@router.post("/lots/{number}/quarantine", response_model=DispositionOut)
def quarantine(number: LotNumber, body: DispositionBody,
               ctx: Context = Depends(context(Permission.APPROVE))) -> dict:
    """QA quarantine of a lot with results (reason required), signed with meaning
    *approval*. Needs a browser session and the password: an API token is refused
    (401)."""
    from ..records import quarantine_lot

    ctx.require_can_sign()
    return ctx.write(lambda s, user: quarantine_lot(s, user, body.password, number,
                                                    reason=body.reason))


@router.get("/investigations", response_model=list[InvestigationOut])
def investigations(lot: RecordText = None,
                   open_only: Annotated[bool, Query(alias="open")] = False,
                   ctx: Context = Depends(context(Permission.VIEW))) -> list[dict]:
    """OOS investigations (as ``exotrace oos list --json``), of one lot and/or open only."""
    from ..records import list_investigation_views

    return ctx.read(lambda s, user: list_investigation_views(s, lot_number=lot,
                                                             open_only=open_only))


@router.post("/investigations/{investigation}/close", response_model=InvestigationOut)
def close(investigation: InvestigationId, body: CloseBody,
          ctx: Context = Depends(context(Permission.APPROVE))) -> dict:
    """Close an OOS investigation (QA; as ``exotrace oos close``). ``lab_error`` needs the
    linked retest; the original result is never changed."""
    from ..records import close_investigation, describe_investigation

    return ctx.write(lambda s, user: describe_investigation(s, close_investigation(
        s, user, investigation, conclusion=body.conclusion, phase=body.phase,
        summary=body.summary)))
