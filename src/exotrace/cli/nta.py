"""``exotrace nta``: simulate, analyse and calibrate nanoparticle-tracking videos."""

from __future__ import annotations

import math
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from typer.core import TyperCommand

from ..errors import InvalidInput
from ._common import JsonOption, console, emit, err_console, print_table, progress_bar

if TYPE_CHECKING:  # the science modules load inside the commands: `--help` stays fast
    from ..nta import Acquisition
    from ..nta.concentration import Calibration

__all__ = ["register"]

# Options that take several numbers, written either ``--diameter-nm 70 140`` or
# ``--diameter-nm 70 --diameter-nm 140``.
_MULTI_VALUE_OPTIONS = ("--diameter-nm", "--fraction")


def _is_number(token: str) -> bool:
    try:
        float(token)
    except ValueError:
        return False
    return True


def spread_multi_values(args: list[str], options: tuple[str, ...] = _MULTI_VALUE_OPTIONS) -> list[str]:
    """Rewrite ``--opt 1 2`` as ``--opt 1 --opt 2`` for the multi-value options.

    Only tokens that parse as numbers are taken as extra values, so a following
    positional argument (a file name) is left alone.
    """
    out: list[str] = []
    i = 0
    while i < len(args):
        tok = args[i]
        name, eq, value = tok.partition("=")
        if name in options:
            if eq:
                out += [name, value]
                i += 1
            else:
                out.append(tok)
                if i + 1 < len(args):
                    out.append(args[i + 1])
                i += 2
            while i < len(args) and _is_number(args[i]):
                out += [name, args[i]]
                i += 1
            continue
        out.append(tok)
        i += 1
    return out


class _MultiValueCommand(TyperCommand):
    """A command whose list options also accept space-separated values."""

    def parse_args(self, ctx, args):  # noqa: D401 - click API
        return super().parse_args(ctx, spread_multi_values(list(args)))


class SizeMethod(StrEnum):
    """Size-distribution method."""

    em = "em"
    histogram = "histogram"


class Engine(StrEnum):
    """Kernel engine."""

    auto = "auto"
    numba = "numba"
    numpy = "numpy"


PixelSize = Annotated[float, typer.Option("--pixel-size-nm", help="Pixel size in the sample plane, nm.")]
Fps = Annotated[float, typer.Option("--fps", help="Frame rate, frames/s.")]
Temperature = Annotated[float, typer.Option("--temperature-c", help="Cell temperature, C.")]
Viscosity = Annotated[float | None, typer.Option(
    "--viscosity-cp", help="Medium viscosity, cP (default: water at the temperature).")]
Exposure = Annotated[float | None, typer.Option(
    "--exposure-ms", help="Shutter time per frame, ms (motion blur; default: none).")]
Invert = Annotated[bool, typer.Option("--invert", help="Dark particles on a bright background.")]
Threshold = Annotated[float, typer.Option(
    "--threshold-sigma", help="Detection threshold in noise sigmas (like NanoSight's 4-6).")]
Radius = Annotated[int, typer.Option("--radius-px", help="Spot radius, px.")]
Binning = Annotated[int, typer.Option(
    "--binning", min=1, max=2,
    help="Find spots on 2x2 binned frames (2, twice as fast) or full frames (1).")]
MinDiameter = Annotated[float, typer.Option(
    "--min-diameter-nm", help="Smallest diameter of interest (sets the linking radius), nm.")]
EngineOpt = Annotated[Engine, typer.Option("--engine", help="Kernel engine.")]


def _acquisition(pixel_size_nm, fps, temperature_c, exposure_ms, viscosity_cp) -> Acquisition:
    from ..nta import Acquisition

    return Acquisition(pixel_size_nm=pixel_size_nm, fps=fps, temperature_c=temperature_c,
                       exposure_ms=exposure_ms, viscosity_cp=viscosity_cp)


def _compile_notice() -> None:
    """One line on stderr when the kernels are not compiled yet (first use)."""
    from ..nta._kernels import kernels_cached

    if not kernels_cached():
        err_console.print("compiling the NTA kernels once (about a minute; "
                          "`exotrace nta warmup` does it ahead)", highlight=False, soft_wrap=True)


def _total_frames(paths: list[Path]) -> int | None:
    from ..nta import open_frames

    total = 0
    for p in paths:
        if p.suffix.lower() == ".csv":
            continue
        n = open_frames(p).n_frames
        if n is None:
            return None
        total += n
    return total


def simulate(
    out: Annotated[Path, typer.Argument(help="Output video (.avi); ground truth goes to .json.")],
    diameter_nm: Annotated[list[float], typer.Option(
        "--diameter-nm", help="Diameter of each population, nm (e.g. --diameter-nm 70 140).")],
    fraction: Annotated[list[float] | None, typer.Option(
        "--fraction", help="Number fraction of each population (default equal).")] = None,
    particles_per_ml: Annotated[float, typer.Option(
        "--particles-per-ml", help="Concentration in the cell, particles/mL.")] = 1e9,
    frames: Annotated[int, typer.Option("--frames", help="Number of frames.")] = 300,
    seed: Annotated[int | None, typer.Option("--seed", help="Random seed.")] = None,
    fps: Annotated[float, typer.Option("--fps", help="Frame rate, frames/s.")] = 25.0,
    exposure_ms: Annotated[float, typer.Option("--exposure-ms", help="Shutter, ms.")] = 30.0,
    pixel_size_nm: Annotated[float, typer.Option("--pixel-size-nm", help="Pixel size, nm.")] = 140.0,
    temperature_c: Annotated[float, typer.Option("--temperature-c", help="Temperature, C.")] = 22.0,
    viscosity_cp: Viscosity = None,
    drift_px_per_frame: Annotated[tuple[float, float], typer.Option(
        "--drift-px-per-frame", help="Flow drift x y, px/frame.")] = (0.0, 0.0),
    bit_depth: Annotated[int, typer.Option("--bit-depth", help="8 or 12.")] = 8,
    refractive_index: Annotated[float, typer.Option(
        "--refractive-index", help="Particle refractive index (EV 1.39, polystyrene 1.59).")] = 1.39,
    width: Annotated[int, typer.Option("--width", help="Frame width, px.")] = 640,
    height: Annotated[int, typer.Option("--height", help="Frame height, px.")] = 480,
    diameter_cv: Annotated[float, typer.Option(
        "--diameter-cv", help="Relative size spread within each population.")] = 0.0,
    sheet_fwhm_um: Annotated[float, typer.Option(
        "--sheet-fwhm-um", help="Light-sheet thickness (FWHM), um.")] = 10.0,
    psf_sigma_px: Annotated[float, typer.Option("--psf-sigma-px", help="PSF sigma, px.")] = 1.6,
    as_json: JsonOption = False,
) -> None:
    """Simulate an NTA video (lossless AVI) with a JSON ground truth beside it."""
    from ..nta.simulate import SimulationSettings
    from ..nta.simulate import simulate as run_simulation

    settings = SimulationSettings(
        diameters_nm=tuple(diameter_nm), fractions=tuple(fraction) if fraction else None,
        particles_per_ml=particles_per_ml, n_frames=frames, seed=seed, fps=fps,
        exposure_ms=exposure_ms, pixel_size_nm=pixel_size_nm, temperature_c=temperature_c,
        viscosity_cp=viscosity_cp, drift_px_per_frame=tuple(drift_px_per_frame),
        bit_depth=bit_depth, refractive_index=refractive_index, width_px=width,
        height_px=height, diameter_cv=diameter_cv, sheet_fwhm_um=sheet_fwhm_um,
        psf_sigma_px=psf_sigma_px)
    with progress_bar("simulating", frames, enabled=not as_json) as advance:
        truth = run_simulation(out, settings, progress=advance)
    summary = {
        "video": truth["video"],
        "truth_file": truth["truth_file"],
        "frames": frames,
        "diameters_nm": list(settings.diameters_nm),
        "fractions": list(settings.fractions or ()),
        "particles_per_ml": particles_per_ml,
        "n_particles": truth["n_particles"],
        "particles_in_view_per_frame": truth["particles_in_view_per_frame"],
        "seed": seed,
    }
    emit(summary, as_json=as_json)


def _analysis_human(data: dict) -> None:
    def fmt(v, spec=".1f"):
        return "" if v is None else format(v, spec)

    rows = [
        {"field": "tracks", "value": str(data["n_tracks"])},
        {"field": "mean (nm)", "value": fmt(data["mean_nm"])},
        {"field": "mode (nm)", "value": fmt(data["mode_nm"])},
        {"field": "SD (nm)", "value": fmt(data["sd_nm"])},
        {"field": "D10 / D50 / D90 (nm)", "value": " / ".join(
            fmt(data[k]) for k in ("d10_nm", "d50_nm", "d90_nm"))},
        {"field": "peaks (nm)", "value": ", ".join(fmt(p) for p in data["peaks_nm"])},
        {"field": "particles / frame", "value": fmt(data["particles_per_frame"], ".2f")},
        {"field": "particles / mL", "value": fmt(data["particles_per_ml"], ".3g")
         if data["particles_per_ml"] is not None else "(no calibration)"},
        {"field": "drift x, y (px/frame)", "value": ", ".join(
            fmt(v, ".2f") for v in data["drift_px_per_frame"])},
    ]
    print_table(rows, title="NTA result (all videos pooled)")
    if len(data["videos"]) > 1:
        print_table([{"video": Path(v["source"]).name, "frames": v["n_frames"],
                      "tracks": v["n_tracks"], "mean_nm": v["mean_nm"], "d50_nm": v["d50_nm"],
                      "particles/frame": v["particles_per_frame"]} for v in data["videos"]],
                    title="per video")
    for w in data["warnings"]:
        console.print(f"[yellow]warning:[/yellow] {w}", soft_wrap=True)
    if data.get("plot"):
        console.print(f"plot written to {data['plot']}")


def analyze(
    paths: Annotated[list[Path], typer.Argument(
        help="Videos, TIFF stacks, folders of frames or NanoSight AllTracks CSVs of one sample.")],
    pixel_size_nm: PixelSize,
    fps: Fps,
    temperature_c: Temperature,
    viscosity_cp: Viscosity = None,
    exposure_ms: Exposure = None,
    invert: Invert = False,
    calibration: Annotated[Path | None, typer.Option(
        "--calibration", help="Calibration JSON from `exotrace nta calibrate`.")] = None,
    dilution: Annotated[float, typer.Option(
        "--dilution", help="Dilution factor of the measured suspension.")] = 1.0,
    plot: Annotated[Path | None, typer.Option(
        "--plot", help="Write the distribution plot (.png or .svg).")] = None,
    threshold_sigma: Threshold = 5.0,
    radius_px: Radius = 9,
    binning: Binning = 2,
    min_diameter_nm: MinDiameter = 30.0,
    method: Annotated[SizeMethod, typer.Option("--method", help="Size method.")] = SizeMethod.em,
    engine: EngineOpt = Engine.auto,
    as_json: JsonOption = False,
) -> None:
    """Size distribution and concentration of one sample from its videos."""
    from ..nta import analyze_videos
    from ..nta.concentration import Calibration

    acq = _acquisition(pixel_size_nm, fps, temperature_c, exposure_ms, viscosity_cp)
    if not math.isfinite(dilution) or dilution <= 0:
        raise InvalidInput(f"--dilution must be a positive factor, got {dilution}")
    if plot is not None and plot.suffix.lower() not in (".png", ".svg"):
        raise InvalidInput(f"--plot {plot}: use a .png or .svg file name")
    cal = Calibration.from_json(calibration) if calibration is not None else None
    _compile_notice()
    total = _total_frames(paths)
    with progress_bar("analysing", total, enabled=not as_json) as advance:
        result = analyze_videos(paths, acq, calibration=cal, dilution=dilution, invert=invert,
                                threshold_sigma=threshold_sigma, radius_px=radius_px,
                                binning=binning,
                                min_diameter_nm=min_diameter_nm, method=method.value,
                                engine=engine.value, progress=advance)
    data = result.to_dict()
    if plot is not None:
        from ..nta.plots import plot_distribution

        title = ", ".join(Path(p).name for p in paths)
        data["plot"] = str(plot_distribution(result.distribution, plot, title=title))
    emit(data, as_json=as_json, human=_analysis_human)


def calibrate(
    paths: Annotated[list[Path], typer.Argument(help="Video(s) of beads of known concentration.")],
    particles_per_ml: Annotated[float, typer.Option(
        "--particles-per-ml", help="Bead concentration in the measured suspension, particles/mL.")],
    pixel_size_nm: PixelSize,
    fps: Fps,
    temperature_c: Temperature,
    output: Annotated[Path, typer.Option("-o", "--output", help="Calibration JSON to write.")],
    bead_diameter_nm: Annotated[float | None, typer.Option(
        "--bead-diameter-nm", help="Nominal bead diameter, nm.")] = None,
    viscosity_cp: Viscosity = None,
    exposure_ms: Exposure = None,
    invert: Invert = False,
    threshold_sigma: Threshold = 5.0,
    radius_px: Radius = 9,
    binning: Binning = 2,
    min_diameter_nm: MinDiameter = 30.0,
    engine: EngineOpt = Engine.auto,
    as_json: JsonOption = False,
) -> None:
    """Calibrate the effective detection volume from a bead video."""
    from ..nta import calibrate_videos

    acq = _acquisition(pixel_size_nm, fps, temperature_c, exposure_ms, viscosity_cp)
    _compile_notice()
    total = _total_frames(paths)
    with progress_bar("calibrating", total, enabled=not as_json) as advance:
        cal = calibrate_videos(paths, acq, particles_per_ml=particles_per_ml,
                               bead_diameter_nm=bead_diameter_nm, invert=invert,
                               threshold_sigma=threshold_sigma, radius_px=radius_px,
                               binning=binning,
                               min_diameter_nm=min_diameter_nm, engine=engine.value,
                               progress=advance)
    written = cal.to_json(output)
    data = {"calibration": str(written), **_calibration_dict(cal)}
    emit(data, as_json=as_json)


def warmup(as_json: JsonOption = False) -> None:
    """Compile the NTA kernels now (once per installation), not in the first analysis."""
    from ..nta._warmup import warm_up

    _compile_notice()
    emit(warm_up(), as_json=as_json)


def _calibration_dict(cal: Calibration) -> dict:
    from dataclasses import asdict

    return asdict(cal)


def register(app: typer.Typer) -> None:
    """Add the ``nta`` command group to the root app."""
    nta = typer.Typer(help="Nanoparticle tracking analysis: simulate, analyze, calibrate.",
                      no_args_is_help=True)
    nta.command("simulate", cls=_MultiValueCommand)(simulate)
    nta.command("analyze")(analyze)
    nta.command("calibrate")(calibrate)
    nta.command("warmup")(warmup)
    from .nta_batch import batch  # many videos on Dask: exotrace.batch

    nta.command("batch")(batch)
    app.add_typer(nta, name="nta")
