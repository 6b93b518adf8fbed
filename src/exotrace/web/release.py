"""The release workflow of one lot in the browser: ``/lots/{number}/release``.

The page shows the evaluation against the specification in force, the
results, the OOS investigations and every signature with its manifestation;
its forms enter a result or a reference value (the label claim), evaluate
(opening OOS investigations), submit for release, verify (second person,
signature *review*), release, reject or quarantine (QA, signature *approval*)
and close an investigation.

Each form posts to its own route, guarded by the permission of the step; the
services apply every rule (segregation of duties, expiry, OOS). A refusal
re-renders the page with the service's message and the error's status, and
nothing is written (the unit of work rolled back). A success redirects back to
the page (post/redirect/get), which then shows the new signature's
manifestation.
"""

from __future__ import annotations

from typing import Annotated
from urllib.parse import quote, urlencode

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import RedirectResponse, Response

from ..api._context import Context, context
from ..api.v1_release import InvestigationId, LotNumber
from ..errors import ExotraceError, http_status_for
from ..records import Permission
from ._render import render, render_error

__all__ = ["router"]

router = APIRouter(include_in_schema=False)

#: Notices after a successful step (keys travel in the redirect, never user text).
DONE = {
    "result": "Result entered.",
    "reference": "Reference value recorded.",
    "result-oos": "Result entered; it is out of specification and an OOS investigation "
                  "was opened.",
    "evaluated": "Evaluated against the specification in force.",
    "evaluated-oos": "Evaluated against the specification in force; OOS investigations were "
                     "opened for the out-of-specification results.",
    "submitted": "Submitted for verification and QA disposition.",
    "verify": "Results verified and signed.",
    "release": "Lot released and signed.",
    "reject": "Lot rejected and signed.",
    "quarantine": "Lot quarantined and signed.",
    "closed": "OOS investigation closed.",
}

Password = Annotated[str, Form(max_length=1024)]
Reason = Annotated[str, Form(max_length=2000)]


def _page_path(number: str) -> str:
    return f"/lots/{quote(number, safe='')}/release"


def _done(number: str, key: str, signature: int | None = None) -> RedirectResponse:
    query = {"done": key}
    if signature is not None:
        query["signature"] = str(signature)
    return RedirectResponse(f"{_page_path(number)}?{urlencode(query)}", status_code=303)


def _overview(ctx: Context, number: str) -> dict:
    from ..records import lot_release_overview

    return ctx.read(lambda s, user: lot_release_overview(s, number))


def _page(request: Request, ctx: Context, number: str, *, status: int = 200,
          error: str | None = None, done: str | None = None,
          signature: int | None = None) -> Response:
    from ..records import SIGNING_STATEMENTS

    view = _overview(ctx, number)
    signed = next((s for s in view["signatures"] if s["id"] == signature), None)
    return render(request, "release/lot.html", status=status, number=number,
                  page_path=_page_path(number), error=error, message=DONE.get(done or ""),
                  signed=signed, statements=SIGNING_STATEMENTS, **view)


def _refused(request: Request, ctx: Context, number: str, exc: ExotraceError) -> Response:
    """The page again with the refusal as its message (nothing was written)."""
    status = http_status_for(exc)
    try:
        return _page(request, ctx, number, status=status, error=str(exc))
    except ExotraceError:  # the lot itself is missing: a plain error page
        return render_error(request, status, str(exc))


def _run(request: Request, ctx: Context, number: str, fn, *, reason: str | None = None,
         sign: bool = False):
    """``fn(session, user)`` as the signed-in user; the response on refusal, else (result, None)."""
    try:
        if sign:
            ctx.require_can_sign()
        return ctx.write(fn, reason=reason), None
    except ExotraceError as exc:
        return None, _refused(request, ctx, number, exc)


@router.get("/lots/{number}/release")
def release_page(request: Request, number: LotNumber, done: str | None = None,
                 signature: int | None = None,
                 ctx: Context = Depends(context(Permission.VIEW))) -> Response:
    return _page(request, ctx, number, done=done, signature=signature)


@router.post("/lots/{number}/release/results")
def enter_result(request: Request, number: LotNumber,
                 test: Annotated[str, Form(min_length=1, max_length=64)],
                 value: Annotated[str, Form(min_length=1, max_length=64)],
                 unit: Annotated[str, Form(max_length=32)] = "",
                 method: Annotated[str, Form(max_length=200)] = "",
                 retest_of: Annotated[str, Form(max_length=16)] = "",
                 ctx: Context = Depends(context(Permission.ENTER_RESULTS))) -> Response:
    from ..records import add_quality_result

    def add(s, user):
        _, opened = add_quality_result(s, user, number, test=test.strip(), value=value.strip(),
                                       unit=unit.strip() or None, method=method.strip() or None,
                                       retest_of=retest_of.strip() or None)
        return opened is not None

    opened, refused = _run(request, ctx, number, add)
    return refused or _done(number, "result-oos" if opened else "result")


@router.post("/lots/{number}/release/reference")
def record_reference(request: Request, number: LotNumber,
                     value: Annotated[str, Form(min_length=1, max_length=40)],
                     unit: Annotated[str, Form(min_length=1, max_length=32)],
                     name: Annotated[str, Form(min_length=1, max_length=64)] = "label_claim",
                     ctx: Context = Depends(context(Permission.ENTER_RESULTS))) -> Response:
    """A reference value of the lot (e.g. the label claim a relative criterion is judged
    against), as ``exotrace lot reference``."""
    from ..errors import InvalidInput
    from ..records import set_reference_value

    def record(s, user):
        try:
            number_value = float(value)
        except ValueError:
            raise InvalidInput(f"reference value {name}: {value!r} is not a number") from None
        return set_reference_value(s, user, number, name.strip(), number_value, unit.strip()).id

    _, refused = _run(request, ctx, number, record)
    return refused or _done(number, "reference")


@router.post("/lots/{number}/release/evaluate")
def evaluate(request: Request, number: LotNumber,
             ctx: Context = Depends(context(Permission.VIEW))) -> Response:
    """Evaluate as the signed-in user: who may enter, review or approve results opens the
    missing OOS investigations (the service decides); anyone else only reads."""
    from ..records import evaluate_lot

    out, refused = _run(request, ctx, number,
                        lambda s, user: evaluate_lot(s, number, user=user))
    return refused or _done(number, "evaluated-oos" if out["opened_investigations"]
                            else "evaluated")


@router.post("/lots/{number}/release/submit")
def submit(request: Request, number: LotNumber, reason: Reason = "",
           ctx: Context = Depends(context(Permission.CHANGE_LOT_STATUS))) -> Response:
    from ..records import submit_for_release

    _, refused = _run(request, ctx, number, lambda s, user: submit_for_release(
        s, user, number, reason=reason.strip() or None))
    return refused or _done(number, "submitted")


@router.post("/lots/{number}/release/verify")
def verify(request: Request, number: LotNumber, password: Password,
           ctx: Context = Depends(context(Permission.REVIEW))) -> Response:
    from ..records import verify_lot

    out, refused = _run(request, ctx, number,
                        lambda s, user: verify_lot(s, user, password, number), sign=True)
    return refused or _done(number, "verify", out["signature"]["id"])


@router.post("/lots/{number}/release/release")
def release(request: Request, number: LotNumber, password: Password, reason: Reason = "",
            ctx: Context = Depends(context(Permission.APPROVE))) -> Response:
    from ..records import release_lot

    out, refused = _run(request, ctx, number, lambda s, user: release_lot(
        s, user, password, number, reason=reason.strip() or None), sign=True)
    return refused or _done(number, "release", out["signature"]["id"])


@router.post("/lots/{number}/release/reject")
def reject(request: Request, number: LotNumber, password: Password, reason: Reason = "",
           ctx: Context = Depends(context(Permission.APPROVE))) -> Response:
    from ..records import reject_lot

    out, refused = _run(request, ctx, number, lambda s, user: reject_lot(
        s, user, password, number, reason=reason), sign=True)
    return refused or _done(number, "reject", out["signature"]["id"])


@router.post("/lots/{number}/release/quarantine")
def quarantine(request: Request, number: LotNumber, password: Password, reason: Reason = "",
               ctx: Context = Depends(context(Permission.APPROVE))) -> Response:
    from ..records import quarantine_lot

    out, refused = _run(request, ctx, number, lambda s, user: quarantine_lot(
        s, user, password, number, reason=reason), sign=True)
    return refused or _done(number, "quarantine", out["signature"]["id"])


@router.post("/lots/{number}/release/investigations/{investigation}/close")
def close(request: Request, number: LotNumber, investigation: InvestigationId,
          conclusion: Annotated[str, Form(max_length=32)],
          summary: Annotated[str, Form(max_length=4000)],
          phase: Annotated[str, Form(max_length=16)] = "phase_I",
          ctx: Context = Depends(context(Permission.APPROVE))) -> Response:
    from ..records import close_lot_investigation

    _, refused = _run(request, ctx, number, lambda s, user: close_lot_investigation(
        s, user, number, investigation, conclusion=conclusion, phase=phase, summary=summary))
    return refused or _done(number, "closed")
