"""Clinic commands on the database: protocols, subjects, administrations, AEs, observations,
dose decisions, follow-up, recall, FHIR/SDTM export and the clinic report.

Each command opens one unit of work (commit on success, rollback on any
error, so a refusal leaves nothing written) and calls one service function
of :mod:`exotrace.records`. Writing commands need ``--user`` (a clinician).
"""

from __future__ import annotations

from datetime import date, datetime
from pathlib import Path
from typing import Annotated

import typer

from ..errors import InvalidInput
from ._common import JsonOption, console, emit, print_table
from ._records import UserOption, parse_date, records_session
from .clinic import _show_human, protocol_app

__all__ = ["register"]

SubjectOpt = Annotated[str, typer.Option("--subject", help="Subject code (pseudonym).")]
ProtocolOpt = Annotated[str | None, typer.Option(
    "--protocol", help="One study (default: every study with subjects).")]
ReasonOpt = Annotated[str | None, typer.Option("--reason", help="Why (required for overrides).")]


def _datetime(value: str | None, option: str) -> datetime | None:
    if value is None:
        return None
    try:
        at = datetime.fromisoformat(value)
    except ValueError:
        raise InvalidInput(f"{option} {value!r}: give an ISO time such as "
                           "2025-06-01T10:30+02:00") from None
    if at.tzinfo is None:
        raise InvalidInput(f"{option} {value!r} has no time zone; add one (e.g. Z or +02:00)")
    return at


def _baseline(items: list[str] | None) -> dict[str, tuple[float, str | None]]:
    out: dict[str, tuple[float, str | None]] = {}
    for item in items or []:
        code, sep, rest = item.partition("=")
        value, _, unit = rest.partition(":")
        try:
            number = float(value)
        except ValueError:
            number = None
        if not sep or not code or number is None:
            raise InvalidInput(f"--baseline {item!r}: write OUTCOME=VALUE or OUTCOME=VALUE:UNIT "
                               "(e.g. LVEF=35 or NTPROBNP=1.9:ng/mL)")
        out[code.strip()] = (number, unit.strip() or None)
    return out


def _decision_line(d: dict) -> str:
    level = f" -> level {d['proposed_level']}" if d["proposed_level"] is not None else ""
    return f"dose proposal {d['id']} [{d['status']}]: {d['action']}{level} ({d['reason']})"


def _register_protocol_commands() -> None:
    # ``protocol show`` of cli/clinic.py reads files only; replace it by one that reads a
    # file or, given a protocol id, the version stored in the database.
    protocol_app.registered_commands[:] = [c for c in protocol_app.registered_commands
                                           if c.name != "show"]

    @protocol_app.command("show")
    def show(
        protocol: Annotated[str, typer.Argument(help="Protocol id in the database, or a YAML file.",
                                                show_default=False)],
        version: Annotated[str | None, typer.Option("--version", help="Stored version.")] = None,
        as_json: JsonOption = False,
    ) -> None:
        """Display a protocol: from a YAML file, or by id from the database."""
        from ..clinic import load_protocol
        from ..records import get_protocol, protocol_record_view

        path = Path(protocol)
        if path.suffix.lower() in (".yaml", ".yml") or path.is_file():
            model, stored = load_protocol(path), None
        else:
            with records_session(None, write=False) as (session, _):
                record, model = get_protocol(session, protocol, version)
                stored = protocol_record_view(record)
        if as_json:
            data = model.model_dump(mode="json")
            if stored:
                data["stored"] = stored
            emit(data, as_json=True)
            return
        if stored:
            console.print(f"[dim]stored version {stored['version']}, SHA-256 "
                          f"{stored['sha256'][:16]}..., imported {stored['imported_at']}[/dim]")
        _show_human(model)

    @protocol_app.command("import")
    def import_(
        file: Annotated[Path, typer.Argument(help="Protocol YAML file.", show_default=False)],
        user: UserOption = None,
        as_json: JsonOption = False,
    ) -> None:
        """Store a protocol version (id, version, YAML text, SHA-256) in the database."""
        from ..records import import_protocol, protocol_record_view

        with records_session(user) as (session, acting):
            record, created = import_protocol(session, acting, file)
            result = {**protocol_record_view(record), "created": created}
        emit(result, as_json=as_json)

    @protocol_app.command("list")
    def list_(as_json: JsonOption = False) -> None:
        """Protocol versions stored in the database."""
        from ..records import clinic_repositories, protocol_record_view

        with records_session(None, write=False) as (session, _):
            rows = [protocol_record_view(r) for r in clinic_repositories.protocol_versions(session)]
        emit(rows, as_json=as_json, human=lambda r: print_table(
            r, title="protocols", columns=["id", "version", "title", "imported_at"]))


def _register_subject(app: typer.Typer) -> None:
    subject = typer.Typer(help="Study subjects: enrolment, study consent.", no_args_is_help=True)
    app.add_typer(subject, name="subject")

    @subject.command("enrol")
    def enrol(
        code: Annotated[str, typer.Argument(help="Subject code (a pseudonym, never a name).",
                                            show_default=False)],
        protocol: Annotated[str, typer.Option("--protocol", help="Protocol id (imported).")],
        arm: Annotated[str, typer.Option("--arm", help="Arm code.")],
        consent_version: Annotated[str, typer.Option(
            "--consent-version", help="Version of the signed study consent form.")],
        consent_date: Annotated[str, typer.Option(
            "--consent-date", help="Day the study consent was signed (YYYY-MM-DD).")],
        enrolled: Annotated[str | None, typer.Option(
            "--date", help="Enrolment day = day 0 (YYYY-MM-DD; default today).")] = None,
        weight_kg: Annotated[float | None, typer.Option(
            "--weight-kg", help="Body weight, kg (needed for particles/kg arms).")] = None,
        sex: Annotated[str, typer.Option("--sex", help="female, male, other, unknown.")] = "unknown",
        age: Annotated[int | None, typer.Option("--age", help="Age at enrolment, years.")] = None,
        site: Annotated[str | None, typer.Option("--site", help="Study site code.")] = None,
        baseline: Annotated[list[str] | None, typer.Option(
            "--baseline", help="Baseline value OUTCOME=VALUE[:UNIT] (entry criteria).")] = None,
        user: UserOption = None,
        as_json: JsonOption = False,
    ) -> None:
        """Record a subject, their study consent and their enrolment in a protocol arm."""
        from ..records import enrol_subject, subject_view

        with records_session(user) as (session, acting):
            enrolment = enrol_subject(
                session, acting, code, protocol_code=protocol, arm_code=arm,
                enrolled_on=parse_date(enrolled, "--date") or date.today(),
                consent_version=consent_version,
                consent_signed_on=parse_date(consent_date, "--consent-date"),
                body_weight_kg=weight_kg, sex=sex, age_years=age, site=site,
                baseline=_baseline(baseline))
            from ..records import Subject

            result = subject_view(session, session.get(Subject, enrolment.subject_id))
        emit(result, as_json=as_json)

    @subject.command("list")
    def list_(
        protocol: Annotated[str | None, typer.Option("--protocol", help="Only this protocol.")] = None,
        as_json: JsonOption = False,
    ) -> None:
        """Enrolled subjects with arm, dose level in effect and consent state."""
        from ..records import list_subjects

        with records_session(None, write=False) as (session, _):
            rows = list_subjects(session, protocol_code=protocol)
        if as_json:
            emit(rows, as_json=True)
            return
        print_table([{"code": r["code"], "protocol": r["protocol"], "arm": r["arm"],
                      "enrolled": r.get("enrolled_on"), "given": r.get("administrations"),
                      "level": r.get("current_level"),
                      "consent": "withdrawn" if (r["consent"] or {}).get("withdrawn") else "valid",
                      "blocked": "yes" if r.get("dosing_blocked") else ""} for r in rows],
                    title="subjects")

    @subject.command("show")
    def show(
        code: Annotated[str, typer.Argument(help="Subject code.", show_default=False)],
        as_json: JsonOption = False,
    ) -> None:
        """A subject with administrations, observations, adverse events and dose decisions."""
        from ..records import subject_view

        with records_session(None, write=False) as (session, _):
            view = subject_view(session, code, detail=True)
        if as_json:
            emit(view, as_json=True)
            return
        console.print(f"[bold]{view['code']}[/bold] {view['sex']}, {view['age_years']} y - "
                      f"{view['protocol']} arm {view['arm']}, enrolled {view.get('enrolled_on')}")
        console.print(f"level in effect {view.get('current_level')} "
                      f"({view.get('current_dose'):.4g} {view.get('dose_unit')})"
                      + (f"; blocked: {view['dosing_blocked']}" if view.get("dosing_blocked") else ""))
        print_table(view["administrations"], title="administrations",
                    columns=["administered_at", "slot", "vial", "lot", "level", "dose",
                             "dose_unit", "volume_ml", "window_flag"])
        print_table(view["observations"], title="observations",
                    columns=["visit", "outcome", "value", "unit", "change", "window_flag"])
        print_table(view["adverse_events"], title="adverse events",
                    columns=["onset", "term", "grade", "serious", "relatedness", "expedited"])
        print_table(view["dose_decisions"], title="dose decisions",
                    columns=["id", "evaluated_on", "action", "proposed_level", "status",
                             "decided_level", "reason"])

    @subject.command("consent")
    def consent(
        code: Annotated[str, typer.Argument(help="Subject code.", show_default=False)],
        version: Annotated[str, typer.Option("--version", help="Consent form version.")],
        signed: Annotated[str, typer.Option("--date", help="Day signed (YYYY-MM-DD).")],
        user: UserOption = None,
        as_json: JsonOption = False,
    ) -> None:
        """Record a new study consent (re-consent); it becomes the current one."""
        from ..records import record_study_consent

        with records_session(user) as (session, acting):
            c = record_study_consent(session, acting, code, version=version,
                                     signed_on=parse_date(signed, "--date"))
            result = {"id": c.id, "subject": code, "version": c.version,
                      "signed_on": c.signed_on}
        emit(result, as_json=as_json)

    @subject.command("withdraw")
    def withdraw(
        code: Annotated[str, typer.Argument(help="Subject code.", show_default=False)],
        reason: Annotated[str, typer.Option("--reason", help="Why consent was withdrawn.")],
        withdrawn: Annotated[str | None, typer.Option(
            "--date", help="Day of withdrawal (YYYY-MM-DD; default today).")] = None,
        user: UserOption = None,
        as_json: JsonOption = False,
    ) -> None:
        """Withdraw the subject's study consent: every later administration is refused."""
        from ..records import decision_view, withdraw_study_consent

        with records_session(user) as (session, acting):
            c, d = withdraw_study_consent(session, acting, code,
                                          withdrawn_on=parse_date(withdrawn, "--date")
                                          or date.today(), reason=reason)
            result = {"subject": code, "consent": c.id, "withdrawn_on": c.withdrawn_on,
                      "dose_decision": decision_view(d)}
        emit(result, as_json=as_json, human=lambda r: console.print(
            f"consent {r['consent']} of {code} withdrawn on {r['withdrawn_on']}\n"
            + _decision_line(r["dose_decision"])))


def _register_administer(app: typer.Typer) -> None:
    @app.command("administer")
    def administer_(
        subject: SubjectOpt,
        vial: Annotated[str, typer.Option("--vial", help="Vial identifier (scanned or typed).")],
        level: Annotated[int | None, typer.Option(
            "--level", help="Dose level (default: the level in effect).")] = None,
        dose: Annotated[float | None, typer.Option(
            "--dose", help="Dose off the level list, in the arm's unit.")] = None,
        site: Annotated[str | None, typer.Option("--site", help="Body site.")] = None,
        at: Annotated[str | None, typer.Option(
            "--at", help="Time, ISO 8601 with time zone (default now).")] = None,
        weight_kg: Annotated[float | None, typer.Option(
            "--weight-kg", help="Body weight today, kg (default: at enrolment).")] = None,
        user: UserOption = None,
        as_json: JsonOption = False,
    ) -> None:
        """Give a vial to a subject after every check (vial, lot, consent, product, dose)."""
        from ..records import administer, administration_view

        with records_session(user) as (session, acting):
            adm = administer(session, acting, subject_code=subject, vial_identifier=vial,
                             at=_datetime(at, "--at"), level=level, dose_amount=dose, site=site,
                             body_weight_kg=weight_kg)
            result = administration_view(session, adm)
        emit(result, as_json=as_json)


def _register_ae(app: typer.Typer) -> None:
    ae = typer.Typer(help="Adverse events (CTCAE v5 grade, ICH E2A seriousness).",
                     no_args_is_help=True)
    app.add_typer(ae, name="ae")

    @ae.command("add")
    def add(
        subject: SubjectOpt,
        term: Annotated[str, typer.Option("--term", help="Verbatim term.")],
        grade: Annotated[int, typer.Option("--grade", help="CTCAE v5 grade 1-5.")],
        serious: Annotated[bool, typer.Option(
            "--serious/--not-serious", help="ICH E2A seriousness.")],
        relatedness: Annotated[str, typer.Option(
            "--relatedness", help="not related, unlikely, possible, probable, definite.")],
        onset: Annotated[str, typer.Option("--onset", help="Onset day (YYYY-MM-DD).")],
        outcome: Annotated[str | None, typer.Option(
            "--outcome", help="recovered/resolved, recovering/resolving, not recovered/not "
            "resolved, recovered/resolved with sequelae, fatal, unknown.")] = None,
        resolved: Annotated[str | None, typer.Option("--resolved", help="Day resolved.")] = None,
        criterion: Annotated[list[str] | None, typer.Option(
            "--criterion", help="Seriousness criterion (death, life-threatening, "
            "hospitalisation, disability, congenital anomaly, important medical event).")] = None,
        expected: Annotated[bool, typer.Option(
            "--expected/--unexpected", help="Listed in the reference safety information.")] = False,
        awareness: Annotated[str | None, typer.Option(
            "--awareness", help="Day the sponsor learnt of it (default onset).")] = None,
        user: UserOption = None,
        as_json: JsonOption = False,
    ) -> None:
        """Record an adverse event; serious ones are flagged; the next dose is proposed."""
        from ..records import add_adverse_event, adverse_event_view, decision_view

        with records_session(user) as (session, acting):
            row, report, decision = add_adverse_event(
                session, acting, subject, term=term, grade=grade, serious=serious,
                relatedness=relatedness, onset_on=parse_date(onset, "--onset"),
                criteria=criterion or (), outcome=outcome,
                resolved_on=parse_date(resolved, "--resolved"), expected=expected,
                awareness_on=parse_date(awareness, "--awareness"))
            result = {"adverse_event": adverse_event_view(row),
                      "reporting": report, "dose_decision": decision_view(decision)}

        def human(r):
            a = r["adverse_event"]
            console.print(f"adverse event {a['id']}: {a['term']}, grade {a['grade']}, "
                          f"{'SERIOUS' if a['serious'] else 'not serious'}, {a['relatedness']}")
            flag = "[bold red]EXPEDITED REPORT[/bold red] " if r["reporting"].expedited else ""
            console.print(f"{flag}{r['reporting'].reason}")
            console.print(_decision_line(r["dose_decision"]))

        emit(result, as_json=as_json, human=human)


def _register_observe(app: typer.Typer) -> None:
    @app.command("observe")
    def observe(
        subject: SubjectOpt,
        visit: Annotated[str, typer.Option("--visit", help="Protocol visit name.")],
        outcome: Annotated[str, typer.Option("--outcome", help="Protocol outcome code.")],
        value: Annotated[float, typer.Option("--value", help="Measured value.")],
        unit: Annotated[str, typer.Option("--unit", help="Unit of the value as measured.")],
        at: Annotated[str | None, typer.Option(
            "--at", help="Day measured (YYYY-MM-DD; default today).")] = None,
        user: UserOption = None,
        as_json: JsonOption = False,
    ) -> None:
        """Record an outcome value at a visit (unit and window checked); propose the next dose."""
        from ..records import decision_view, observation_view, record_observation

        with records_session(user) as (session, acting):
            obs, decision = record_observation(session, acting, subject, visit=visit,
                                               outcome=outcome, value=value, unit=unit,
                                               observed_on=parse_date(at, "--at"))
            result = {"observation": observation_view(obs), "dose_decision": decision_view(decision)}

        def human(r):
            o = r["observation"]
            line = f"{o['outcome']} at {o['visit']}: {o['value']:g} {o['unit']}"
            if o["change"] is not None:
                line += f" (change from baseline {o['change']:+.4g})"
            console.print(line)
            if o["window_flag"]:
                console.print(f"[yellow]{o['window_flag']}[/yellow]")
            console.print(_decision_line(r["dose_decision"]))

        emit(result, as_json=as_json, human=human)


def _register_dose(app: typer.Typer) -> None:
    dose = typer.Typer(help="Accept or override the rule engine's dose proposal.",
                       no_args_is_help=True)
    app.add_typer(dose, name="dose")

    def _decide(subject, accept, level, reason, on, user, as_json):
        from ..records import decide_dose, decision_view

        with records_session(user) as (session, acting):
            d = decide_dose(session, acting, subject, accept=accept, level=level, reason=reason,
                            on=parse_date(on, "--on"))
            result = decision_view(d)
        emit(result, as_json=as_json, human=lambda r: console.print(_decision_line(r)))

    @dose.command("accept")
    def accept(subject: SubjectOpt, reason: ReasonOpt = None, user: UserOption = None,
               as_json: JsonOption = False) -> None:
        """Accept the pending proposal for a subject."""
        _decide(subject, True, None, reason, None, user, as_json)

    @dose.command("override")
    def override(
        subject: SubjectOpt,
        level: Annotated[int, typer.Option("--level", help="Dose level to give next.")],
        reason: Annotated[str, typer.Option("--reason", help="Why the proposal is overridden.")],
        on: Annotated[str | None, typer.Option(
            "--on", help="Day of the decision when no proposal is pending (default today).")] = None,
        user: UserOption = None,
        as_json: JsonOption = False,
    ) -> None:
        """Override the proposal (or the decision in effect) with a level and a reason."""
        _decide(subject, False, level, reason, on, user, as_json)


def _register_followup_recall(app: typer.Typer) -> None:
    followup = typer.Typer(help="Follow-up visits.", no_args_is_help=True)
    app.add_typer(followup, name="followup")

    @followup.command("due")
    def due(
        as_of: Annotated[str | None, typer.Option(
            "--as-of", help="Judge on this day (YYYY-MM-DD; default today).")] = None,
        horizon: Annotated[int, typer.Option(
            "--horizon-days", help="List visits whose window opens within this many days.")] = 14,
        as_json: JsonOption = False,
    ) -> None:
        """Visits overdue, due now, or coming up, for every subject."""
        from ..records import followup_due

        with records_session(None, write=False) as (session, _):
            rows = followup_due(session, as_of=parse_date(as_of, "--as-of"), horizon_days=horizon)
        emit(rows, as_json=as_json, human=lambda r: print_table(
            r, title="follow-up", columns=["subject", "protocol", "visit", "status", "target",
                                           "window_from", "window_to", "days_overdue"]))

    @app.command("recall")
    def recall_(
        donor: Annotated[str | None, typer.Option("--donor", help="Donor code.")] = None,
        lot: Annotated[str | None, typer.Option("--lot", help="Lot number.")] = None,
        cell_bank: Annotated[str | None, typer.Option("--cell-bank", help="Cell bank code.")] = None,
        reagent_batch: Annotated[str | None, typer.Option(
            "--reagent-batch", help="Reagent batch code.")] = None,
        as_json: JsonOption = False,
    ) -> None:
        """Every subject and administration affected by a donor, cell bank, lot or reagent batch."""
        from ..records import recall

        with records_session(None, write=False) as (session, _):
            result = recall(session, donor_code=donor, cell_bank_code=cell_bank, lot_number=lot,
                            reagent_code=reagent_batch)

        def human(r):
            console.print(f"recall from {r['source']['kind']} {r['source']['key']}: "
                          f"{len(r['subjects'])} subjects, {len(r['administrations'])} "
                          "administrations")
            print_table(r["administrations"], title="administrations affected",
                        columns=["subject", "protocol", "vial", "lot", "administered_at", "dose",
                                 "dose_unit", "particles"])

        emit(result, as_json=as_json, human=human)


def _register_exports(app: typer.Typer) -> None:
    fhir = typer.Typer(help="HL7 FHIR R5 export.", no_args_is_help=True)
    app.add_typer(fhir, name="fhir")
    sdtm = typer.Typer(help="CDISC SDTM-shaped CSV export (DM, EX, AE).", no_args_is_help=True)
    app.add_typer(sdtm, name="sdtm")

    @fhir.command("export")
    def fhir_export(
        out: Annotated[Path, typer.Option("-o", "--out", help="Bundle JSON file to write.")],
        protocol: ProtocolOpt = None,
        as_json: JsonOption = False,
    ) -> None:
        """Write one validated FHIR R5 Bundle of the clinical records."""
        from ..records import export_fhir

        with records_session(None, write=False) as (session, _):
            result = export_fhir(session, out, protocol_code=protocol)
        emit(result, as_json=as_json)

    @sdtm.command("export")
    def sdtm_export(
        out: Annotated[Path, typer.Option("-o", "--out", help="Folder for dm/ex/ae.csv.")],
        protocol: ProtocolOpt = None,
        as_json: JsonOption = False,
    ) -> None:
        """Write dm.csv, ex.csv and ae.csv shaped like CDISC SDTM."""
        from ..records import export_sdtm

        with records_session(None, write=False) as (session, _):
            result = export_sdtm(session, out, protocol_code=protocol)
        emit(result, as_json=as_json)

    clinic = typer.Typer(help="Clinical analytics on the recorded follow-up.",
                         no_args_is_help=True)
    app.add_typer(clinic, name="clinic")

    @clinic.command("report")
    def report(
        outcome: Annotated[str, typer.Option("--outcome", help="Outcome code, e.g. LVEF.")],
        protocol: ProtocolOpt = None,
        plot: Annotated[Path | None, typer.Option(
            "--plot", help="Folder for the per-subject trajectory plot (PNG).")] = None,
        as_json: JsonOption = False,
    ) -> None:
        """Responder rates by arm, safety table, lot-to-outcome mixed model (association only)."""
        from ..records import clinic_report

        with records_session(None, write=False) as (session, _):
            result = clinic_report(session, outcome, protocol_code=protocol, plot_dir=plot)
        emit(result, as_json=as_json, human=_report_human)


def _report_human(r: dict) -> None:
    o = r["outcome"]
    console.print(f"[bold]{r['protocol']}[/bold]: {o['name']} ({o['code']}, {o['unit']}), "
                  f"{r['subjects']} subjects")
    if isinstance(r["responders"], str):
        console.print(r["responders"])
    else:
        print_table([{"arm": x["arm_code"], "visit": x["visit_name"],
                      "responders": f"{x['responders']}/{x['evaluable']}",
                      "missing": x["missing"], "rate": f"{100 * x['rate']:.0f} %",
                      "95% CI": f"{100 * x['ci_low']:.0f}-{100 * x['ci_high']:.0f} %"}
                     for x in r["responders"]], title="responders")
    print_table(r["safety"], title="adverse events by arm, grade and relatedness")
    m = r["lot_outcome_model"]
    if "not_fitted" in m:
        console.print(f"lot-to-outcome model not fitted: {m['not_fitted']}")
    else:
        print_table([{"term": c["name"], "estimate": c["estimate"], "95% CI":
                      f"{c['ci_low']:.4g} to {c['ci_high']:.4g}", "p": c["p_value"]}
                     for c in (vars(x) if not isinstance(x, dict) else x
                               for x in m["coefficients"])],
                    title=f"lot-to-outcome mixed model ({m['n_observations']} values, "
                          f"{m['n_subjects']} subjects, {m['n_lots']} lots)")
    console.print(f"[bold]{r['statement']}[/bold]")
    if r.get("plot"):
        console.print(f"plot: {r['plot']}")


def register(app: typer.Typer) -> None:
    """Add the database-bound clinic commands (``protocol import|list``, ``subject``, ...)."""
    _register_protocol_commands()
    _register_subject(app)
    _register_administer(app)
    _register_ae(app)
    _register_observe(app)
    _register_dose(app)
    _register_followup_recall(app)
    _register_exports(app)
