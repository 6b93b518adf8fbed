"""``exotrace flow``: EV flow cytometry - simulate, calibrate, size, count, gate, report."""

from __future__ import annotations

import json
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer
from typer.core import TyperCommand

from ..errors import FileFormatError, InvalidInput
from ._common import JsonOption, console, emit, print_table
from ._records import UserOption, records_session
from .nta import spread_multi_values

__all__ = ["register"]

_MULTI = ("--bead-sizes-nm", "--mesf-values")


class _FlowCommand(TyperCommand):
    """Accepts ``--bead-sizes-nm 80 100 150`` as well as repeated options."""

    def parse_args(self, ctx, args):  # noqa: D401 - click API
        return super().parse_args(ctx, spread_multi_values(list(args), _MULTI))


class Polarization(StrEnum):
    """Incident light."""

    unpolarized = "unpolarized"
    linear = "linear"


class Model(StrEnum):
    """Vesicle optical model."""

    homogeneous = "homogeneous"
    coated = "coated"


Blank = Annotated[Path | None, typer.Option(
    "--blank", help="Buffer-only run of the same session and settings (FCS).")]
Dilution = Annotated[float, typer.Option("--dilution", help="Dilution of the sample before acquisition.")]
FlowRate = Annotated[float | None, typer.Option(
    "--flow-rate-ul-per-min", help="Sample flow rate, uL/min, where the file has no $VOL.")]
CalibrationOpt = Annotated[Path, typer.Option(
    "--calibration", help="Scatter calibration JSON from `exotrace flow calibrate`.")]
ModelOpt = Annotated[Model, typer.Option("--model", help="Vesicle model.")]
Ri = Annotated[float, typer.Option("--ri", help="Effective index of the homogeneous model.")]
CoreRi = Annotated[float, typer.Option("--core-ri", help="Core index of the coated model.")]
ShellRi = Annotated[float, typer.Option("--shell-ri", help="Membrane index of the coated model.")]
ShellNm = Annotated[float, typer.Option("--shell-nm", help="Membrane thickness, nm.")]


def _fcs(path: Path, what: str) -> Path:
    if not path.is_file():
        raise FileFormatError(path, f"{what} not found")
    return path


def _particle_model(model: Model, ri: float, core_ri: float, shell_ri: float, shell_nm: float):
    from ..flow import ParticleModel

    return ParticleModel(kind=model.value, index=ri, core_index=core_ri, shell_index=shell_ri,
                         shell_thickness_nm=shell_nm)


def simulate(
    out_dir: Annotated[Path, typer.Argument(help="Folder for the FCS files and truth.json.")],
    seed: Annotated[int, typer.Option("--seed", help="Random seed.")] = 0,
    particles_per_ml: Annotated[float, typer.Option(
        "--particles-per-ml", help="Vesicles per mL of the undiluted sample.")] = 1e10,
    dilution: Dilution = 100.0,
    median_nm: Annotated[float, typer.Option("--median-nm", help="Median vesicle diameter, nm.")] = 100.0,
    geometric_sd: Annotated[float, typer.Option(
        "--geometric-sd", help="Geometric SD of the log-normal diameters.")] = 1.5,
    positive_fraction: Annotated[float, typer.Option(
        "--positive-fraction", help="Fraction of marker-positive vesicles.")] = 0.3,
    noise_rate_per_s: Annotated[float, typer.Option(
        "--noise-rate-per-s", help="Background triggers per second.")] = 20.0,
    half_angle_deg: Annotated[float, typer.Option(
        "--half-angle-deg", help="Collection half-angle of the simulated detector, degrees.")] = 30.0,
    threshold_au: Annotated[float, typer.Option(
        "--threshold-au", help="Trigger threshold, channel units.")] = 500.0,
    duration_s: Annotated[float, typer.Option("--duration-s", help="Acquisition time, s.")] = 60.0,
    bead_sizes_nm: Annotated[list[float] | None, typer.Option(
        "--bead-sizes-nm", help="Scatter bead diameters, nm.")] = None,
    bead_ri: Annotated[float, typer.Option("--bead-ri", help="Bead refractive index.")] = 1.59,
    model: ModelOpt = Model.homogeneous,
    ri: Ri = 1.40,
    core_ri: CoreRi = 1.38,
    shell_ri: ShellRi = 1.48,
    shell_nm: ShellNm = 5.0,
    as_json: JsonOption = False,
) -> None:
    """Simulate a nano-flow session: beads, MESF beads, sample, blank, isotype + truth.json."""
    from ..flow.simulate import FlowInstrument, VesicleSample, simulate_session

    inst = FlowInstrument(half_angle_deg=half_angle_deg, trigger_threshold_au=threshold_au,
                          noise_event_rate_per_s=noise_rate_per_s)
    smp = VesicleSample(particles_per_ml=particles_per_ml, dilution=dilution,
                        median_diameter_nm=median_nm, geometric_sd=geometric_sd,
                        positive_fraction=positive_fraction, duration_s=duration_s,
                        model=_particle_model(model, ri, core_ri, shell_ri, shell_nm))
    truth = simulate_session(out_dir, sample=smp, instrument=inst, seed=seed,
                             bead_diameters_nm=tuple(bead_sizes_nm or (100.0, 200.0, 300.0, 500.0)),
                             bead_index=bead_ri)
    s = truth["sample"]
    summary = {"folder": str(out_dir), "truth_file": str(Path(out_dir) / "truth.json"),
               "files": {k: v["file"] for k, v in truth.items() if isinstance(v, dict)},
               "particles_per_ml": s["particles_per_ml"],
               "triggered_particles_per_ml": s["triggered_particles_per_ml"],
               "detection_limit_nm": s["detection_limit_nm"],
               "median_diameter_above_limit_nm": s["median_diameter_above_limit_nm"],
               "positive_fraction_of_events": s["positive_fraction_of_events"], "seed": seed}
    emit(summary, as_json=as_json)


def concentration(
    file: Annotated[Path, typer.Argument(help="Sample FCS file.")],
    blank: Blank = None,
    dilution: Dilution = 1.0,
    flow_rate_ul_per_min: FlowRate = None,
    volume_nl: Annotated[float | None, typer.Option(
        "--volume-nl", help="Analysed volume, nL (overrides $VOL).")] = None,
    as_json: JsonOption = False,
) -> None:
    """Particles per mL: events per analysed volume, minus the blank's, times the dilution."""
    from ..flow import event_concentration

    r = event_concentration(_fcs(file, "sample"), blank=None if blank is None else _fcs(blank, "blank"),
                            dilution=dilution, volume_nl=volume_nl,
                            flow_rate_ul_per_min=flow_rate_ul_per_min)
    emit(r.to_dict(), as_json=as_json)


def calibrate(
    beads: Annotated[Path, typer.Argument(help="FCS file of the bead mixture.")],
    bead_sizes_nm: Annotated[list[float], typer.Option(
        "--bead-sizes-nm", help="Bead diameters in the mixture, nm (e.g. 100 200 300 500).")],
    output: Annotated[Path, typer.Option("-o", "--output", help="Calibration JSON to write.")],
    bead_ri: Annotated[float, typer.Option(
        "--bead-ri", help="Bead index at the wavelength (polystyrene 1.59, silica 1.45).")] = 1.59,
    wavelength_nm: Annotated[float, typer.Option("--wavelength-nm", help="Laser wavelength, nm.")] = 405.0,
    medium_ri: Annotated[float | None, typer.Option(
        "--medium-ri", help="Medium index (default water at the wavelength).")] = None,
    channel: Annotated[str | None, typer.Option(
        "--channel", help="Scatter channel (default the trigger channel or the SSC height).")] = None,
    half_angle_deg: Annotated[float | None, typer.Option(
        "--half-angle-deg", help="Hold the collection half-angle (default: fit it).")] = None,
    min_scatter: Annotated[float | None, typer.Option(
        "--min-scatter", help="Ignore events at or below this scatter (noise).")] = None,
    polarization: Annotated[Polarization, typer.Option(
        "--polarization", help="Laser polarization as seen by the detector.")] = Polarization.unpolarized,
    axis_azimuth_deg: Annotated[float, typer.Option(
        "--axis-azimuth-deg", help="Linear polarization: detector axis azimuth from the field, deg.")] = 90.0,
    as_json: JsonOption = False,
) -> None:
    """Fit the scatter detector (scale and collection half-angle) to beads with Mie theory."""
    from ..flow import calibrate_scatter

    cal = calibrate_scatter(_fcs(beads, "bead file"), bead_sizes_nm, bead_index=bead_ri,
                            wavelength_nm=wavelength_nm, medium_index=medium_ri, channel=channel,
                            half_angle_deg=half_angle_deg, min_scatter=min_scatter,
                            polarization=polarization.value,
                            axis_azimuth_deg=axis_azimuth_deg)
    try:
        written = cal.save(output)
    except OSError as exc:
        raise FileFormatError(output, f"cannot write the calibration: {exc.strerror or exc}") from None
    emit({"calibration": str(written), **cal.to_dict()}, as_json=as_json)


def _size_human(data: dict) -> None:
    def f(v, spec=".1f"):
        return "" if v is None else format(v, spec)

    rows = [
        {"field": "events", "value": str(data["events"])},
        {"field": "sized / below limit / ambiguous / above range", "value": " / ".join(
            str(data[k]) for k in ("sized_events", "below_limit_events", "ambiguous_events",
                                   "above_range_events"))},
        {"field": "detection limit (nm)", "value": f(data["detection_limit_nm"])},
        {"field": "detection range (nm)", "value": " - ".join(f(v) for v in data["detection_range_nm"])},
        {"field": "mean / mode / SD (nm)", "value": " / ".join(
            f(data[k]) for k in ("mean_nm", "mode_nm", "sd_nm"))},
        {"field": "D10 / D50 / D90 (nm)", "value": " / ".join(
            f(data[k]) for k in ("d10_nm", "d50_nm", "d90_nm"))},
        {"field": "particles / mL above limit", "value": f(data["particles_per_ml_above_limit"], ".3g")},
        {"field": "model", "value": json.dumps(data["model"])},
    ]
    print_table(rows, title=f"Flow size distribution: {Path(data['file']).name}")
    for w in data["warnings"]:
        console.print(f"[yellow]warning:[/yellow] {w}", soft_wrap=True)
    for key in ("plot", "stored_on_lot"):
        if data.get(key):
            console.print(f"{key.replace('_', ' ')}: {data[key]}")


def size(
    file: Annotated[Path, typer.Argument(help="Sample FCS file.")],
    calibration: CalibrationOpt,
    blank: Blank = None,
    dilution: Dilution = 1.0,
    flow_rate_ul_per_min: FlowRate = None,
    model: ModelOpt = Model.homogeneous,
    ri: Ri = 1.40,
    core_ri: CoreRi = 1.38,
    shell_ri: ShellRi = 1.48,
    shell_nm: ShellNm = 5.0,
    threshold_au: Annotated[float | None, typer.Option(
        "--threshold-au", help="Trigger threshold, channel units (default $TR).")] = None,
    max_diameter_nm: Annotated[float, typer.Option(
        "--max-diameter-nm", help="Largest diameter the model covers, nm.")] = 1000.0,
    bin_width_nm: Annotated[float, typer.Option("--bin-width-nm", help="Bin width, nm.")] = 5.0,
    ambiguity_tolerance: Annotated[float, typer.Option(
        "--ambiguity-tolerance", help="Solutions this close (relative) count as one size.")] = 0.1,
    scatter_uncertainty: Annotated[float, typer.Option(
        "--scatter-uncertainty", help="Relative scatter uncertainty when calling sizes ambiguous.")] = 0.05,
    plot: Annotated[Path | None, typer.Option("--plot", help="Write a plot (.png or .svg).")] = None,
    lot: Annotated[str | None, typer.Option(
        "--lot", help="Store the result on this lot (needs --user).")] = None,
    user: UserOption = None,
    as_json: JsonOption = False,
) -> None:
    """Size distribution above the detection limit (mean, D10/D50/D90, distribution)."""
    from ..flow import FlowCalibration, size_events

    if plot is not None and plot.suffix.lower() not in (".png", ".svg"):
        raise InvalidInput(f"--plot {plot}: use a .png or .svg file name")
    cal = FlowCalibration.load(calibration)
    result = size_events(_fcs(file, "sample"), cal,
                         model=_particle_model(model, ri, core_ri, shell_ri, shell_nm),
                         blank=None if blank is None else _fcs(blank, "blank"), dilution=dilution,
                         threshold_au=threshold_au, diameter_range_nm=(20.0, max_diameter_nm),
                         bin_width_nm=bin_width_nm, flow_rate_ul_per_min=flow_rate_ul_per_min,
                         ambiguity_tolerance=ambiguity_tolerance,
                         scatter_uncertainty=scatter_uncertainty)
    data = result.to_dict()
    if plot is not None:
        from ..flow.plots import plot_size_distribution

        data["plot"] = str(plot_size_distribution(result, plot, title=file.name))
    if lot is not None:
        data["stored_on_lot"] = _store_on_lot(file, result, lot, user)
    emit(data, as_json=as_json, human=_size_human)


def _store_on_lot(file: Path, result, lot: str, user: str | None) -> dict:
    from ..records import Lot, import_measurement_file, repositories

    record = json.loads(json.dumps(result.to_instrument_result().to_dict(full=False), default=str))
    with records_session(user) as (session, acting):
        lot_obj = repositories.get_by(session, Lot, number=lot)
        rf, made, created = import_measurement_file(session, lot_obj, file, acting,
                                                    reader=lambda _path: record)
        return {"lot": lot, "sha256": rf.sha256, "imported": created,
                "measurements": [m.attribute for m in made]}


def positive(
    file: Annotated[Path, typer.Argument(help="Stained sample FCS file.")],
    control: Annotated[Path, typer.Option(
        "--control", help="Isotype or unstained control (FCS).")],
    channel: Annotated[str, typer.Option("--channel", help="Marker channel ($PnN or $PnS).")],
    quantile: Annotated[float, typer.Option(
        "--quantile", help="Control quantile that sets the gate (0.995: 99.5th percentile).")] = 0.995,
    mesf_beads: Annotated[Path | None, typer.Option(
        "--mesf-beads", help="MESF bead file to express the gate in MESF.")] = None,
    mesf_values: Annotated[list[float] | None, typer.Option(
        "--mesf-values", help="MESF of each bead population (0 for the blank bead).")] = None,
    as_json: JsonOption = False,
) -> None:
    """Percent of events above a gate set on the control at a high percentile."""
    from ..flow import load_events, mesf_calibration, percent_positive

    sample = load_events(_fcs(file, "sample"), what="sample")
    ctrl = load_events(_fcs(control, "control"), what="control")
    sample.channel_index(channel)  # names the file when the channel is missing
    ctrl.channel_index(channel)
    mesf = None
    if mesf_beads is not None:
        if not mesf_values:
            raise InvalidInput("--mesf-beads needs --mesf-values (one per bead population)")
        mesf = mesf_calibration(load_events(_fcs(mesf_beads, "MESF bead file")), mesf_values, channel)
    r = percent_positive(sample, ctrl, channel, quantile=quantile, mesf=mesf)
    data = {"file": str(file), "control": str(control), **r.to_dict(),
            "mesf_calibration": None if mesf is None else mesf.to_dict()}
    emit(data, as_json=as_json)


def report(
    file: Annotated[Path, typer.Argument(help="Sample FCS file.")],
    calibration: Annotated[Path | None, typer.Option(
        "--calibration", help="Scatter calibration JSON.")] = None,
    blank: Blank = None,
    control: Annotated[Path | None, typer.Option("--control", help="Isotype/unstained control.")] = None,
    channel: Annotated[str | None, typer.Option("--channel", help="Marker channel.")] = None,
    mesf_beads: Annotated[Path | None, typer.Option("--mesf-beads", help="MESF bead file.")] = None,
    mesf_values: Annotated[list[float] | None, typer.Option(
        "--mesf-values", help="MESF of each bead population.")] = None,
    detergent_control: Annotated[str | None, typer.Option(
        "--detergent-control", help="Name of the detergent-lysis control run, if any.")] = None,
    dilution: Dilution = 1.0,
    flow_rate_ul_per_min: FlowRate = None,
    model: ModelOpt = Model.homogeneous,
    ri: Ri = 1.40,
    core_ri: CoreRi = 1.38,
    shell_ri: ShellRi = 1.48,
    shell_nm: ShellNm = 5.0,
    as_json: JsonOption = False,
) -> None:
    """MIFlowCyt-EV style summary: controls, calibrations, detection limits, what is missing."""
    from ..flow import FlowCalibration, flow_report, mesf_calibration

    cal = FlowCalibration.load(calibration) if calibration is not None else None
    mesf = None
    if mesf_beads is not None:
        if not mesf_values or channel is None:
            raise InvalidInput("--mesf-beads needs --mesf-values and --channel")
        mesf = mesf_calibration(_fcs(mesf_beads, "MESF bead file"), mesf_values, channel)
    if control is not None and channel is None:
        raise InvalidInput("--control needs --channel (the marker channel)")
    rep = flow_report(_fcs(file, "sample"), calibration=cal,
                      blank=None if blank is None else _fcs(blank, "blank"),
                      control=None if control is None else _fcs(control, "control"),
                      marker_channel=channel, mesf=mesf,
                      mesf_file=None if mesf_beads is None else str(mesf_beads),
                      model=_particle_model(model, ri, core_ri, shell_ri, shell_nm),
                      dilution=dilution, detergent_control=detergent_control,
                      flow_rate_ul_per_min=flow_rate_ul_per_min)
    emit(rep.to_dict(), as_json=as_json, human=_report_human)


def _report_human(data: dict) -> None:
    def short(v):
        text = json.dumps(v) if not isinstance(v, str) else v
        return text if len(text) <= 110 else text[:107] + "..."

    rows = [{"item": k, "value": short(v)} for k, v in data.items() if k != "missing"]
    print_table(rows, title="MIFlowCyt-EV summary")
    for m in data["missing"]:
        console.print(f"[yellow]missing:[/yellow] {m}", soft_wrap=True)


def register(app: typer.Typer) -> None:
    """Add the ``flow`` command group to the root app."""
    flow = typer.Typer(help="EV flow cytometry: simulate, calibrate, size, concentration, "
                            "percent positive, report.", no_args_is_help=True)
    flow.command("simulate", cls=_FlowCommand)(simulate)
    flow.command("concentration")(concentration)
    flow.command("calibrate", cls=_FlowCommand)(calibrate)
    flow.command("size")(size)
    flow.command("positive", cls=_FlowCommand)(positive)
    flow.command("report", cls=_FlowCommand)(report)
    app.add_typer(flow, name="flow")
