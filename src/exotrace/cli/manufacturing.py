"""``exotrace cellbank|collection|reagent|isolation add``: the steps before a lot."""

from __future__ import annotations

from typing import Annotated

import typer

from ._common import JsonOption, emit
from ._records import UserOption, parse_date, records_session

__all__ = ["register"]


def register(app: typer.Typer) -> None:
    cellbank = typer.Typer(help="Cell banks (source cells of a donor).", no_args_is_help=True)
    collection = typer.Typer(help="Conditioned-medium collections.", no_args_is_help=True)
    reagent = typer.Typer(help="Reagent batches.", no_args_is_help=True)
    isolation = typer.Typer(help="EV isolation (separation) runs.", no_args_is_help=True)
    app.add_typer(cellbank, name="cellbank")
    app.add_typer(collection, name="collection")
    app.add_typer(reagent, name="reagent")
    app.add_typer(isolation, name="isolation")

    @cellbank.command("add")
    def cellbank_add(
        code: str,
        donor: Annotated[str, typer.Option("--donor", help="Donor code.")],
        tissue: Annotated[str, typer.Option(help="bone_marrow, adipose, umbilical_cord, other.")],
        passage: Annotated[int, typer.Option(help="Passage number.")],
        intended_use: Annotated[str, typer.Option(
            "--intended-use", help="research, clinical_manufacturing, cosmetic, commercial.")],
        parent: Annotated[str | None, typer.Option(help="Master cell bank code.")] = None,
        marker: Annotated[list[str] | None, typer.Option(
            help="Identity result NAME=PERCENT, e.g. cd73_pct=98.5 (repeat).")] = None,
        banked_on: Annotated[str | None, typer.Option("--date")] = None,
        user: UserOption = None,
        as_json: JsonOption = False,
    ) -> None:
        """Bank a donor's cells (the donor's consent must cover the intended use)."""
        from ..errors import InvalidInput
        from ..records import add_cell_bank, record_view

        identity = {}
        for item in marker or []:
            name, sep, value = item.partition("=")
            if not sep:
                raise InvalidInput(f"--marker {item!r}: write NAME=PERCENT")
            try:
                identity[name.strip()] = float(value)
            except ValueError:
                raise InvalidInput(f"--marker {item!r}: {value!r} is not a number") from None
        with records_session(user) as (session, acting):
            bank = add_cell_bank(session, acting, code, donor_code=donor, tissue=tissue,
                                 passage=passage, intended_use=intended_use, parent_code=parent,
                                 identity=identity, banked_on=parse_date(banked_on, "--date"))
            result = record_view(bank)
        emit(result, as_json=as_json)

    @collection.command("add")
    def collection_add(
        code: str,
        cell_bank: Annotated[str, typer.Option("--cell-bank")],
        medium: Annotated[str, typer.Option()],
        serum: Annotated[str, typer.Option("--serum", help="serum_free or ev_depleted_serum.")],
        volume_ml: Annotated[float, typer.Option("--volume-ml")],
        days: Annotated[float, typer.Option("--days", help="Culture days before harvest.")],
        cell_count: Annotated[float | None, typer.Option("--cell-count")] = None,
        collected_on: Annotated[str | None, typer.Option("--date")] = None,
        user: UserOption = None,
        as_json: JsonOption = False,
    ) -> None:
        """Record conditioned medium collected from a cell bank's culture."""
        from ..records import add_collection, record_view

        with records_session(user) as (session, acting):
            c = add_collection(session, acting, code, cell_bank_code=cell_bank, medium=medium,
                               serum_condition=serum, volume_ml=volume_ml, culture_days=days,
                               cell_count=cell_count,
                               collected_on=parse_date(collected_on, "--date"))
            result = record_view(c)
        emit(result, as_json=as_json)

    @reagent.command("add")
    def reagent_add(
        code: str,
        name: Annotated[str, typer.Option()],
        batch_number: Annotated[str, typer.Option("--batch")],
        supplier: Annotated[str | None, typer.Option()] = None,
        expires_on: Annotated[str | None, typer.Option("--expires")] = None,
        user: UserOption = None,
        as_json: JsonOption = False,
    ) -> None:
        """Record a reagent batch."""
        from ..records import add_reagent_batch, record_view

        with records_session(user) as (session, acting):
            r = add_reagent_batch(session, acting, code, name=name, batch_number=batch_number,
                                  supplier=supplier, expires_on=parse_date(expires_on, "--expires"))
            result = record_view(r)
        emit(result, as_json=as_json)

    @isolation.command("add")
    def isolation_add(
        code: str,
        collection_code: Annotated[str, typer.Option("--collection")],
        method: Annotated[str, typer.Option(help="differential_ultracentrifugation, "
                                            "density_gradient, size_exclusion_chromatography, "
                                            "tangential_flow_filtration, ultrafiltration, "
                                            "precipitation, immunoaffinity.")],
        input_ml: Annotated[float, typer.Option("--input-ml")],
        output_ml: Annotated[float, typer.Option("--output-ml")],
        g_force: Annotated[float | None, typer.Option("--g-force", help="x g")] = None,
        minutes: Annotated[float | None, typer.Option("--minutes")] = None,
        rotor: Annotated[str | None, typer.Option()] = None,
        k_factor: Annotated[float | None, typer.Option("--k-factor")] = None,
        reagent: Annotated[list[str] | None, typer.Option(help="Reagent batch code (repeat).")] = None,
        performed_on: Annotated[str | None, typer.Option("--date")] = None,
        user: UserOption = None,
        as_json: JsonOption = False,
    ) -> None:
        """Record an isolation run (the acting user is the operator)."""
        from ..records import add_isolation_run, record_view

        with records_session(user) as (session, acting):
            run = add_isolation_run(session, acting, code, collection_code=collection_code,
                                    method=method, input_volume_ml=input_ml,
                                    output_volume_ml=output_ml, g_force=g_force,
                                    duration_min=minutes, rotor=rotor, k_factor=k_factor,
                                    performed_on=parse_date(performed_on, "--date"),
                                    reagent_codes=reagent or [])
            result = record_view(run)
        emit(result, as_json=as_json)
