"""Database-bound quality commands: specifications, the lot release workflow, CoA, trending.

Attaches to groups other modules own (so each command keeps its documented name):

* ``spec import|export|list|assign`` -> the ``spec`` group of :mod:`exotrace.cli.quality`;
* ``spc lots`` -> its ``spc`` group;
* ``lot result add``, ``lot reference``, ``lot submit``, ``lot evaluate``, ``lot verify``,
  ``lot release``, ``lot reject``, ``lot quarantine``, ``lot coa`` -> the records ``lot`` group;
* ``oos list|close`` (own group) and ``compare`` (lots in the database, or the CSV
  files of :mod:`exotrace.cli.quality` when both groups are ``.csv`` files).

Must be listed after ``lots`` and ``quality`` in ``COMMAND_MODULES``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from ..errors import InvalidInput
from ._common import JsonOption, console, emit, print_table
from ._records import ReasonOption, UserOption, records_session, signing_password

__all__ = ["register"]

ManufacturerOption = Annotated[str | None, typer.Option(
    "--manufacturer", envvar="EXOTRACE_MANUFACTURER", show_envvar=True,
    help="Manufacturer printed on the certificate.")]


def _group(app: typer.Typer, name: str, help_text: str) -> typer.Typer:
    """The sub-app registered as ``name`` (created when no other module made it)."""
    for info in app.registered_groups:
        if info.name == name and info.typer_instance is not None:
            return info.typer_instance
    sub = typer.Typer(help=help_text, no_args_is_help=True)
    app.add_typer(sub, name=name)
    return sub


def _lots(items: list[str] | None, option: str) -> list[str]:
    """Repeated and/or comma-separated lot numbers."""
    out = [x.strip() for item in items or [] for x in item.split(",") if x.strip()]
    if not out:
        raise InvalidInput(f"{option}: give at least one lot number")
    return out


def _register_spec(spec: typer.Typer) -> None:
    @spec.command("import")
    def spec_import(path: Annotated[Path, typer.Argument(help="Specification YAML file.")],
                    user: UserOption = None, as_json: JsonOption = False) -> None:
        """Store a specification version (QA); an effective version supersedes the previous."""
        from ..records import import_specification, specification_view

        with records_session(user) as (session, acting):
            record, created = import_specification(session, acting, path)
            result = {**specification_view(record), "created": created}
        emit(result, as_json=as_json)

    @spec.command("export")
    def spec_export(
        name: str,
        output: Annotated[Path, typer.Option("-o", "--output", help="YAML file to write.")],
        version: Annotated[str | None, typer.Option("--version")] = None,
        as_json: JsonOption = False,
    ) -> None:
        """Write a stored specification version (default: the effective one) as YAML."""
        from ..records import export_specification

        with records_session(None, write=False) as (session, _):
            text = export_specification(session, name, version)
        try:
            output.write_text(text, encoding="utf-8")
        except OSError as exc:
            raise InvalidInput(f"cannot write {output}: {exc.strerror or exc}") from None
        emit({"name": name, "version": version, "output": str(output)}, as_json=as_json)

    @spec.command("list")
    def spec_list(name: Annotated[str | None, typer.Option("--name")] = None,
                  as_json: JsonOption = False) -> None:
        """List stored specification versions with their status."""
        from ..records import quality_repositories, specification_view

        with records_session(None, write=False) as (session, _):
            rows = [specification_view(r)
                    for r in quality_repositories.list_specifications(session, name=name)]
        if as_json:
            emit(rows, as_json=True)
            return
        print_table(rows, title="specifications",
                    columns=["name", "version", "status", "effective_date", "product_type",
                             "tests"])

    @spec.command("assign")
    def spec_assign(
        name: str,
        lot: Annotated[list[str], typer.Option("--lot", help="Lot number (repeat).")],
        user: UserOption = None,
        as_json: JsonOption = False,
    ) -> None:
        """Judge lots against specification NAME (the version in force is used)."""
        from ..records import assign_specification

        with records_session(user) as (session, acting):
            for number in _lots(lot, "--lot"):
                assign_specification(session, acting, number, name)
        emit({"specification": name, "lots": _lots(lot, "--lot")}, as_json=as_json)


def _register_lot(lot: typer.Typer) -> None:
    result = typer.Typer(help="Release-test results of a lot.", no_args_is_help=True)
    lot.add_typer(result, name="result")

    @result.command("add")
    def result_add(
        number: str,
        test: Annotated[str, typer.Option("--test", help="Specification test name.")],
        value: Annotated[str, typer.Option("--value", help="A number (with --unit) or a word "
                                           "(negative, present, absent, ...).")],
        unit: Annotated[str | None, typer.Option("--unit")] = None,
        method: Annotated[str | None, typer.Option("--method")] = None,
        retest_of: Annotated[str | None, typer.Option(
            "--retest-of", help="Original result id (M12, R3) under OOS investigation.")] = None,
        user: UserOption = None,
        as_json: JsonOption = False,
    ) -> None:
        """Enter a release-test result; an OOS result opens an investigation."""
        from ..records import add_quality_result

        with records_session(user) as (session, acting):
            r, opened = add_quality_result(session, acting, number, test=test, value=value,
                                           unit=unit, method=method, retest_of=retest_of)
            out = {"id": f"R{r.id}", "lot": number, "test": r.test, "value": r.value,
                   "unit": r.unit, "qualitative": r.qualitative, "retest_of": r.retest_of,
                   "opened_investigation": f"OOS-{opened.id}" if opened else None}
        emit(out, as_json=as_json)

    @lot.command("reference")
    def reference(
        number: str,
        value: Annotated[float, typer.Option("--value")],
        unit: Annotated[str, typer.Option("--unit")],
        name: Annotated[str, typer.Option("--name", help="Reference name in the "
                                          "specification.")] = "label_claim",
        user: UserOption = None,
        as_json: JsonOption = False,
    ) -> None:
        """Record a lot's reference value (e.g. the label claim of the concentration)."""
        from ..records import set_reference_value

        with records_session(user) as (session, acting):
            ref = set_reference_value(session, acting, number, name, value, unit)
            out = {"lot": number, "name": ref.name, "value": ref.value, "unit": ref.unit}
        emit(out, as_json=as_json)

    @lot.command("submit")
    def submit(number: str, reason: ReasonOption = None, user: UserOption = None,
               as_json: JsonOption = False) -> None:
        """Send a lot with results to awaiting_release (analyst)."""
        from ..records import lot_summary, submit_for_release

        with records_session(user) as (session, acting):
            out = lot_summary(session, submit_for_release(session, acting, number,
                                                          reason=reason))
        emit(out, as_json=as_json)

    @lot.command("evaluate")
    def evaluate(number: str, user: UserOption = None, as_json: JsonOption = False) -> None:
        """Evaluate a lot against its specification in force (OOS flags; with --user, OOS
        investigations are opened)."""
        from ..records import evaluate_lot

        with records_session(user, write=False) as (session, acting):
            out = evaluate_lot(session, number, user=acting)

        def human(o):
            spec = o["specification"]
            console.print(f"lot {o['lot']} ({o['status']}, {o['release_state']}) against "
                          f"{spec['name']} {spec['version']} ({spec['status']}): "
                          f"[bold]{o['conclusion']}[/bold]")
            print_table([{**t, "oos": "OOS" if t["oos"] else ""} for t in o["tests"]],
                        columns=["test", "criterion", "result", "outcome", "oos",
                                 "investigation", "reason"])
            if o["open_investigations"]:
                console.print(f"open OOS investigations: {', '.join(o['open_investigations'])}")

        emit(out, as_json=as_json, human=human)

    def _password(session, user: str | None) -> str:
        if not user:
            raise InvalidInput("signing needs --user NAME (the password is asked again at "
                               "signing, or read from standard input)")
        return signing_password(session, user)

    @lot.command("verify")
    def verify(number: str, user: UserOption = None, as_json: JsonOption = False) -> None:
        """Verify a lot's results as a second person (signature meaning: review)."""
        from ..records import verify_lot

        with records_session(user) as (session, acting):
            out = verify_lot(session, acting, _password(session, user), number)
        emit(out, as_json=as_json)

    @lot.command("release")
    def release(number: str, reason: ReasonOption = None, user: UserOption = None,
                as_json: JsonOption = False) -> None:
        """Release a verified, complying lot (QA; signature meaning: approval)."""
        from ..records import release_lot

        with records_session(user) as (session, acting):
            out = release_lot(session, acting, _password(session, user), number, reason=reason)
        emit(out, as_json=as_json)

    @lot.command("reject")
    def reject(number: str, reason: ReasonOption = None, user: UserOption = None,
               as_json: JsonOption = False) -> None:
        """Reject a verified or quarantined lot (QA; a reason is required)."""
        from ..records import reject_lot

        with records_session(user) as (session, acting):
            out = reject_lot(session, acting, _password(session, user), number, reason=reason)
        emit(out, as_json=as_json)

    @lot.command("quarantine")
    def quarantine(number: str, reason: ReasonOption = None, user: UserOption = None,
                   as_json: JsonOption = False) -> None:
        """Quarantine a lot with results (QA; a reason is required)."""
        from ..records import quarantine_lot

        with records_session(user) as (session, acting):
            out = quarantine_lot(session, acting, _password(session, user), number, reason=reason)
        emit(out, as_json=as_json)

    @lot.command("coa")
    def coa(
        number: str,
        output: Annotated[Path, typer.Option("-o", "--output", help="PDF file to write.")],
        html: Annotated[Path | None, typer.Option("--html", help="Also write HTML.")] = None,
        manufacturer: ManufacturerOption = None,
        as_json: JsonOption = False,
    ) -> None:
        """Certificate of analysis of a released (or rejected) lot, as PDF (and HTML)."""
        from ..quality import render_coa_html, render_coa_pdf
        from ..records import build_certificate

        with records_session(None, write=False) as (session, _):
            data = build_certificate(session, number, manufacturer=manufacturer or
                                     "manufacturer not configured (set EXOTRACE_MANUFACTURER)")
        try:
            render_coa_pdf(data, output)
            if html is not None:
                html.write_text(render_coa_html(data), encoding="utf-8")
        except OSError as exc:
            raise InvalidInput(f"cannot write the certificate: {exc.strerror or exc}") from None
        emit({"lot": number, "coa_id": data.coa_id, "pdf": str(output),
              "html": str(html) if html else None, "complies": data.complies,
              "signed_by": data.signature.printed_name}, as_json=as_json)


def _register_oos(oos: typer.Typer) -> None:
    @oos.command("list")
    def oos_list(
        lot: Annotated[str | None, typer.Option("--lot")] = None,
        open_only: Annotated[bool, typer.Option("--open", help="Only open ones.")] = False,
        as_json: JsonOption = False,
    ) -> None:
        """List OOS investigations."""
        from ..records import list_investigation_views

        with records_session(None, write=False) as (session, _):
            rows = list_investigation_views(session, lot_number=lot, open_only=open_only)
        if as_json:
            emit(rows, as_json=True)
            return
        print_table(rows, title="OOS investigations",
                    columns=["id", "lot", "test", "original_result", "retest_result", "phase",
                             "conclusion", "opened_by", "closed_by"])

    @oos.command("close")
    def oos_close(
        investigation: Annotated[str, typer.Argument(metavar="ID", help="OOS-12 or 12.")],
        conclusion: Annotated[str, typer.Option(
            "--conclusion", help="lab_error, confirmed_oos or inconclusive.")],
        summary: Annotated[str, typer.Option("--summary", help="Findings.")],
        phase: Annotated[str, typer.Option(
            "--phase", help="phase_I (laboratory) or phase_II (process).")] = "phase_I",
        user: UserOption = None,
        as_json: JsonOption = False,
    ) -> None:
        """Close an OOS investigation (QA)."""
        from ..records import close_investigation, describe_investigation

        with records_session(user) as (session, acting):
            out = describe_investigation(session, close_investigation(
                session, acting, investigation, conclusion=conclusion, phase=phase,
                summary=summary))
        emit(out, as_json=as_json)


def _register_spc(spc: typer.Typer) -> None:
    @spc.command("lots")
    def spc_lots_cmd(
        attribute: Annotated[str, typer.Option("--attribute", help="e.g. size_d50.")],
        product: Annotated[str | None, typer.Option(
            "--product", help="Product type (or specification name) of the lots.")] = None,
        baseline: Annotated[int | None, typer.Option(
            "--baseline", help="Limits from the first N lots.")] = None,
        mean: Annotated[float | None, typer.Option("--mean")] = None,
        sigma: Annotated[float | None, typer.Option("--sigma")] = None,
        plot: Annotated[Path | None, typer.Option("--plot", help="Chart (.png/.svg).")] = None,
        as_json: JsonOption = False,
    ) -> None:
        """I-MR chart and Nelson rules of an attribute over lots in manufacture order."""
        from ..quality import NELSON_RULES, plot_imr
        from ..records import spc_lots

        with records_session(None, write=False) as (session, _):
            trend = spc_lots(session, attribute, product=product, baseline=baseline, mean=mean,
                             sigma=sigma)
        out = trend.to_dict()
        if plot is not None:
            plot_imr(trend.values, trend.limits, trend.violations, plot,
                     title=f"{attribute} by lot (I-MR)", unit=trend.unit or "")
            out["plot"] = str(plot)

        def human(o):
            lim = o["limits"]
            console.print(f"{o['attribute']} over {o['n']} lots: mean {lim['mean']:.4g}, "
                          f"sigma {lim['sigma']:.4g} {o['unit'] or ''} "
                          f"(UCL {lim['ucl']:.4g}, LCL {lim['lcl']:.4g})")
            print_table([{**v, "meaning": NELSON_RULES[v["rule"]]} for v in o["violations"]],
                        title="Nelson rule violations")

        emit(out, as_json=as_json, human=human)


def _register_compare(app: typer.Typer) -> None:
    # One ``compare`` command: lots in the database, or the file-based comparison of
    # exotrace.cli.quality when both groups are CSV files (its command is replaced here).
    app.registered_commands[:] = [c for c in app.registered_commands if c.name != "compare"]

    @app.command("compare")
    def compare(
        group_a: Annotated[list[str], typer.Option(
            "--group-a", help="Reference lots (repeat or comma-separate), or a CSV file.")],
        group_b: Annotated[list[str], typer.Option(
            "--group-b", help="Compared lots, or a CSV file.")],
        margin: Annotated[list[str] | None, typer.Option(
            "--margin", help="ATTR=VALUE (absolute) or ATTR=VALUE% (of group A's mean).")] = None,
        margins: Annotated[Path | None, typer.Option(
            "--margins", help="YAML file: attribute: margin.")] = None,
        as_json: JsonOption = False,
    ) -> None:
        """Comparability (ICH Q5E): TOST per attribute of group B against group A, plus the
        size-distribution comparison where distributions are stored."""
        if len(group_a) == 1 and len(group_b) == 1 and all(
                g[0].lower().endswith(".csv") for g in (group_a, group_b)):
            from . import quality as file_quality

            items = list(margin or [])
            if margins is not None:
                from ..records import parse_margins

                for attr, m in parse_margins([], margins).items():
                    items.append(f"{attr}={m.value * 100:g}%" if m.kind == "relative"
                                 else f"{attr}={m.value:g}")
            file_quality._compare(Path(group_a[0]), Path(group_b[0]), items, as_json)
            return
        from ..records import compare_lots, parse_margins

        parsed = parse_margins(margin or [], margins)
        with records_session(None, write=False) as (session, _):
            out = compare_lots(session, _lots(group_a, "--group-a"), _lots(group_b, "--group-b"),
                               parsed)

        def human(o):
            print_table([{"attribute": c["attribute"], "verdict": c["verdict"], "n A": c["n_a"],
                          "n B": c["n_b"], "B - A": c["difference"], "margin": c["margin"],
                          "unit": c["unit"], "p (TOST)": c["p_value"], "note": c["reason"]}
                         for c in o["attributes"]], title="Comparability (TOST, Welch)")
            d = o["distribution"]
            if d is not None:
                console.print(f"size distributions: Wasserstein {d['wasserstein_nm']:.3g} nm, "
                              f"max CDF difference {d['max_cdf_difference']:.3g}, D10-D90 "
                              f"overlap {d['d10_d90_overlap']:.2f}"
                              + (f" - {'; '.join(d['flags'])}" if d["flags"] else ""))

        emit(out, as_json=as_json, human=human)


def register(app: typer.Typer) -> None:
    """Attach the release-workflow commands (see the module docstring)."""
    lot = _group(app, "lot", "EV lots: create, pool, split, status.")
    _register_spec(_group(app, "spec", "Specifications."))
    _register_lot(lot)
    _register_oos(_group(app, "oos", "Out-of-specification (OOS) investigations."))
    _register_spc(_group(app, "spc", "Statistical process control."))
    _register_compare(app)
