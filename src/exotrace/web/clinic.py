"""Clinic pages: subjects, a subject's timeline, the bedside administration, adverse event and
observation forms, dose decisions, follow-up due and recall (with a CSV download).

Every page reads or writes through the clinic services of :mod:`exotrace.records`
(the same the CLI's ``subject``, ``administer``, ``ae``, ``observe``, ``dose``,
``followup`` and ``recall`` commands call). A refused write re-renders its
form with the service's message and a 4xx status; nothing is written, since
the unit of work rolled back.

The bedside page works in two steps: *Check* (a GET that evaluates every
check of the administration without writing, :func:`exotrace.records.administration_check`)
and *Confirm administration* (a POST that calls
:func:`exotrace.records.administer`, which runs the same checks again).
"""

from __future__ import annotations

import csv
import io
from datetime import date, datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Form, Path, Query, Request
from fastapi.responses import RedirectResponse, Response

from .._text import csv_row
from ..api._context import Context, context
from ..errors import ExotraceError, InvalidInput, http_status_for
from ..records import Permission
from ._render import render

__all__ = ["RECALL_CSV_COLUMNS", "recall_csv_text", "router", "timeline"]

router = APIRouter(include_in_schema=False)

VIEW = context(Permission.VIEW)
CLINICAL = context(Permission.RECORD_CLINICAL)

#: Messages after a saved form (fixed texts: nothing a user typed is echoed through the URL).
_SAVED = {"administration": "Administration recorded.", "ae": "Adverse event recorded.",
          "observation": "Observation recorded.", "decision": "Dose decision recorded."}
RECALL_KINDS = {"donor": "Donor", "cell_bank": "Cell bank", "lot": "Lot",
                "reagent_batch": "Reagent batch"}
RECALL_CSV_COLUMNS = ["subject", "protocol", "arm", "vial", "lot", "administered_at", "dose",
                      "dose_unit", "particles", "volume_ml", "administration_id"]

#: No control characters in a code: they match nothing, and PostgreSQL refuses NUL in a query.
PRINTABLE = r"^[^\x00-\x1f\x7f]*$"
Text64 = Annotated[str, Form(max_length=64, pattern=PRINTABLE)]
Short = Annotated[str, Form(max_length=40, pattern=PRINTABLE)]
CodePath = Annotated[str, Path(max_length=64, pattern=PRINTABLE)]
CodeQuery = Annotated[str, Query(max_length=64, pattern=PRINTABLE)]
ShortQuery = Annotated[str, Query(max_length=40, pattern=PRINTABLE)]


# ----------------------------------------------------------------------------- parsing

def _int(value: str | None, label: str, *, low: int, high: int) -> int | None:
    if value is None or not value.strip():
        return None
    try:
        number = int(value.strip())
    except ValueError:
        raise InvalidInput(f"{label} {value!r}: give a whole number") from None
    if not low <= number <= high:
        raise InvalidInput(f"{label} {number}: give a number from {low} to {high}")
    return number


def _float(value: str | None, label: str) -> float | None:
    if value is None or not value.strip():
        return None
    try:
        number = float(value.strip())
    except ValueError:
        raise InvalidInput(f"{label} {value!r}: give a number") from None
    if number != number or number in (float("inf"), float("-inf")):
        raise InvalidInput(f"{label} {value!r}: give a finite number")
    return number


def _day(value: str | None, label: str) -> date | None:
    if value is None or not value.strip():
        return None
    try:
        return date.fromisoformat(value.strip())
    except ValueError:
        raise InvalidInput(f"{label} {value!r}: give a day as YYYY-MM-DD") from None


def _time(value: str | None, label: str) -> datetime | None:
    if value is None or not value.strip():
        return None
    try:
        at = datetime.fromisoformat(value.strip())
    except ValueError:
        raise InvalidInput(f"{label} {value!r}: give an ISO time such as "
                           "2025-06-01T10:30+02:00") from None
    if at.tzinfo is None:
        raise InvalidInput(f"{label} {value!r} has no time zone; add one (e.g. Z or +02:00)")
    return at


# ----------------------------------------------------------------------------- timeline

#: Where an entry known only by its day sorts among that day's timed administrations: a
#: (baseline) outcome before them, an adverse event and the proposal it caused after them.
_DAY_ONLY_POSITION = {"observation": "", "adverse_event": "~", "dose_decision": "~"}
_KIND_ORDER = {"administration": 0, "observation": 1, "adverse_event": 2, "dose_decision": 3}


def timeline(view: dict) -> list[dict]:
    """A subject's administrations, outcomes, adverse events and dose proposals, oldest first.

    Each entry: ``when`` (date or datetime), ``kind`` and the view dict ``item``
    it came from (from :func:`exotrace.records.subject_view` with ``detail``).
    """
    entries = []
    for kind, key, items in (("administration", "administered_at", view.get("administrations")),
                             ("observation", "observed_on", view.get("observations")),
                             ("adverse_event", "onset", view.get("adverse_events")),
                             ("dose_decision", "evaluated_on", view.get("dose_decisions"))):
        for item in items or []:
            entries.append({"when": item[key], "kind": kind, "item": item})

    def key(e: dict) -> tuple:
        when = e["when"]
        if isinstance(when, datetime):
            return (when.date(), when.time().isoformat(), _KIND_ORDER[e["kind"]])
        return (when, _DAY_ONLY_POSITION[e["kind"]], _KIND_ORDER[e["kind"]])

    entries.sort(key=key)
    return entries


def _subject_detail(session, code: str) -> dict:
    from ..records import subject_form_choices, subject_view

    return {"view": subject_view(session, code, detail=True),
            "choices": subject_form_choices(session, code)}


def _subject_page(request: Request, ctx: Context, code: str, *, status: int = 200,
                  **extra) -> Response:
    data = ctx.read(lambda s, user: _subject_detail(s, code))
    view = data["view"]
    pending = [d for d in view.get("dose_decisions") or [] if d["status"] == "proposed"]
    return render(request, "clinic/subject.html", status=status, subject=view,
                  choices=data["choices"], events=timeline(view),
                  pending=pending[-1] if pending else None,
                  may_record=ctx.principal.can(Permission.RECORD_CLINICAL), **extra)


# ----------------------------------------------------------------------------- subjects

#: Subjects per page of the subjects list.
SUBJECTS_PER_PAGE = 25


@router.get("/clinic")
def subjects_page(request: Request, protocol: CodeQuery = "",
                  page: Annotated[int, Query(ge=1, le=100_000)] = 1,
                  ctx: Context = Depends(VIEW)) -> Response:
    from ..records import subjects_page as page_of

    found = ctx.read(lambda s, user: page_of(
        s, protocol_code=protocol.strip() or None, offset=(page - 1) * SUBJECTS_PER_PAGE,
        limit=SUBJECTS_PER_PAGE))
    pages = max(1, -(-found["total"] // SUBJECTS_PER_PAGE))
    return render(request, "clinic/subjects.html", rows=found["subjects"],
                  total=found["total"], page=page, pages=pages, protocol=protocol,
                  may_record=ctx.principal.can(Permission.RECORD_CLINICAL))


@router.get("/clinic/subjects/{code}")
def subject_page(request: Request, code: CodePath, saved: ShortQuery = "",
                 ctx: Context = Depends(VIEW)) -> Response:
    return _subject_page(request, ctx, code, message=_SAVED.get(saved))


@router.post("/clinic/subjects/{code}/dose-decision")
def dose_decision(request: Request, code: CodePath, decision: Short = "",
                  level: Short = "", reason: Annotated[str, Form(max_length=500)] = "",
                  ctx: Context = Depends(CLINICAL)) -> Response:
    from ..records import decide_dose

    try:
        if decision not in ("accept", "override"):
            raise InvalidInput("choose Accept or Override")
        chosen = _int(level, "level", low=1, high=100)
        ctx.write(lambda s, user: decide_dose(s, user, code, accept=decision == "accept",
                                              level=chosen, reason=reason or None))
    except ExotraceError as exc:
        return _subject_page(request, ctx, code, status=http_status_for(exc),
                             decision_error=str(exc), reason=reason)
    return RedirectResponse(f"/clinic/subjects/{code}?saved=decision#decisions", status_code=303)


# ----------------------------------------------------------------------------- AE, observation

def _form_choices(ctx: Context, code: str) -> dict:
    from ..records import subject_form_choices

    return ctx.read(lambda s, user: subject_form_choices(s, code))


@router.get("/clinic/subjects/{code}/adverse-events/new")
def ae_form(request: Request, code: CodePath, ctx: Context = Depends(CLINICAL)) -> Response:
    return render(request, "clinic/ae_form.html", choices=_form_choices(ctx, code), form={})


@router.post("/clinic/subjects/{code}/adverse-events")
def ae_add(request: Request, code: CodePath,
           term: Annotated[str, Form(max_length=200)] = "", grade: Short = "",
           serious: Short = "", relatedness: Text64 = "", onset: Short = "",
           outcome: Text64 = "", resolved: Short = "", expected: Short = "",
           awareness: Short = "",
           criterion: Annotated[list[str], Form()] = [],  # noqa: B006 (FastAPI copies defaults)
           ctx: Context = Depends(CLINICAL)) -> Response:
    from ..records import add_adverse_event

    form = {"term": term, "grade": grade, "serious": bool(serious), "relatedness": relatedness,
            "onset": onset, "outcome": outcome, "resolved": resolved,
            "expected": bool(expected), "awareness": awareness, "criteria": criterion}
    try:
        grade_n = _int(grade, "CTCAE grade", low=1, high=5)
        if grade_n is None:
            raise InvalidInput("CTCAE grade is required (1-5)")
        onset_on = _day(onset, "onset")
        if onset_on is None:
            raise InvalidInput("onset day is required")
        resolved_on, awareness_on = _day(resolved, "resolved"), _day(awareness, "awareness")
        if len(criterion) > 6 or any(len(c) > 40 for c in criterion):
            raise InvalidInput("seriousness criteria: at most 6, each at most 40 characters")
        ctx.write(lambda s, user: add_adverse_event(
            s, user, code, term=term, grade=grade_n, serious=bool(serious),
            relatedness=relatedness, onset_on=onset_on, criteria=criterion,
            outcome=outcome or None, resolved_on=resolved_on, expected=bool(expected),
            awareness_on=awareness_on))
    except ExotraceError as exc:
        return render(request, "clinic/ae_form.html", status=http_status_for(exc),
                      choices=_form_choices(ctx, code), form=form, error=str(exc))
    return RedirectResponse(f"/clinic/subjects/{code}?saved=ae", status_code=303)


@router.get("/clinic/subjects/{code}/observations/new")
def observation_form(request: Request, code: CodePath, ctx: Context = Depends(CLINICAL)) -> Response:
    return render(request, "clinic/observation_form.html", choices=_form_choices(ctx, code),
                  form={})


@router.post("/clinic/subjects/{code}/observations")
def observation_add(request: Request, code: CodePath, visit: Text64 = "", outcome: Text64 = "",
                    value: Short = "", unit: Short = "", observed_on: Short = "",
                    ctx: Context = Depends(CLINICAL)) -> Response:
    from ..records import record_observation

    form = {"visit": visit, "outcome": outcome, "value": value, "unit": unit,
            "observed_on": observed_on}
    try:
        number = _float(value, "value")
        if number is None:
            raise InvalidInput("value is required")
        day = _day(observed_on, "day measured")
        ctx.write(lambda s, user: record_observation(
            s, user, code, visit=visit, outcome=outcome, value=number, unit=unit,
            observed_on=day))
    except ExotraceError as exc:
        return render(request, "clinic/observation_form.html", status=http_status_for(exc),
                      choices=_form_choices(ctx, code), form=form, error=str(exc))
    return RedirectResponse(f"/clinic/subjects/{code}?saved=observation", status_code=303)


# ----------------------------------------------------------------------------- bedside

def _administer_args(level: str, dose: str, at: str, weight_kg: str) -> dict:
    return {"level": _int(level, "dose level", low=1, high=100),
            "dose_amount": _float(dose, "dose"), "at": _time(at, "time given"),
            "body_weight_kg": _float(weight_kg, "body weight (kg)")}


def _administer_page(request: Request, ctx: Context, form: dict, *, status: int = 200,
                     check: dict | None = None, error: str | None = None) -> Response:
    from ..records import enrolled_subject_codes

    codes = ctx.read(lambda s, user: enrolled_subject_codes(s))
    return render(request, "clinic/administer.html", status=status, form=form, check=check,
                  error=error, subject_codes=codes)


@router.get("/clinic/administer")
def administer_page(request: Request, subject: CodeQuery = "", vial: CodeQuery = "",
                    level: ShortQuery = "", dose: ShortQuery = "", at: ShortQuery = "",
                    weight_kg: ShortQuery = "", site: CodeQuery = "",
                    ctx: Context = Depends(CLINICAL)) -> Response:
    """The bedside form; with a subject and a vial, every check (nothing written)."""
    from ..records import administration_check

    form = {"subject": subject, "vial": vial, "level": level, "dose": dose, "at": at,
            "weight_kg": weight_kg, "site": site}
    if not subject.strip() or not vial.strip():
        return _administer_page(request, ctx, form)
    try:
        args = _administer_args(level, dose, at, weight_kg)
        check = ctx.read(lambda s, user: administration_check(
            s, user, subject_code=subject.strip(), vial_identifier=vial, site=site or None,
            **args))
    except ExotraceError as exc:
        return _administer_page(request, ctx, form, status=http_status_for(exc), error=str(exc))
    return _administer_page(request, ctx, form, check=check)


@router.post("/clinic/administer")
def administer_confirm(request: Request, subject: Text64 = "", vial: Text64 = "",
                       level: Short = "", dose: Short = "", at: Short = "",
                       weight_kg: Short = "", site: Text64 = "",
                       ctx: Context = Depends(CLINICAL)) -> Response:
    """Record the administration (the service runs every check again)."""
    from ..records import administer, administration_check

    form = {"subject": subject, "vial": vial, "level": level, "dose": dose, "at": at,
            "weight_kg": weight_kg, "site": site}
    try:
        args = _administer_args(level, dose, at, weight_kg)
        ctx.write(lambda s, user: administer(s, user, subject_code=subject.strip(),
                                             vial_identifier=vial, site=site or None, **args))
    except ExotraceError as exc:
        check = None
        try:
            check = ctx.read(lambda s, user: administration_check(
                s, user, subject_code=subject.strip(), vial_identifier=vial, site=site or None,
                **_administer_args(level, dose, at, weight_kg)))
        except ExotraceError:
            pass
        return _administer_page(request, ctx, form, status=http_status_for(exc), check=check,
                                error=str(exc))
    return RedirectResponse(f"/clinic/subjects/{subject.strip()}?saved=administration",
                            status_code=303)


# ----------------------------------------------------------------------------- follow-up, recall

@router.get("/clinic/followup")
def followup_page(request: Request, as_of: ShortQuery = "",
                  horizon_days: Annotated[int, Query(ge=0, le=3650)] = 14,
                  ctx: Context = Depends(VIEW)) -> Response:
    from ..records import followup_due

    try:
        day = _day(as_of, "as of")
        rows = ctx.read(lambda s, user: followup_due(s, as_of=day, horizon_days=horizon_days))
    except ExotraceError as exc:
        return render(request, "clinic/followup.html", status=http_status_for(exc), rows=[],
                      as_of=as_of, horizon_days=horizon_days, error=str(exc))
    return render(request, "clinic/followup.html", rows=rows, as_of=as_of,
                  horizon_days=horizon_days)


def _recall(ctx: Context, kind: str, key: str) -> dict:
    from ..records import recall

    if kind not in RECALL_KINDS:
        raise InvalidInput(f"recall by {kind!r}: choose donor, cell bank, lot or reagent batch")
    if not key.strip():
        raise InvalidInput(f"give the {RECALL_KINDS[kind].lower()} code")
    arg = {"donor": "donor_code", "cell_bank": "cell_bank_code", "lot": "lot_number",
           "reagent_batch": "reagent_code"}[kind]
    return ctx.read(lambda s, user: recall(s, **{arg: key.strip()}))


@router.get("/clinic/recall")
def recall_page(request: Request, kind: ShortQuery = "donor", key: CodeQuery = "",
                ctx: Context = Depends(VIEW)) -> Response:
    result, error, status = None, None, 200
    if key.strip():
        try:
            result = _recall(ctx, kind, key)
        except ExotraceError as exc:
            error, status = str(exc), http_status_for(exc)
    return render(request, "clinic/recall.html", status=status, kinds=RECALL_KINDS, kind=kind,
                  key=key, result=result, error=error)


def recall_csv_text(result: dict) -> str:
    """The administrations of a :func:`exotrace.records.recall` result as CSV text.

    Cells starting with ``= + - @`` (or a tab or line break) get a leading
    apostrophe, as in every CSV exotrace writes, so a spreadsheet never runs them.
    """
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=RECALL_CSV_COLUMNS, extrasaction="ignore",
                            lineterminator="\r\n")
    writer.writeheader()
    for row in result["administrations"]:
        cells = {k: (v.isoformat() if isinstance(v, (date, datetime)) else v)
                 for k, v in row.items()}
        writer.writerow(csv_row(cells))
    return buffer.getvalue()


@router.get("/clinic/recall.csv")
def recall_csv(kind: ShortQuery = "donor", key: CodeQuery = "",
               ctx: Context = Depends(VIEW)) -> Response:
    """The administrations a recall reaches, as a CSV download."""
    text = recall_csv_text(_recall(ctx, kind, key))
    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in key.strip())[:64]
    return Response(text, media_type="text/csv; charset=utf-8",
                    headers={"Content-Disposition":
                             f'attachment; filename="recall-{kind}-{safe}.csv"'})
