"""Particle concentration: particles per frame over a calibrated effective volume.

The effective volume is the field of view times the depth of the light sheet
over which particles are detected. It is calibrated with a video of beads of
known concentration (effective volume = particles per frame / concentration).
Where the beads' spot brightness is usable, the calibration also yields the
sheet waist w of the profile exp(-2 z^2 / w^2), so that the visible depth of
other particles follows their own brightness: depth(d) = w sqrt(2 ln(I0(d)/T))
(see :mod:`exotrace.nta._sizing_depth`). Then::

    concentration = sum_j  N_j / (A * depth(d_j))

with N_j the particles present per frame in size bin j and A the field area.

Particles per frame count the points of every track with at least one
step (the kept tracks plus ``diffusion.short``; a step may bridge a linking
gap, see :func:`~exotrace.nta.diffusion.track_diffusion`) divided by the
frames of the video; isolated single spots (no step, often noise) are not
counted. The calibration counts the same way.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field, fields
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from ..errors import FileFormatError, InsufficientData, InvalidInput
from ..physics import diameter_nm_from_diffusion, effective_viscosity_pa_s
from ._sizing_depth import quantile_log_brightness_ratio
from ._types import Acquisition, Tracks
from .diffusion import TrackDiffusion
from .sizing import SizeDistribution

__all__ = ["Calibration", "ConcentrationResult", "calibrate", "estimate_concentration"]

# 2: records ``intensity_threshold`` (how the intensity threshold was found).
# Version-1 files read as "dimmest-spots".
SCHEMA_VERSION = 2
_READABLE_VERSIONS = (1, 2)
INTENSITY_THRESHOLDS = ("detection", "dimmest-spots")
UM3_PER_ML = 1e12
MIN_BEAD_LOG_RATIO = 0.2  # beads barely above threshold give no usable waist
DEPTH_MODELS = ("gaussian-sheet", "constant")


@dataclass(frozen=True)
class Calibration:
    """Effective detection volume measured with beads of known concentration.

    Attributes
    ----------
    effective_volume_ml : float
        Detection volume for the beads over the calibration field, mL.
    field_area_um2 : float
        Field of view of the calibration video, um^2.
    effective_depth_um : float
        effective volume / field area, um.
    depth_model : str
        ``"gaussian-sheet"`` (depth scales with brightness through
        ``sheet_waist_um``) or ``"constant"`` (same depth for every size).
    sheet_waist_um : float or None
        w in exp(-2 z^2 / w^2), um; ``None`` for the constant model.
    bead_log_brightness_ratio : float or None
        ln(I0 / T) of the beads.
    bead_particles_per_ml : float
        Bead concentration given, particles/mL (in the measured suspension).
    bead_diameter_nm : float or None
        Nominal bead diameter given, nm.
    measured_diameter_nm : float
        Median per-track diameter of the beads (CVE), nm.
    particles_per_frame : float
        Bead particles per frame.
    n_tracks, n_frames : int
        Tracks used and frames of the calibration video.
    pixel_size_nm, fps, temperature_c : float
        Acquisition used.
    exposure_ms : float or None
        Acquisition used.
    created_utc : str
        ISO 8601 time of the calibration.
    source : str
        The calibration video.
    intensity_threshold : str
        How the intensity threshold T of u = ln(I0 / T) was found:
        ``"detection"`` (the detection threshold mapped to intensity units) or
        ``"dimmest-spots"`` (0.5th percentile of the intensities: tracks
        without peaks, and every calibration written before schema 2). A
        sample measured the other way gets a warning.
    """

    effective_volume_ml: float
    field_area_um2: float
    effective_depth_um: float
    depth_model: str
    sheet_waist_um: float | None
    bead_log_brightness_ratio: float | None
    bead_particles_per_ml: float
    bead_diameter_nm: float | None
    measured_diameter_nm: float
    particles_per_frame: float
    n_tracks: int
    n_frames: int
    pixel_size_nm: float
    fps: float
    temperature_c: float
    exposure_ms: float | None
    created_utc: str
    source: str = ""
    intensity_threshold: str = "detection"
    schema_version: int = SCHEMA_VERSION

    def to_json(self, path) -> Path:
        """Write the calibration as JSON to ``path`` (returned)."""
        path = Path(path)
        try:
            path.write_text(json.dumps(asdict(self), indent=2, allow_nan=False) + "\n",
                            encoding="utf-8")
        except OSError as exc:
            raise FileFormatError(path, f"cannot write calibration: {exc.strerror or exc}") from exc
        return path

    @classmethod
    def from_json(cls, path) -> Calibration:
        """Read and validate a calibration written by :meth:`to_json`.

        Raises
        ------
        FileFormatError
            Missing or unreadable file, invalid JSON, missing or wrong fields.
        """
        path = Path(path)
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError as exc:
            raise FileFormatError(path, "calibration file not found") from exc
        except (OSError, UnicodeDecodeError) as exc:
            raise FileFormatError(path, f"cannot read calibration: {exc}") from exc
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise FileFormatError(path, f"not valid JSON ({exc.msg})", line=exc.lineno) from exc
        if not isinstance(data, dict):
            raise FileFormatError(path, "expected a JSON object with calibration fields")
        return cls._from_mapping(data, path)

    @classmethod
    def _from_mapping(cls, data: dict, path) -> Calibration:
        version = data.get("schema_version", SCHEMA_VERSION)
        if isinstance(version, bool) or version not in _READABLE_VERSIONS:
            raise FileFormatError(path, f"unsupported calibration schema version {version!r} "
                                  f"(this exotrace reads {', '.join(map(str, _READABLE_VERSIONS))})",
                                  field="schema_version")
        if version == 1:
            if "intensity_threshold" in data:
                raise FileFormatError(path, "unknown calibration field 'intensity_threshold' "
                                      "in a schema 1 file", field="intensity_threshold")
            data = {**data, "intensity_threshold": "dimmest-spots",
                    "schema_version": SCHEMA_VERSION}
        optional = {"sheet_waist_um", "bead_log_brightness_ratio", "bead_diameter_nm",
                    "exposure_ms", "source", "schema_version"}
        names = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - names)
        if unknown:
            raise FileFormatError(path, f"unknown calibration field {unknown[0]!r}", field=unknown[0])
        missing = sorted(names - optional - set(data))
        if missing:
            raise FileFormatError(path, "required calibration field is missing", field=missing[0])
        positive = ("effective_volume_ml", "field_area_um2", "effective_depth_um",
                    "bead_particles_per_ml", "particles_per_frame", "pixel_size_nm", "fps",
                    "temperature_c", "measured_diameter_nm")
        for name in positive:
            _require_number(data, name, path, positive=True)
        for name in ("sheet_waist_um", "bead_diameter_nm", "bead_log_brightness_ratio"):
            if data.get(name) is not None:
                _require_number(data, name, path, positive=True)
        if data.get("exposure_ms") is not None:
            _require_number(data, "exposure_ms", path, positive=False)
        for name in ("n_tracks", "n_frames"):
            value = data[name]
            if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
                raise FileFormatError(path, f"expected a positive integer, got {value!r}", field=name)
        if data["intensity_threshold"] not in INTENSITY_THRESHOLDS:
            raise FileFormatError(path, "intensity threshold must be one of "
                                  f"{', '.join(INTENSITY_THRESHOLDS)}, got "
                                  f"{data['intensity_threshold']!r}", field="intensity_threshold")
        if data["depth_model"] not in DEPTH_MODELS:
            raise FileFormatError(path, f"depth model must be one of {', '.join(DEPTH_MODELS)}, "
                                  f"got {data['depth_model']!r}", field="depth_model")
        if data["depth_model"] == "gaussian-sheet" and data.get("sheet_waist_um") is None:
            raise FileFormatError(path, "gaussian-sheet model needs sheet_waist_um",
                                  field="sheet_waist_um")
        for name in ("created_utc", "source"):
            if name in data and not isinstance(data[name], str):
                raise FileFormatError(path, f"expected text, got {data[name]!r}", field=name)
        try:
            datetime.fromisoformat(data["created_utc"])
        except ValueError as exc:
            raise FileFormatError(path, f"not an ISO 8601 time: {data['created_utc']!r}",
                                  field="created_utc") from exc
        try:
            Acquisition(pixel_size_nm=data["pixel_size_nm"], fps=data["fps"],
                        temperature_c=data["temperature_c"], exposure_ms=data.get("exposure_ms"))
        except InvalidInput as exc:
            raise FileFormatError(path, f"acquisition fields are inconsistent: {exc}") from exc
        data = dict(data)
        for name in ("sheet_waist_um", "bead_log_brightness_ratio", "bead_diameter_nm",
                     "exposure_ms"):
            data.setdefault(name, None)
        return cls(**data)


def _require_number(data: dict, name: str, path, *, positive: bool) -> None:
    value = data.get(name)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise FileFormatError(path, f"expected a finite number, got {value!r}", field=name)
    if positive and value <= 0:
        raise FileFormatError(path, f"expected a positive number, got {value!r}", field=name)
    if not positive and value < 0:
        raise FileFormatError(path, f"expected a number >= 0, got {value!r}", field=name)


@dataclass(frozen=True)
class ConcentrationResult:
    """Particles per frame and, with a calibration, particles per mL.

    Attributes
    ----------
    particles_per_frame : float
        Mean detected particles per frame (points of tracks with >= 1 step / frames).
    particles_per_ml : float or None
        Concentration of the original sample (times ``dilution``), particles/mL;
        ``None`` without calibration.
    effective_volume_ml : float or None
        particles per frame / concentration in the measured suspension, mL.
    depth_model : str or None
        Depth model used (``"gaussian-sheet"`` or ``"constant"``).
    dilution : float
        Dilution factor applied.
    n_points, n_frames : int
        Points counted and frames of the video.
    warnings : list of str
    """

    particles_per_frame: float
    particles_per_ml: float | None
    effective_volume_ml: float | None
    depth_model: str | None
    dilution: float
    n_points: int
    n_frames: int
    warnings: list = field(default_factory=list)


_THRESHOLD_WORDS = {"detection": "the detection threshold",
                    "dimmest-spots": "the dimmest spots"}


def _field_area_um2(tracks: Tracks, acquisition: Acquisition) -> float:
    rows, cols = tracks.frame_shape
    if rows <= 0 or cols <= 0:
        raise InvalidInput(f"{tracks.source or 'tracks'}: frame shape {tracks.frame_shape} "
                           "must be positive")
    px_um = acquisition.pixel_size_nm / 1000.0
    return float(rows * cols * px_um * px_um)


def _particles_per_frame(tracks: Tracks, diffusion: TrackDiffusion) -> tuple[float, int]:
    if tracks.n_frames <= 0:
        raise InvalidInput(f"{tracks.source or 'tracks'}: n_frames must be positive, "
                           f"got {tracks.n_frames}")
    if len(diffusion) == 0:
        raise InsufficientData(f"{tracks.source or 'tracks'}: no tracks to count")
    n_points = int(diffusion.n_points.sum())
    # spots hidden by brighter neighbours counted back (visible_points) where
    # known for every track
    counted = float(diffusion.points().sum())
    if diffusion.short is not None:
        n_points += int(diffusion.short.n_points.sum())
        counted += float(diffusion.short.n_points.sum() if (diffusion.short.visible_points is None
                                                             or diffusion.visible_points is None)
                         else diffusion.short.visible_points.sum())
    return counted / tracks.n_frames, n_points


def _counted_log_intensities(tracks: Tracks, diffusion: TrackDiffusion) -> np.ndarray:
    """ln intensity of the positive spots of the tracks that are counted (the kept
    ones and the short ones with a step: see :func:`_particles_per_frame`)."""
    ids = diffusion.track_id
    if diffusion.short is not None:
        ids = np.concatenate((ids, diffusion.short.track_id))
    inten = np.asarray(tracks.intensity, dtype=float)
    use = np.isin(np.asarray(tracks.track_id), ids) & (inten > 0)
    return np.log(inten[use])


def calibrate(tracks: Tracks, diffusion: TrackDiffusion, acquisition: Acquisition, *,
              particles_per_ml: float, bead_diameter_nm: float | None = None) -> Calibration:
    """Calibrate the effective detection volume with beads of known concentration.

    Parameters
    ----------
    tracks : Tracks
        Tracks of the bead video.
    diffusion : TrackDiffusion
        Their diffusion (defines the kept tracks).
    acquisition : Acquisition
        Pixel size (nm), fps, temperature (C), exposure (ms).
    particles_per_ml : float
        Bead concentration in the measured suspension, particles/mL.
    bead_diameter_nm : float, optional
        Nominal bead diameter, nm (recorded).

    Returns
    -------
    Calibration

    Raises
    ------
    InvalidInput
        Non-positive concentration or diameter, bad frame shape or frame count.
    InsufficientData
        No tracks.
    """
    if not (isinstance(particles_per_ml, (int, float)) and math.isfinite(particles_per_ml)
            and particles_per_ml > 0):
        raise InvalidInput(f"particles-per-ml must be a positive number, got {particles_per_ml!r}")
    if bead_diameter_nm is not None and not (math.isfinite(bead_diameter_nm) and bead_diameter_nm > 0):
        raise InvalidInput(f"bead-diameter-nm must be a positive number, got {bead_diameter_nm!r}")
    ppf, _ = _particles_per_frame(tracks, diffusion)
    area = _field_area_um2(tracks, acquisition)
    volume_ml = ppf / particles_per_ml
    depth_um = volume_ml * UM3_PER_ML / area
    waist = None
    u_b = None
    model = "constant"
    # Integrated intensities against the detection threshold in intensity units
    # (``intensity_floor``), also when the tracks carry band-passed peaks: the
    # beads' peaks saturate an 8-bit camera, their integrated intensities much
    # less (simulated 8-bit seed pairs: 100 nm EVs after a polystyrene
    # calibration -3.5 % with intensities, about -7 % with peaks; 12-bit
    # within 2 % either way). The sample side uses the distribution's
    # intensity_log_brightness_ratio to match.
    if np.isfinite(diffusion.intensity_floor) and diffusion.intensity_floor > 0:
        u = quantile_log_brightness_ratio(_counted_log_intensities(tracks, diffusion),
                                          float(np.log(diffusion.intensity_floor)))
        if np.isfinite(u) and u >= MIN_BEAD_LOG_RATIO:
            u_b = float(u)
            waist = depth_um / math.sqrt(2.0 * u_b)
            model = "gaussian-sheet"
    eta = effective_viscosity_pa_s(acquisition.temperature_c, acquisition.viscosity_cp)
    d_nm = diameter_nm_from_diffusion(diffusion.diffusion_m2_per_s,
                                      temperature_c=acquisition.temperature_c, viscosity_pa_s=eta)
    d_nm = np.asarray(d_nm, dtype=float).reshape(-1)
    measured = float(np.nanmedian(d_nm)) if np.any(np.isfinite(d_nm)) else float("nan")
    if not np.isfinite(measured):
        raise InsufficientData(f"{tracks.source or 'tracks'}: no bead track has a positive "
                               "diffusion estimate")
    return Calibration(
        effective_volume_ml=float(volume_ml),
        field_area_um2=area,
        effective_depth_um=float(depth_um),
        depth_model=model,
        sheet_waist_um=None if waist is None else float(waist),
        bead_log_brightness_ratio=u_b,
        bead_particles_per_ml=float(particles_per_ml),
        bead_diameter_nm=None if bead_diameter_nm is None else float(bead_diameter_nm),
        measured_diameter_nm=measured,
        particles_per_frame=float(ppf),
        n_tracks=len(diffusion),
        n_frames=int(tracks.n_frames),
        pixel_size_nm=float(acquisition.pixel_size_nm),
        fps=float(acquisition.fps),
        temperature_c=float(acquisition.temperature_c),
        exposure_ms=acquisition.exposure_ms,
        created_utc=datetime.now(UTC).isoformat(timespec="seconds"),
        source=tracks.source,
        intensity_threshold=diffusion.intensity_floor_method,
    )


def estimate_concentration(tracks: Tracks, diffusion: TrackDiffusion,
                           distribution: SizeDistribution | None, acquisition: Acquisition, *,
                           calibration: Calibration | None = None,
                           dilution: float = 1.0) -> ConcentrationResult:
    """Particles per frame and, with a calibration, particles per mL.

    Parameters
    ----------
    tracks : Tracks
        Tracks of the sample video (for frames and field of view).
    diffusion : TrackDiffusion
        Their diffusion (defines the kept tracks).
    distribution : SizeDistribution or None
        Its size distribution; with a brightness model and a gaussian-sheet
        calibration, each size gets its own visible depth.
    acquisition : Acquisition
        Pixel size (nm) etc. of the sample video.
    calibration : Calibration, optional
        From :func:`calibrate`; without it ``particles_per_ml`` is ``None``.
    dilution : float
        The sample was diluted this many times before measuring (>= 1 usually).

    Returns
    -------
    ConcentrationResult
    """
    if not (isinstance(dilution, (int, float)) and math.isfinite(dilution) and dilution > 0):
        raise InvalidInput(f"dilution must be a positive number, got {dilution!r}")
    ppf, n_points = _particles_per_frame(tracks, diffusion)
    warnings: list[str] = []
    if ppf < 1.0:
        warnings.append(f"only {ppf:.2g} particles per frame: concentration is uncertain")
    if calibration is None:
        warnings.append("no calibration: particles per mL not computed")
        return ConcentrationResult(particles_per_frame=ppf, particles_per_ml=None,
                                   effective_volume_ml=None, depth_model=None,
                                   dilution=float(dilution), n_points=n_points,
                                   n_frames=int(tracks.n_frames), warnings=warnings)
    if abs(calibration.pixel_size_nm - acquisition.pixel_size_nm) > 0.01 * acquisition.pixel_size_nm:
        warnings.append(f"calibration was made at {calibration.pixel_size_nm:g} nm per pixel, "
                        f"this video has {acquisition.pixel_size_nm:g}: the optics may differ")
    if (calibration.exposure_ms or 0.0) != (acquisition.exposure_ms or 0.0) or \
            abs(calibration.fps - acquisition.fps) > 1e-6 * acquisition.fps:
        warnings.append("calibration used another frame rate or exposure")
    area = _field_area_um2(tracks, acquisition)
    use_sheet = (calibration.depth_model == "gaussian-sheet" and distribution is not None
                 and distribution.log_brightness_ratio is not None
                 and distribution.present_fraction is not None)
    if use_sheet and calibration.intensity_threshold != diffusion.intensity_floor_method:
        warnings.append(
            f"the calibration found the intensity threshold from "
            f"{_THRESHOLD_WORDS[calibration.intensity_threshold]}, this sample from "
            f"{_THRESHOLD_WORDS[diffusion.intensity_floor_method]}: sizes other than the "
            "beads' get a biased depth (100 nm EVs read ~10 % low with a calibration "
            "written before schema 2); calibrate again with this version")
    if use_sheet:
        u = (distribution.intensity_log_brightness_ratio
             if distribution.intensity_log_brightness_ratio is not None
             else distribution.log_brightness_ratio)
        depth_um = calibration.sheet_waist_um * np.sqrt(2.0 * u)
        per_um3 = ppf * float(np.sum(distribution.present_fraction / (area * depth_um)))
        model = "gaussian-sheet"
    else:
        if calibration.depth_model == "gaussian-sheet":
            warnings.append("no brightness model for this sample: the beads' depth is used "
                            "for every size")
        per_um3 = ppf / (area * calibration.effective_depth_um)
        model = "constant"
    per_ml = per_um3 * UM3_PER_ML
    return ConcentrationResult(
        particles_per_frame=ppf,
        particles_per_ml=float(per_ml * dilution),
        effective_volume_ml=float(ppf / per_ml),
        depth_model=model,
        dilution=float(dilution),
        n_points=n_points,
        n_frames=int(tracks.n_frames),
        warnings=warnings,
    )
