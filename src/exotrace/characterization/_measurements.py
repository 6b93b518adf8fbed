"""Adapter from instrument results to checklist evidence (duck typing).

The checklist consumes what :func:`exotrace.instruments.read_file` returns, but
only through this module and only by attribute name, so any object with the
same attributes works (tests use small stand-ins):

``file``, ``format``, ``instrument``, ``sample``, ``particles_per_ml``,
``mean_nm``, ``mode_nm``, ``d50_nm``, ``dilution_factor``, ``warnings``,
``events`` (FCS) and ``protein_samples`` (protein plates: items with
``sample``, ``protein_ug_per_ml`` and ``flags``).

What each format proves:

- NanoSight / ZetaView (NTA) and TRPS exports: a single-particle counting
  method, and a particle concentration (a global measure);
- FCS files: single-particle counting by flow cytometry (events), no
  concentration unless the reader gives one;
- protein plates (BCA, micro-BCA, Bradford): a protein concentration per sample
  (a global measure).
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable
from dataclasses import dataclass

from ..errors import InvalidInput

__all__ = [
    "MeasurementEvidence",
    "ProteinValue",
    "measurement_evidence",
]

# format prefix -> single-particle counting method it demonstrates
_COUNTING_FORMATS: tuple[tuple[str, str], ...] = (
    ("nanosight", "NTA"),
    ("zetaview", "NTA"),
    ("nta", "NTA"),
    ("trps", "TRPS"),
    ("qnano", "TRPS"),
    ("exoid", "TRPS"),
    ("fcs", "flow cytometry"),
)


@dataclass(frozen=True)
class ProteinValue:
    """One sample's protein concentration from a plate, ug/mL of the original sample."""

    sample: str
    protein_ug_per_ml: float
    flags: tuple[str, ...] = ()


@dataclass(frozen=True)
class MeasurementEvidence:
    """What one imported measurement contributes to the checklist.

    Attributes
    ----------
    file : str
        The file it came from (named as evidence).
    format, instrument : str
    sample : str or None
    counting_method : str or None
        "NTA", "TRPS" or "flow cytometry" when the file shows single-particle counting.
    particles_per_ml : float or None
        Particles/mL of the original sample (dilution-corrected).
    protein : tuple of ProteinValue
        Protein concentrations, ug/mL (protein plates).
    mean_nm, mode_nm, d50_nm : float or None
        Number-weighted size statistics, nm.
    events : int or None
        Flow-cytometry events.
    warnings : tuple of str
    summary : str
        One line naming the file and what it gave.
    """

    file: str
    format: str
    instrument: str
    sample: str | None
    counting_method: str | None
    particles_per_ml: float | None
    protein: tuple[ProteinValue, ...]
    mean_nm: float | None
    mode_nm: float | None
    d50_nm: float | None
    events: int | None
    warnings: tuple[str, ...]
    summary: str


def _number(obj: object, name: str) -> float | None:
    value = getattr(obj, name, None)
    if value is None or isinstance(value, bool):
        return None
    try:
        v = float(value)
    except (TypeError, ValueError):
        return None
    return v if math.isfinite(v) else None


def _text(obj: object, name: str) -> str | None:
    value = getattr(obj, name, None)
    if value is None:
        return None
    text = " ".join(str(value).split())
    return text or None


def _file_name(obj: object) -> str:
    for name in ("file", "path", "source"):
        text = _text(obj, name)
        if text:
            return text
    return "<measurement>"


def _protein_values(obj: object) -> tuple[ProteinValue, ...]:
    samples = getattr(obj, "protein_samples", None)
    out: list[ProteinValue] = []
    if isinstance(samples, Iterable) and not isinstance(samples, (str, bytes)):
        for i, item in enumerate(samples):
            value = _number(item, "protein_ug_per_ml")
            if value is None or value <= 0:
                continue  # not on the curve or blank: nothing to pair with particles
            name = _text(item, "sample") or f"sample {i + 1}"
            flags = tuple(str(f) for f in (getattr(item, "flags", ()) or ()))
            out.append(ProteinValue(name, value, flags))
    direct = _number(obj, "protein_ug_per_ml")
    if direct is not None and direct > 0:
        out.append(ProteinValue(_text(obj, "sample") or "sample", direct, ()))
    return tuple(out)


def _fmt(value: float | None, unit: str) -> str:
    return "" if value is None else f"{value:.3g} {unit}"


def measurement_evidence(result: object) -> MeasurementEvidence:
    """Turn an instrument result (or any object with its attributes) into evidence.

    Parameters
    ----------
    result : object
        An :class:`exotrace.instruments.InstrumentResult` or a stand-in with
        the attributes listed in the module docstring.

    Returns
    -------
    MeasurementEvidence

    Raises
    ------
    InvalidInput
        When the object has no ``format`` attribute (it is not a measurement).
    """
    fmt = _text(result, "format")
    file = _file_name(result)
    if fmt is None:
        raise InvalidInput(f"{file}: not an instrument result (no 'format' attribute)")
    low = fmt.lower()
    counting = next((method for prefix, method in _COUNTING_FORMATS if low.startswith(prefix)),
                    None)
    particles = _number(result, "particles_per_ml")
    if particles is not None and particles < 0:
        particles = None
    protein = _protein_values(result)
    events_raw = getattr(result, "events", None)
    events = int(events_raw) if isinstance(events_raw, (int, float)) and not isinstance(
        events_raw, bool) and math.isfinite(events_raw) else None
    instrument = _text(result, "instrument") or fmt
    sample = _text(result, "sample")
    parts = [f"{file} ({fmt}{', ' + instrument if instrument != fmt else ''})"]
    if particles is not None:
        parts.append(_fmt(particles, "particles/mL"))
    mean_nm = _number(result, "mean_nm")
    mode_nm = _number(result, "mode_nm")
    d50_nm = _number(result, "d50_nm")
    if mean_nm is not None:
        parts.append(f"mean {mean_nm:.1f} nm")
    if mode_nm is not None:
        parts.append(f"mode {mode_nm:.1f} nm")
    if events is not None:
        parts.append(f"{events} events")
    if protein:
        parts.append("protein " + ", ".join(f"{p.sample} {p.protein_ug_per_ml:.3g} ug/mL"
                                            for p in protein[:4])
                     + (f" (+{len(protein) - 4} more)" if len(protein) > 4 else ""))
    warnings = tuple(str(w) for w in (getattr(result, "warnings", ()) or ()))
    return MeasurementEvidence(
        file=file, format=fmt, instrument=instrument, sample=sample, counting_method=counting,
        particles_per_ml=particles, protein=protein, mean_nm=mean_nm, mode_nm=mode_nm,
        d50_nm=d50_nm, events=events, warnings=warnings, summary=": ".join(
            [parts[0], "; ".join(parts[1:])]) if len(parts) > 1 else parts[0],
    )


_SAMPLE_NORM = re.compile(r"[^a-z0-9]+")


def sample_key(name: str | None) -> str:
    """Normalized sample name for pairing particle and protein results."""
    return _SAMPLE_NORM.sub("", (name or "").lower())
