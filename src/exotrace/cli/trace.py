"""``exotrace trace``: forward (source -> lots, vials, subjects) and back (vial -> donor)."""

from __future__ import annotations

from typing import Annotated

import typer

from ._common import JsonOption, console, emit, print_table
from ._records import records_session

__all__ = ["register"]


def register(app: typer.Typer) -> None:
    trace = typer.Typer(help="Traceability, forward and back.", no_args_is_help=True)
    app.add_typer(trace, name="trace")

    @trace.command("forward")
    def forward(
        donor: Annotated[str | None, typer.Option("--donor", help="Donor code.")] = None,
        cell_bank: Annotated[str | None, typer.Option("--cell-bank")] = None,
        lot: Annotated[str | None, typer.Option("--lot")] = None,
        reagent_batch: Annotated[str | None, typer.Option("--reagent-batch")] = None,
        as_json: JsonOption = False,
    ) -> None:
        """Every lot (through pools and splits), vial and subject reached from one source."""
        from ..records import trace_forward

        with records_session(None, write=False) as (session, _):
            result = trace_forward(session, donor_code=donor, cell_bank_code=cell_bank,
                                   lot_number=lot, reagent_code=reagent_batch)
        if as_json:
            emit(result, as_json=True)
            return
        console.print(f"from {result['source']['kind']} {result['source']['key']}: "
                      f"{len(result['lots'])} lots, {len(result['vials'])} vials, "
                      f"{len(result['subjects'])} subjects")
        print_table(result["lots"], title="lots", columns=["number", "status"])

    @trace.command("back")
    def back(
        vial: Annotated[str, typer.Option("--vial", help="Vial identifier.")],
        as_json: JsonOption = False,
    ) -> None:
        """From a vial back to its lots, isolation, collection, cell bank, donor and consent."""
        from ..records import trace_back

        with records_session(None, write=False) as (session, _):
            result = trace_back(session, vial)
        if as_json:
            emit(result, as_json=True)
            return
        console.print(f"vial {result['vial']['identifier']} of lot {result['vial']['lot']}")
        print_table(result["lots"], title="lots", columns=["number", "status", "manufactured_on"])
        print_table(result["cell_banks"], title="cell banks", columns=["code", "tissue"])
        print_table([{"code": d["code"], "consent": (
            "none" if d["consent"] is None else
            f"withdrawn {d['consent']['withdrawn_on']}" if d["consent"]["withdrawn"] else
            ", ".join(d["consent"]["scopes"]))} for d in result["donors"]], title="donors")
