"""Particle:protein purity ratio and the Webber & Clayton (2013) purity bands.

The ratio is particles per microgram of protein, both measured on the same EV
preparation and expressed per mL of that preparation (dilution already
corrected). Bands, with the boundary inclusivity exotrace uses (the paper gives
the numbers but not which side the boundary values fall on; these choices are
ours and fixed by tests)::

    ratio  > 3e10                 "high purity"
    2e10 < ratio <= 3e10          "between bands"   (between low and high purity)
    2e9 <= ratio <= 2e10          "low purity"      (closed interval)
    1.5e9 <= ratio < 2e9          "between bands"   (between impure and low purity)
    ratio  < 1.5e9                "impure"

The gaps are real gaps in the published scheme: a ratio there is reported as
"between bands", never rounded into a neighbouring band.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from enum import StrEnum

from ..errors import InvalidInput

__all__ = [
    "HIGH_PURITY_ABOVE_PARTICLES_PER_UG",
    "IMPURE_BELOW_PARTICLES_PER_UG",
    "LOW_PURITY_MAX_PARTICLES_PER_UG",
    "LOW_PURITY_MIN_PARTICLES_PER_UG",
    "PurityBand",
    "PurityResult",
    "purity_band",
    "purity_ratio",
]

# Webber & Clayton, J Extracell Vesicles 2013;2:19861, particles per ug protein.
HIGH_PURITY_ABOVE_PARTICLES_PER_UG = 3e10
LOW_PURITY_MAX_PARTICLES_PER_UG = 2e10
LOW_PURITY_MIN_PARTICLES_PER_UG = 2e9
IMPURE_BELOW_PARTICLES_PER_UG = 1.5e9

METHOD_NOTE = (
    "The particle:protein ratio depends on the methods: particle counts differ between NTA, "
    "TRPS and flow instruments and settings, and protein assays (BCA, micro-BCA, Bradford) "
    "differ in response; compare ratios only between preparations measured the same way."
)


class PurityBand(StrEnum):
    """Webber & Clayton purity band of a particle:protein ratio."""

    HIGH = "high purity"
    BETWEEN = "between bands"
    LOW = "low purity"
    IMPURE = "impure"


@dataclass(frozen=True)
class PurityResult:
    """A particle:protein ratio with its band, units and the methods it came from.

    Attributes
    ----------
    particles_per_ug : float
        Particles per microgram of protein.
    band : PurityBand
        Webber & Clayton band (see the module docstring for the boundaries).
    band_detail : str
        The band in words, naming the neighbouring bands for "between bands".
    particles_per_ml : float
        Particle concentration of the preparation, particles/mL.
    protein_ug_per_ml : float
        Protein concentration of the same preparation, ug/mL.
    particle_method, protein_method : str
        How each quantity was measured ("not stated" when unknown).
    notes : tuple of str
        Caveats: the method dependence and, where they apply, missing methods.
    """

    particles_per_ug: float
    band: PurityBand
    band_detail: str
    particles_per_ml: float
    protein_ug_per_ml: float
    particle_method: str
    protein_method: str
    notes: tuple[str, ...]
    unit: str = "particles/ug protein"


def purity_band(particles_per_ug: float) -> tuple[PurityBand, str]:
    """Band of a particle:protein ratio.

    Parameters
    ----------
    particles_per_ug : float
        Particles per microgram of protein, finite and >= 0.

    Returns
    -------
    band : PurityBand
    detail : str
        The band in words; for "between bands" it names the two neighbours.

    Raises
    ------
    InvalidInput
        For a negative or non-finite ratio.
    """
    r = _positive("particles per ug protein", particles_per_ug, allow_zero=True)
    if r > HIGH_PURITY_ABOVE_PARTICLES_PER_UG:
        return PurityBand.HIGH, "high purity (> 3e10 particles/ug)"
    if r > LOW_PURITY_MAX_PARTICLES_PER_UG:
        return PurityBand.BETWEEN, "between low purity (<= 2e10) and high purity (> 3e10)"
    if r >= LOW_PURITY_MIN_PARTICLES_PER_UG:
        return PurityBand.LOW, "low purity (2e9 to 2e10 particles/ug, both included)"
    if r >= IMPURE_BELOW_PARTICLES_PER_UG:
        return PurityBand.BETWEEN, "between impure (< 1.5e9) and low purity (>= 2e9)"
    return PurityBand.IMPURE, "impure (< 1.5e9 particles/ug)"


def _positive(name: str, value: object, *, allow_zero: bool) -> float:
    if isinstance(value, bool):
        raise InvalidInput(f"{name} must be a number, got {value!r}")
    if not isinstance(value, (int, float)):
        try:
            value = float(value)  # numpy scalars, Decimal
        except (TypeError, ValueError):
            raise InvalidInput(f"{name} must be a number, got {value!r}") from None
    v = float(value)
    if not math.isfinite(v) or v < 0 or (v == 0 and not allow_zero):
        need = ">= 0" if allow_zero else "> 0"
        raise InvalidInput(f"{name} must be a finite number {need}, got {value!r}")
    return v


def purity_ratio(
    particles_per_ml: float,
    protein_ug_per_ml: float,
    *,
    particle_method: str | None = None,
    protein_method: str | None = None,
) -> PurityResult:
    """Particle:protein ratio of an EV preparation and its purity band.

    Parameters
    ----------
    particles_per_ml : float
        Particle concentration of the preparation, particles/mL (>= 0, after
        correcting for any dilution made for the measurement).
    protein_ug_per_ml : float
        Protein concentration of the same preparation, ug/mL (> 0).
    particle_method : str, optional
        How particles were counted (e.g. "NTA (NanoSight NS300)").
    protein_method : str, optional
        How protein was measured (e.g. "micro-BCA").

    Returns
    -------
    PurityResult

    Raises
    ------
    InvalidInput
        Zero, negative or non-finite protein; negative or non-finite particles.

    Notes
    -----
    ratio = particles_per_ml / protein_ug_per_ml  [particles/ug]. Bands and
    their boundaries are listed in the module docstring.

    References
    ----------
    .. [1] Webber J, Clayton A. How pure are your vesicles? J Extracell
       Vesicles 2013;2:19861.
    """
    particles = _positive("particles per mL", particles_per_ml, allow_zero=True)
    protein = _positive("protein ug/mL", protein_ug_per_ml, allow_zero=False)
    ratio = particles / protein
    if not math.isfinite(ratio):
        raise InvalidInput(
            f"particle:protein ratio overflows ({particles_per_ml!r} / {protein_ug_per_ml!r})"
        )
    band, detail = purity_band(ratio)
    notes = [METHOD_NOTE]
    p_method = (particle_method or "").strip() or "not stated"
    q_method = (protein_method or "").strip() or "not stated"
    if p_method == "not stated" or q_method == "not stated":
        notes.append("State both methods: a ratio without them cannot be compared.")
    if particles == 0:
        notes.append("No particles were counted; check the measurement before using this ratio.")
    return PurityResult(
        particles_per_ug=ratio,
        band=band,
        band_detail=detail,
        particles_per_ml=particles,
        protein_ug_per_ml=protein,
        particle_method=p_method,
        protein_method=q_method,
        notes=tuple(notes),
    )
