"""``exotrace protocol ...``: file-based protocol commands (show, dose calculator).

``protocol import`` (into the database) belongs to the records layer and is
added to the same ``protocol`` group there.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from ..clinic import DoseComputation, Protocol, compute_dose, load_protocol
from ._common import JsonOption, console, emit, print_table

__all__ = ["protocol_app", "register"]

protocol_app = typer.Typer(help="Clinical protocols (YAML): validate, show, compute doses.",
                           no_args_is_help=True)

FileArg = Annotated[Path, typer.Argument(help="Protocol YAML file.", show_default=False)]


def _responder_text(o) -> str:
    r = o.responder
    if r is None:
        return ""
    amount = (f"{r.min_improvement:g} % of baseline" if r.kind.value == "percent"
              else f"{r.min_improvement:g} {o.unit} (absolute)")
    return f"improves >= {amount} at {r.visit}"


def _show_human(p: Protocol) -> None:
    console.print(f"[bold]{p.id}[/bold] v{p.version}: {p.title}")
    console.print(f"Indication: {p.indication}")
    for note in p.eligibility.notes:
        console.print(f"  - {note}")
    for c in p.eligibility.entry_criteria:
        bounds = " and ".join(b for b in (
            f">= {c.min:g}" if c.min is not None else "", f"<= {c.max:g}" if c.max is not None else ""
        ) if b)
        console.print(f"  entry: {c.outcome} {bounds} {p.outcome(c.outcome).unit}")
    # Arms as lines, not a table: at 80 columns a table cut the dose unit to "particle…".
    for a in p.arms:
        unit = a.dose_unit.value
        console.print(f"[bold]Arm {a.code}[/bold]: {a.name}", soft_wrap=True)
        console.print(f"  route {a.route.value}; products {', '.join(a.product_types)}",
                      soft_wrap=True)
        console.print(f"  dose levels {', '.join(f'{x:g}' for x in a.dose_levels)} {unit}; "
                      f"start at level {a.starting_level}; maximum {a.maximum_dose:g} {unit}",
                      soft_wrap=True)
    rows = [{"kind": "administration", "name": s.name, "day": s.day,
             "window": f"-{s.window_before_days}/+{s.window_after_days}", "outcomes": ""}
            for s in p.schedule.administrations]
    rows += [{"kind": "visit" + (" (baseline)" if v.baseline else ""), "name": v.name,
              "day": v.day, "window": f"-{v.window_before_days}/+{v.window_after_days}",
              "outcomes": ", ".join(v.outcomes)} for v in p.schedule.visits]
    print_table(sorted(rows, key=lambda r: r["day"]), title="Schedule (day from enrolment)")
    print_table([{"code": o.code, "name": o.name, "unit": o.unit, "better": o.direction.value,
                  "LOINC": o.loinc or "",
                  "responder": _responder_text(o)}
                 for o in p.outcomes], title="Outcome measures")
    print_table([{"id": r.id, "priority": r.priority, "kind": r.kind.value,
                  "description": r.description} for r in sorted(p.rules, key=lambda r: r.priority)],
                title="Dose rules")


def _dose_human(d: DoseComputation) -> None:
    level = f"level {d.level}" if d.level is not None else "custom dose"
    console.print(f"Arm {d.arm_code} {level}: {d.dose_amount:.4g} {d.dose_unit.value} "
                  f"({100 * d.fraction_of_maximum:.0f} % of the protocol maximum "
                  f"{d.maximum_dose:.4g})")
    if d.body_weight_kg is not None:
        console.print(f"  body weight      {d.body_weight_kg:g} kg")
    console.print(f"  particles        {d.particles:.4g}")
    console.print(f"  volume to draw   {d.volume_ml:.4g} mL at {d.lot_particles_per_ml:.4g} particles/mL")
    if d.protein_ug is not None:
        console.print(f"  protein          {d.protein_ug:.4g} ug at "
                      f"{d.lot_particles_per_ug_protein:.4g} particles/ug")


@protocol_app.command("show")
def show(file: FileArg, as_json: JsonOption = False) -> None:
    """Validate a protocol YAML file and display it."""
    protocol = load_protocol(file)
    emit(protocol.model_dump(mode="json") if as_json else protocol, as_json=as_json,
         human=_show_human)


@protocol_app.command("dose")
def dose(
    file: FileArg,
    arm: Annotated[str, typer.Option("--arm", help="Arm code.")],
    level: Annotated[int, typer.Option("--level", help="Dose level, 1 = lowest.")],
    particles_per_ml: Annotated[float, typer.Option(
        "--particles-per-ml", help="Lot particle concentration, particles/mL.")],
    weight_kg: Annotated[float | None, typer.Option(
        "--weight-kg", help="Body weight, kg (particles/kg doses).")] = None,
    particles_per_ug: Annotated[float | None, typer.Option(
        "--particles-per-ug", help="Lot particle:protein ratio, particles per ug protein.")] = None,
    as_json: JsonOption = False,
) -> None:
    """Dose calculator: particles and volume to draw for an arm's dose level."""
    protocol = load_protocol(file)
    result = compute_dose(protocol.arm(arm).level(level), body_weight_kg=weight_kg,
                          lot_particles_per_ml=particles_per_ml,
                          lot_particles_per_ug_protein=particles_per_ug)
    emit(result, as_json=as_json, human=_dose_human)


def register(app: typer.Typer) -> None:
    """Add the ``protocol`` command group."""
    app.add_typer(protocol_app, name="protocol")
