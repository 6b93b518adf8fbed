"""The one record every instrument reader returns.

A reader turns a vendor file into an :class:`InstrumentResult`: the same
fields for every instrument (sample, conditions, concentration, number-weighted
size statistics, per-video values, warnings), plus format-specific extras in
typed optional fields (FCS events and channels, protein results) and in the
``extra`` mapping (weightings, 1-nm distributions, percentiles, diffusion data,
conditions and settings, per-particle tables).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from datetime import date, datetime
from typing import Any

import numpy as np

__all__ = [
    "BULKY_EXTRA_KEYS",
    "FcsChannel",
    "InstrumentResult",
    "ProteinSample",
    "StandardCurve",
    "VideoResult",
    "jsonable",
]

# ``extra`` keys holding large arrays (distributions, per-particle tables, raw
# events). ``to_dict(full=False)`` leaves them out so a bulk import stays readable.
BULKY_EXTRA_KEYS: frozenset[str] = frozenset(
    {"distributions", "percentiles", "particles", "log_distribution", "size_distribution",
     "event_data", "wells"}
)


@dataclass(frozen=True)
class VideoResult:
    """Values of one video (NanoSight) or one position/run (ZetaView).

    Attributes
    ----------
    name : str
        Video (file) name as the vendor wrote it.
    particles_per_ml : float or None
        Concentration in the original sample, particles/mL (dilution-adjusted as the
        vendor printed it).
    measured_particles_per_ml : float or None
        Concentration in the measured suspension, particles/mL, where the dilution is known.
    mean_nm, mode_nm, sd_nm, d10_nm, d50_nm, d90_nm : float or None
        Number-weighted size statistics, nm. ``None`` where the video has no results.
    valid_tracks : float or None
        Tracks that entered the size distribution.
    has_results : bool
        False for videos the vendor reports as all zeros / blank (failed video).
    warnings : tuple of str
        The vendor's warnings for this video.
    """

    name: str
    particles_per_ml: float | None = None
    measured_particles_per_ml: float | None = None
    mean_nm: float | None = None
    mode_nm: float | None = None
    sd_nm: float | None = None
    d10_nm: float | None = None
    d50_nm: float | None = None
    d90_nm: float | None = None
    valid_tracks: float | None = None
    has_results: bool = True
    warnings: tuple[str, ...] = ()


@dataclass(frozen=True)
class FcsChannel:
    """One FCS parameter: ``$PnN`` name, ``$PnS`` label, ``$PnR`` range."""

    index: int
    name: str
    label: str | None = None
    range: float | None = None


@dataclass(frozen=True)
class ProteinSample:
    """Protein result of one sample on a BCA / micro-BCA plate.

    Attributes
    ----------
    sample : str
        Sample ID from the layout.
    protein_ug_per_ml : float or None
        Concentration in the original sample (curve value times dilution), ug/mL.
        Reported even when flagged out of range; ``None`` only when the absorbance
        cannot be inverted on the curve (beyond an asymptote of the 4PL).
    measured_ug_per_ml : float or None
        Concentration in the well (before the dilution factor), ug/mL.
    absorbance_mean : float
        Mean blank-subtracted absorbance of the replicates (A562).
    cv_percent : float or None
        Coefficient of variation of the replicate raw absorbances, percent (None for one replicate).
    replicates : int
    dilution_factor : float
    flags : tuple of str
        ``"below-lowest-standard"``, ``"above-highest-standard"``, ``"not-on-curve"``,
        ``"high-cv"``.
    """

    sample: str
    protein_ug_per_ml: float | None
    measured_ug_per_ml: float | None
    absorbance_mean: float
    cv_percent: float | None
    replicates: int
    dilution_factor: float
    flags: tuple[str, ...] = ()


@dataclass(frozen=True)
class StandardCurve:
    """A fitted standard curve absorbance = f(concentration in ug/mL).

    Attributes
    ----------
    model : str
        ``"linear"`` (A = a + b c) or ``"4pl"`` (A = d + (a - d) / (1 + (c / c50)^b)).
    parameters : dict
        ``{"intercept", "slope"}`` for linear, ``{"a", "b", "c50", "d"}`` for 4PL.
    r_squared : float
    residual_se : float
        Residual standard error of the fit, absorbance units.
    aicc : dict
        AICc of every model tried (the lowest wins).
    concentration_range_ug_per_ml : tuple of float
        Lowest and highest non-zero standard.
    """

    model: str
    parameters: dict[str, float]
    r_squared: float
    residual_se: float
    aicc: dict[str, float]
    concentration_range_ug_per_ml: tuple[float, float]


@dataclass(frozen=True)
class InstrumentResult:
    """What one instrument file says, on one footing for every instrument.

    Attributes
    ----------
    file : str
        Path the record came from.
    format : str
        ``"nanosight-summary"``, ``"nanosight-nano"``, ``"nanosight-particledata"``,
        ``"nanosight-alltracks"``, ``"zetaview-txt"``, ``"fcs"`` or ``"bca-plate"``.
    instrument : str
        Instrument family and model where known (``"NanoSight"``, ``"ZetaView"`` ...).
    software_version : str or None
        As written in the file; ``None`` where it says "Unknown" or nothing.
    sample : str or None
        Sample name / description.
    measured_at : datetime or None
        Acquisition time, timezone-aware. Instrument clocks carry no zone; they are
        taken as UTC unless the reader is given ``instrument_timezone``.
    temperature_c : float or None
        Cell temperature, degrees C (mean over videos).
    viscosity_cp : float or None
        Medium viscosity used by the vendor, cP (mean over videos).
    dilution_factor : float or None
        Dilution of the sample before measurement; ``None`` when not recorded or when
        videos disagree.
    particles_per_ml : float or None
        Particles per mL in the original sample.
    measured_particles_per_ml : float or None
        Particles per mL in the measured suspension.
    mean_nm, mode_nm, sd_nm, d10_nm, d50_nm, d90_nm : float or None
        Number-weighted size statistics, nm.
    videos : tuple of VideoResult
    warnings : tuple of str
        The vendor's warnings and ours.
    events, channels, events_per_ul : FCS only
        Event count (``$TOT``), parameters, events per microlitre where ``$VOL`` allows.
    protein_samples, standard_curve : protein plates only
    extra : dict
        Format-specific data, see each reader.
    """

    file: str
    format: str
    instrument: str
    software_version: str | None = None
    sample: str | None = None
    measured_at: datetime | None = None
    temperature_c: float | None = None
    viscosity_cp: float | None = None
    dilution_factor: float | None = None
    particles_per_ml: float | None = None
    measured_particles_per_ml: float | None = None
    mean_nm: float | None = None
    mode_nm: float | None = None
    sd_nm: float | None = None
    d10_nm: float | None = None
    d50_nm: float | None = None
    d90_nm: float | None = None
    videos: tuple[VideoResult, ...] = ()
    warnings: tuple[str, ...] = ()
    events: int | None = None
    channels: tuple[FcsChannel, ...] | None = None
    events_per_ul: float | None = None
    protein_samples: tuple[ProteinSample, ...] | None = None
    standard_curve: StandardCurve | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self, *, full: bool = False) -> dict[str, Any]:
        """Plain JSON-ready mapping (the ``exotrace import --json`` object).

        Parameters
        ----------
        full : bool
            Include bulky ``extra`` entries (1-nm distributions, percentile tables,
            per-particle tables, raw events). Off by default.

        Returns
        -------
        dict
            Keys: every field above; ``None`` for what does not apply. Typed optional
            fields that are ``None`` (FCS/protein fields on other formats) are left out.
        """
        out: dict[str, Any] = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name in {"events", "channels", "events_per_ul", "protein_samples",
                          "standard_curve"} and value is None:
                continue
            if f.name == "extra":
                value = {k: v for k, v in value.items() if full or k not in BULKY_EXTRA_KEYS}
            out[f.name] = jsonable(value)
        return out


def jsonable(value: Any) -> Any:
    """Convert dataclasses, numpy values, dates and tuples to JSON types (nan -> None)."""
    # Exact-type fast paths first: bulk imports convert thousands of values per file.
    t = type(value)
    if t is float:
        return value if math.isfinite(value) else None
    if t is str or t is int or t is bool or value is None:
        return value
    if t is list or t is tuple:
        return [jsonable(v) for v in value]
    if t is dict:
        return {str(k): jsonable(v) for k, v in value.items()}
    if hasattr(value, "__dataclass_fields__") and not isinstance(value, type):
        return {f.name: jsonable(getattr(value, f.name)) for f in fields(value)}
    if isinstance(value, Mapping):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (str, bool)) or value is None:
        return value
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        v = float(value)
        return v if math.isfinite(v) else None
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    if isinstance(value, np.ndarray):
        return jsonable(value.tolist())
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    return str(value)
