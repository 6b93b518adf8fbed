"""``exotrace lot|vial|storage|product|measurement``: lots and what hangs from them."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Annotated

import typer

from ._common import JsonOption, emit, print_table
from ._records import ReasonOption, UserOption, parse_date, records_session

__all__ = ["register"]


def _quantities(items: list[str], option: str) -> dict[str, float | None]:
    """``NUMBER`` or ``NUMBER=ML`` items -> {number: mL or None}."""
    from ..errors import InvalidInput

    out: dict[str, float | None] = {}
    for item in items:
        number, sep, ml = item.partition("=")
        try:
            out[number.strip()] = float(ml) if sep else None
        except ValueError:
            raise InvalidInput(f"{option} {item!r}: write LOT or LOT=ML") from None
    return out


def _print_method_comparison(view: dict) -> None:
    rows = [{"method": m["method"], "file": m["source"], "particles/mL": m["particles_per_ml"],
             "range nm": "-".join(f"{v:.0f}" for v in m["detection_range_nm"]),
             "in common range": m["fraction_in_common_range"], "ratio raw": m["ratio_raw"],
             "ratio common range": m["ratio_common_range"], "explained %": m["explained_percent"]}
            for m in view["methods"]]
    common = view["common_range_nm"]
    print_table(rows, title=f"lot {view['lot']}: concentrations by method (reference "
                            f"{view['reference']}; common range "
                            f"{'none' if common is None else '-'.join(f'{v:.0f}' for v in common)} nm)")
    for note in view["notes"]:
        typer.echo(f"note: {note}")
    if view["plot"]:
        typer.echo(f"chart: {view['plot']}")


def register(app: typer.Typer) -> None:
    lot = typer.Typer(help="EV lots: create, pool, split, status.", no_args_is_help=True)
    vial = typer.Typer(help="Vials (units) filled from lots.", no_args_is_help=True)
    storage = typer.Typer(help="Lot storage.", no_args_is_help=True)
    product = typer.Typer(help="Product formulations.", no_args_is_help=True)
    measurement = typer.Typer(help="Lot measurements (entered or imported).",
                              no_args_is_help=True)
    for sub, name in ((lot, "lot"), (vial, "vial"), (storage, "storage"), (product, "product"),
                      (measurement, "measurement")):
        app.add_typer(sub, name=name)

    @lot.command("create")
    def create(
        number: str,
        isolation: Annotated[str, typer.Option("--isolation", help="Isolation run code.")],
        intended_use: Annotated[str, typer.Option("--intended-use")],
        manufactured_on: Annotated[str | None, typer.Option("--date")] = None,
        expires_on: Annotated[str | None, typer.Option("--expires")] = None,
        volume_ml: Annotated[float | None, typer.Option("--volume-ml")] = None,
        reagent: Annotated[list[str] | None, typer.Option()] = None,
        user: UserOption = None,
        as_json: JsonOption = False,
    ) -> None:
        """Create a lot from an isolation run."""
        from ..records import create_lot, lot_summary

        with records_session(user) as (session, acting):
            made = create_lot(session, acting, number, isolation_code=isolation,
                              intended_use=intended_use,
                              manufactured_on=parse_date(manufactured_on, "--date") or date.today(),
                              expires_on=parse_date(expires_on, "--expires"),
                              volume_ml=volume_ml, reagent_codes=reagent or [])
            result = lot_summary(session, made)
        emit(result, as_json=as_json)

    @lot.command("pool")
    def pool(
        number: str,
        parent: Annotated[list[str], typer.Option(help="Parent LOT or LOT=ML (repeat).")],
        manufactured_on: Annotated[str | None, typer.Option("--date")] = None,
        intended_use: Annotated[str | None, typer.Option("--intended-use")] = None,
        expires_on: Annotated[str | None, typer.Option(
            "--expires", help="Expiry date (default and latest: the earliest parent's).")] = None,
        user: UserOption = None,
        as_json: JsonOption = False,
    ) -> None:
        """Pool several lots into a new lot (it expires with its earliest parent at the latest)."""
        from ..records import lot_summary, pool_lots

        with records_session(user) as (session, acting):
            made = pool_lots(session, acting, number, parents=_quantities(parent, "--parent"),
                             manufactured_on=parse_date(manufactured_on, "--date") or date.today(),
                             intended_use=intended_use,
                             expires_on=parse_date(expires_on, "--expires"))
            result = lot_summary(session, made)
        emit(result, as_json=as_json)

    @lot.command("split")
    def split(
        number: str,
        child: Annotated[list[str], typer.Option(help="Child LOT or LOT=ML (repeat).")],
        manufactured_on: Annotated[str | None, typer.Option("--date")] = None,
        expires_on: Annotated[str | None, typer.Option(
            "--expires", help="Expiry date (default and latest: the parent's).")] = None,
        user: UserOption = None,
        as_json: JsonOption = False,
    ) -> None:
        """Split a lot into child lots (they expire with the parent at the latest)."""
        from ..records import lot_summary, split_lot

        with records_session(user) as (session, acting):
            made = split_lot(session, acting, number, children=_quantities(child, "--child"),
                             manufactured_on=parse_date(manufactured_on, "--date") or date.today(),
                             expires_on=parse_date(expires_on, "--expires"))
            result = [lot_summary(session, m) for m in made]
        emit(result, as_json=as_json)

    @lot.command("status")
    def status(
        number: str,
        new_status: Annotated[str, typer.Argument(metavar="STATUS", help="in_process, "
                                                  "awaiting_release, released, rejected, "
                                                  "quarantined.")],
        reason: ReasonOption = None,
        user: UserOption = None,
        as_json: JsonOption = False,
    ) -> None:
        """Move a lot to a new status (a reason is required)."""
        from ..records import lot_summary, set_lot_status

        with records_session(user) as (session, acting):
            result = lot_summary(session, set_lot_status(session, acting, number, new_status,
                                                         reason=reason or ""))
        emit(result, as_json=as_json)

    @lot.command("list")
    def list_(
        status_filter: Annotated[str | None, typer.Option("--status")] = None,
        as_json: JsonOption = False,
    ) -> None:
        """List lots (number, status, use, dates, parents)."""
        from ..records import LotStatus, lot_summary, repositories
        from ..records._services_source import _enum

        with records_session(None, write=False) as (session, _):
            wanted = _enum(LotStatus, status_filter, "status") if status_filter else None
            rows = [lot_summary(session, x) for x in repositories.list_lots(session, status=wanted)]
        if as_json:
            emit(rows, as_json=True)
            return
        print_table([{**r, "parents": ", ".join(r["parents"])} for r in rows], title="lots")

    @lot.command("show")
    def show(number: str, as_json: JsonOption = False) -> None:
        """Show a lot with its genealogy, measurements and vial count."""
        from ..records import lot_view

        with records_session(None, write=False) as (session, _):
            result = lot_view(session, number)
        if as_json:
            emit(result, as_json=True)
            return
        emit({k: v for k, v in result.items() if k != "measurements"}, as_json=False)
        print_table(result["measurements"], title="measurements",
                    columns=["id", "attribute", "value", "unit", "method", "entered_by"])

    @lot.command("compare-methods")
    def compare_methods_cmd(
        number: str,
        plot: Annotated[Path | None, typer.Option("--plot", help="Write the overlay chart "
                                                  "(.png or .svg).")] = None,
        result: Annotated[list[Path] | None, typer.Option(
            "--result", help="Also a result saved with --json (e.g. flow size), not imported.")] = None,
        as_json: JsonOption = False,
    ) -> None:
        """Compare a lot's size distributions and concentrations by method (NTA, ZetaView, flow)."""
        from ..records import load_result_json, lot_method_comparison

        extra = [d for path in (result or []) for d in load_result_json(path)]
        with records_session(None, write=False) as (session, _):
            _, view = lot_method_comparison(session, number, plot=plot, extra=extra)
        emit(view, as_json=as_json, human=_print_method_comparison)

    @storage.command("add")
    def storage_add(
        lot_number: Annotated[str, typer.Option("--lot")],
        buffer: Annotated[str, typer.Option()],
        temperature_c: Annotated[float, typer.Option("--temperature-c")],
        container: Annotated[str, typer.Option()],
        location: Annotated[str, typer.Option()],
        freeze_thaw: Annotated[int, typer.Option("--freeze-thaw")] = 0,
        user: UserOption = None,
        as_json: JsonOption = False,
    ) -> None:
        """Record where and how a lot is stored."""
        from ..records import add_storage, record_view

        with records_session(user) as (session, acting):
            result = record_view(add_storage(session, acting, lot_number, buffer=buffer,
                                             temperature_c=temperature_c, container=container,
                                             location=location, freeze_thaw_count=freeze_thaw))
        emit(result, as_json=as_json)

    @product.command("add")
    def product_add(
        code: str,
        lot_number: Annotated[str, typer.Option("--lot")],
        form: Annotated[str, typer.Option(help="topical_serum, topical_cream, topical_mask, "
                                          "topical_gel, injectable, intravenous, inhaled.")],
        excipient: Annotated[list[str] | None, typer.Option()] = None,
        target: Annotated[float | None, typer.Option(
            "--target-particles-per-ml")] = None,
        fill_ml: Annotated[float | None, typer.Option("--fill-ml")] = None,
        user: UserOption = None,
        as_json: JsonOption = False,
    ) -> None:
        """Record a product formulation of a lot."""
        from ..records import add_product, record_view

        with records_session(user) as (session, acting):
            result = record_view(add_product(session, acting, code, lot_number=lot_number,
                                             form=form, excipients=excipient or [],
                                             target_particles_per_ml=target,
                                             fill_volume_ml=fill_ml))
        emit(result, as_json=as_json)

    @vial.command("create")
    def vial_create(
        lot_number: Annotated[str, typer.Option("--lot")],
        count: Annotated[int, typer.Option("--count")],
        product_code: Annotated[str | None, typer.Option("--product")] = None,
        fill_ml: Annotated[float | None, typer.Option("--fill-ml")] = None,
        user: UserOption = None,
        as_json: JsonOption = False,
    ) -> None:
        """Fill vials from a lot; identifiers carry an ISO 7064 MOD 37-2 check character."""
        from ..records import create_vials

        with records_session(user) as (session, acting):
            ids = create_vials(session, acting, lot_number, count, product_code=product_code,
                               fill_volume_ml=fill_ml)
        emit({"lot": lot_number, "count": len(ids), "identifiers": ids}, as_json=as_json)

    @vial.command("list")
    def vial_list(
        lot_number: Annotated[str | None, typer.Option("--lot")] = None,
        limit: Annotated[int | None, typer.Option("--limit")] = None,
        as_json: JsonOption = False,
    ) -> None:
        """List vials (of one lot with --lot)."""
        from ..records import Lot, repositories, vial_view

        with records_session(None, write=False) as (session, _):
            lot_obj = repositories.get_by(session, Lot, number=lot_number) if lot_number else None
            numbers = {x.id: x.number for x in repositories.list_lots(session)}
            rows = [vial_view(v, numbers.get(v.lot_id)) for v in repositories.list_vials(
                session, lot_id=lot_obj.id if lot_obj else None, limit=limit)]
        emit(rows, as_json=as_json)

    @vial.command("verify")
    def vial_verify(identifier: str, as_json: JsonOption = False) -> None:
        """Check a scanned vial identifier's check character and look it up."""
        from ..errors import InvalidInput
        from ..records import Vial, is_valid_identifier, repositories

        if not is_valid_identifier(identifier):
            raise InvalidInput(f"vial identifier {identifier!r}: check character does not match "
                               "(mistyped or misread)")
        clean = "".join(c for c in identifier.upper() if c not in " -")
        with records_session(None, write=False) as (session, _):
            v = repositories.get_by(session, Vial, identifier=clean)
            result = {"identifier": v.identifier, "valid": True, "lot": v.lot.number,
                      "status": v.status.value}
        emit(result, as_json=as_json)

    @measurement.command("add")
    def measurement_add(
        lot_number: Annotated[str, typer.Option("--lot")],
        attribute: Annotated[str, typer.Option(help="e.g. particle_concentration, size_mode.")],
        value: Annotated[float, typer.Option()],
        unit: Annotated[str, typer.Option()],
        method: Annotated[str, typer.Option(help="e.g. NTA, BCA.")],
        instrument: Annotated[str | None, typer.Option()] = None,
        user: UserOption = None,
        as_json: JsonOption = False,
    ) -> None:
        """Enter one measured value for a lot."""
        from ..records import add_measurement, measurement_view

        with records_session(user) as (session, acting):
            m = add_measurement(session, acting, lot_number, attribute=attribute, value=value,
                                unit=unit, method=method, instrument=instrument)
            result = measurement_view(m, {acting.id: acting.username})
        emit(result, as_json=as_json)

    @measurement.command("import")
    def measurement_import(
        lot_number: Annotated[str, typer.Option("--lot")],
        files: Annotated[list[Path], typer.Argument(help="Instrument files.")],
        user: UserOption = None,
        as_json: JsonOption = False,
    ) -> None:
        """Import instrument files for a lot (a file already imported is skipped)."""
        from ..records import Lot, import_measurement_file, measurement_view, repositories

        out = []
        with records_session(user) as (session, acting):
            lot_obj = repositories.get_by(session, Lot, number=lot_number)
            for path in files:
                rf, made, created = import_measurement_file(session, lot_obj, path, acting)
                out.append({"file": str(path), "sha256": rf.sha256, "imported": created,
                            "measurements": [measurement_view(m, {acting.id: acting.username})
                                             for m in made]})
        emit(out, as_json=as_json)
